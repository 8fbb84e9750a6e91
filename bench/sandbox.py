"""A forum of a bench's own: the set-ups several bench scripts share.

* `own_forum` and `daphne_server`: a fresh forum in a temporary directory, configured only by
  the bench, served by daphne in its own process (bench/relay_writes.py, bench/relay_stall.py,
  bench/pages.py);
* `setup_django` and `listening_simnet`: everything in one process as the embedded default runs
  it, simnet with a forum node that holds payments, the listener with its hold reviewer and
  reconciliation run eagerly, one board (bench/double_pay.py, bench/invoice.py).

Import it after the script has put the repository root on `sys.path`.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bench.ingest import Processes, wait_for

if TYPE_CHECKING:
    from lightning.simnet import SimNet

ROOT = Path(__file__).resolve().parent.parent

# The price of a thread on the board `listening_simnet` makes; the benches check what a payer
# was charged against it.
THREAD_PRICE_MSAT = 10_000


@contextmanager
def own_forum(
    prefix: str,
    database_url: str = "",
    *,
    settings_module: str = "config.settings",
    **settings: str,
) -> Iterator[Path]:
    """A temporary directory (removed on exit) that this process's environment points at: the
    forum's data, a SQLite database in it unless `database_url` names another, no simnet, no
    demo, quiet logs, and `settings` on top. Yields the directory.

    The environment, not Django's settings object, is what is set: the bench configures Django
    in this process from it and hands it to the server it starts (`daphne_server`).
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        # The bench's own database, broker and node: nothing from the caller's environment (a
        # developer's .env, CI's services) may leak in and change what is measured.
        for name in list(os.environ):
            if name.startswith(("DATABASE_", "REDIS_", "LND_", "SIMNET", "DEBUG")):
                del os.environ[name]
        os.environ.update(
            DJANGO_SETTINGS_MODULE=settings_module,
            FORUM_DATA_DIR=tmp,
            DATABASE_URL=database_url or f"sqlite:///{tmp}/forum.sqlite3",
            SIMNET="0",
            DEMO_MODE="0",
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),  # the server process imports `config` from the checkout
            **settings,
        )
        yield Path(tmp)


def free_port() -> int:
    """A local TCP port nobody listens on (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    """Whether something listens on the local `port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def daphne_server(logs: Path) -> Iterator[int]:
    """`config.asgi` served by daphne in its own process, with this process's environment, on a
    free local port; yields the port once daphne accepts connections and stops daphne on exit.
    Its output goes to `logs/daphne.log`.
    """
    # Its own process, as in production: the bench's clients and the server do not share an
    # event loop or a GIL, so what is measured is the server.
    port = free_port()
    procs = Processes(dict(os.environ), logs)
    try:
        procs.start(
            "daphne", "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"
        )
        wait_for(lambda: accepts(port), 30, "daphne")
        yield port
    finally:
        procs.stop()  # SIGTERM, then SIGKILL if threads are still busy with queued queries


def setup_django(data_dir: Path) -> None:
    """Django in this process on a scratch SQLite database in `data_dir`, hold mode on, tasks run
    eagerly; the database migrated."""
    os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'forum.sqlite3'}"
    os.environ["REDIS_URL"] = ""  # eager tasks: the listener reconciles what it records
    os.environ["SIMNET_DATA_DIR"] = str(data_dir / "simnet")
    os.environ["HOLD_MODE"] = "1"
    os.environ.setdefault("HOLD_SECONDS", "30")
    os.environ.setdefault("HOLD_SCAN_SECONDS", "2")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def start_simnet(data_dir: Path) -> SimNet:
    """simnet in this process (real gRPC sockets), its nodes written where the forum finds them,
    the forum node holding keysends for `HOLD_SECONDS`."""
    from django.conf import settings

    from forum.services import node
    from lightning.simnet import SimNet

    topology = json.loads((ROOT / "lightning/simnet/topology.json").read_text())
    net = SimNet.start(data_dir, topology=topology)
    node.write_simnet_nodes(net, data_dir)
    # One settled invoice first: a listener whose cursor is at settle index 0 polls instead of
    # streaming, and the reviewer hears of held payments through the stream.
    net.network.set_keysend_hold(settings.LND_NODE_NAME, 0)
    with net.nodes["alice"].client() as alice:
        assert alice.keysend(net.nodes["forum"].pubkey, 1_000, {}).succeeded
    net.network.set_keysend_hold(settings.LND_NODE_NAME, int(settings.HOLD_SECONDS))
    return net


def balance_msat(net: SimNet, name: str) -> int:
    """What node `name` holds on its side of all its channels: what it paid is the drop."""
    with net.network.lock:
        return sum(
            chan.balance[name]
            for chan in net.network.channels.values()
            if name in (chan.node1, chan.node2)
        )


@contextmanager
def listening_simnet(data_dir: Path) -> Iterator[SimNet]:
    """simnet under `data_dir/simnet`, the board `general` (a thread costs `THREAD_PRICE_MSAT`)
    and the forum's listener with its hold reviewer in a thread of this process; yields the
    network and stops the listener and simnet on exit. Call `setup_django` first, and change
    any settings the listener reads (`HOLD_SCAN_SECONDS`) before entering.
    """
    from forum.ingest.listener import Listener
    from forum.models import Board
    from forum.services import identity, node
    from forum.tasks import recorded_handle

    net = start_simnet(data_dir / "simnet")
    Board.objects.create(
        slug="general",
        title="General",
        thread_price_msat=THREAD_PRICE_MSAT,
        reply_price_msat=2_000,
        escalation_window_seconds=600,
        escalation_factor=2,
        max_content_length=5_000,
    )
    # Clients and the node identity are cached per process: drop any made before simnet wrote
    # its nodes, so the listener and the benches talk to this network.
    node.reset_clients()
    identity.forget()
    stop = threading.Event()
    listener = Listener(
        client=node.client(),
        node_pubkey=net.nodes["forum"].pubkey,
        on_recorded=recorded_handle,
        lease_seconds=5,
    )
    runner = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    runner.start()
    try:
        yield net
    finally:
        stop.set()
        runner.join(timeout=15)
        node.reset_clients()
        net.stop()
