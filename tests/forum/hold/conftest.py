"""Hold-mode fixtures: a simnet whose forum node holds keysends, a listener with its reviewer.

The network is its own (not the session `simnet`, which settles at once) and is shared by the
hold tests; each test points the settings at it, starts a listener from "now", and leaves no
payment held behind.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from forum import nostr, protocol
from lightning.types import Invoice, Payment
from tests.forum.core.conftest import alice_key, board, bob_key  # noqa: F401 (fixtures)

HOLD_SECONDS = 30  # the node's hold time in most tests; expiry tests shorten it


@pytest.fixture(scope="session")
def held_net(tmp_path_factory) -> Iterator[Any]:
    from lightning.simnet import SimNet

    topology = json.loads(
        (Path(__file__).parents[3] / "lightning/simnet/topology.json").read_text()
    )
    for spec in topology["nodes"]:
        if spec["name"] == "forum":
            spec["keysend_hold_seconds"] = HOLD_SECONDS
    net = SimNet.start(tmp_path_factory.mktemp("held-simnet"), topology=topology)
    # One settled invoice first: a listener whose cursor is at settle index 0 polls instead of
    # streaming, and the tests want the stream (its add events reach the reviewer).
    net.network.set_keysend_hold("forum", 0)
    with net.nodes["alice"].client() as alice:
        assert alice.keysend(net.nodes["forum"].pubkey, 1_000, {}).succeeded
    net.network.set_keysend_hold("forum", HOLD_SECONDS)
    try:
        yield net
    finally:
        net.stop()


class Hold:
    """The hold-mode forum node as a test sees it: pay it, watch balances, run the listener."""

    def __init__(self, net: Any, settings: Any) -> None:
        from forum.services import node

        self.net = net
        self.settings = settings
        self.pubkey: str = net.nodes["forum"].pubkey
        self.client = node.client()
        self.pool = ThreadPoolExecutor(8)
        self._stop: threading.Event | None = None
        self._runner: threading.Thread | None = None

    # -- paying (each keysend blocks until the forum settles or cancels it) -------------

    def pay(self, records: dict[int, bytes], amount_msat: int, *, sender: str = "alice") -> Future:
        from forum.services import node

        client = node.client(sender)
        return self.pool.submit(client.keysend, self.pubkey, amount_msat, records)

    def post(self, event: nostr.Event, amount_msat: int, **kw: Any) -> Future:
        return self.pay(protocol.encode_event(event), amount_msat, **kw)

    @staticmethod
    def result(future: Future, timeout: float = 20) -> Payment:
        return future.result(timeout=timeout)

    def balances_msat(self, name: str = "alice") -> dict[int, tuple[int, int]]:
        """Each channel of `name`: (its local balance, msat in flight), from simnet's books."""
        network = self.net.network
        with network.lock:
            return {
                chan.chan_id: (chan.balance[name], chan.pending)
                for chan in network.channels.values()
                if name in (chan.node1, chan.node2)
            }

    def held(self) -> list[Invoice]:
        page = self.client.list_invoices(pending_only=True, num_max_invoices=1000)
        return [i for i in page.invoices if i.state == "ACCEPTED"]

    def wait_held(self, count: int, timeout: float = 10) -> list[Invoice]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = self.held()
            if len(held) >= count:
                return held
            time.sleep(0.05)
        raise AssertionError(f"expected {count} held payments, found {len(self.held())}")

    def set_hold_seconds(self, seconds: int) -> None:
        """The node's hold time and the forum's idea of it (they must match, as with lnd)."""
        self.net.network.set_keysend_hold("forum", seconds)
        self.settings.HOLD_SECONDS = seconds

    # -- the listener (and, in hold mode, its reviewer) ----------------------------------

    def cursor_to_now(self) -> None:
        from forum.models import ListenerCursor

        page = self.client.list_invoices(reversed=True, num_max_invoices=1000)
        settled = [i.settle_index for i in page.invoices if i.settled]
        add_index = page.invoices[-1].add_index if page.invoices else 0
        ListenerCursor.objects.update_or_create(
            node_pubkey=self.pubkey,
            defaults={"settle_index": max(settled, default=0), "add_index": add_index},
        )

    def start_listener(self) -> None:
        from forum.ingest.listener import Listener
        from forum.tasks import recorded_handle

        assert self._runner is None, "listener already running"
        listener = Listener(
            client=self.client,
            node_pubkey=self.pubkey,
            on_recorded=recorded_handle,
            lease_seconds=5,
        )
        self._stop = threading.Event()
        self._runner = threading.Thread(target=listener.run, args=(self._stop,), daemon=True)
        self._runner.start()

    def stop_listener(self) -> None:
        if self._runner is None:
            return
        assert self._stop is not None
        self._stop.set()
        self._runner.join(timeout=15)
        assert not self._runner.is_alive(), "listener did not stop"
        self._runner = self._stop = None

    def cleanup(self) -> None:
        self.stop_listener()
        for invoice in self.held():  # nothing held may leak into the next test
            self.client.cancel_invoice(invoice.payment_hash)
        self.pool.shutdown(wait=True, cancel_futures=True)


def wait_for(check: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def hold(held_net, settings, tmp_path) -> Iterator[Hold]:
    from forum.services import identity, node

    data_dir = held_net.network.data_dir
    node.write_simnet_nodes(held_net, data_dir)
    settings.SIMNET_DATA_DIR = data_dir
    settings.SIMNET_ENABLED = True
    settings.LND_GRPC_HOST = ""
    settings.LND_CONNECT = ""
    settings.HOLD_MODE = True
    settings.HOLD_SECONDS = HOLD_SECONDS
    settings.HOLD_SCAN_SECONDS = 0.25
    node.reset_clients()
    identity.forget()
    held_net.network.set_keysend_hold("forum", HOLD_SECONDS)
    helper = Hold(held_net, settings)
    helper.cursor_to_now()
    try:
        yield helper
    finally:
        helper.cleanup()
        held_net.network.set_keysend_hold("forum", HOLD_SECONDS)
        node.reset_clients()
        identity.forget()


@pytest.fixture
def listening(hold) -> Hold:
    hold.start_listener()
    return hold
