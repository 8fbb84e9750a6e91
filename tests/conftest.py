"""Shared fixtures: eager Celery by default, real services when a test asks for them.

Locally with no environment, tests that need Redis or a browser skip with a reason; in CI
(REQUIRE_SERVICES=1) the same absence fails the run instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a real service the test needs is missing."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory
) -> None:
    """On SQLite, test in a file, not in shared-cache memory.

    Threads that write while others read (the listener next to the web server, as in the
    embedded default) get "database table is locked" from shared-cache memory databases, which
    the busy timeout does not cover; a file database waits like production does.
    """
    from django.conf import settings as django_settings

    db = django_settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test gets its own channel layer instance.

    channels_redis binds its receive lock to the first event loop that receives; a server has
    one loop for its life, but every async test has its own, so a layer shared across tests
    fails with "bound to a different event loop".
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield


@pytest.fixture(autouse=True)
def _fresh_page_versions() -> Iterator[None]:
    """Each test starts with new page versions: row ids and slugs repeat across tests, so a page
    cached by an earlier test must not be found (the cache itself outlives a test's database)."""
    from forum.services.versions import versions_reset_now

    versions_reset_now()
    yield


@pytest.fixture(autouse=True)
def _no_reconcile_queued() -> Iterator[None]:
    """A test that queued a batch for no worker must not make the next one's queue a no-op."""
    from django.core.cache import cache

    from forum.tasks import RECONCILE_QUEUED_KEY

    cache.delete(RECONCILE_QUEUED_KEY)
    yield


@pytest.fixture(autouse=True)
def _eager_celery(settings) -> Iterator[None]:
    """Tasks run in-process unless a test starts a real worker (see `celery_worker`)."""
    from celery.result import _set_task_join_will_block

    from config.celery import app

    # An eager task runs under celery's `denied_join_result`, which saves and restores one
    # process-wide flag: two threads running eager tasks at once (a test's listener thread
    # and the test itself) can leave it set, and the next test's `result.get()` on a real
    # worker then fails with "Never call result.get() within a task". No test is a task.
    _set_task_join_will_block(False)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    need(bool(url), "REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # pragma: no cover - environment dependent
        need(False, f"Redis at {url} does not answer: {exc}")
    return url


def database_url_for_subprocess() -> str:
    """The URL of the database this test run uses, for worker/listener subprocesses."""
    from django.db import connection

    db = connection.settings_dict
    need(db["ENGINE"].endswith("postgresql"), "a subprocess needs PostgreSQL (DATABASE_URL)")
    base = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(base._replace(path="/" + db["NAME"]))


@pytest.fixture
def subprocess_env(redis_url) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_subprocess()
    env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_celery_worker(env: dict[str, str], log: Path, name: str) -> subprocess.Popen:
    """A real `celery worker` process; returns once it says it is ready (fails the test if not)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while b"ready." not in log.read_bytes():
        if proc.poll() is not None:
            pytest.fail(f"celery worker exited early:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"celery worker did not become ready:\n{log.read_text()}")
        time.sleep(0.2)
    return proc


@pytest.fixture
def celery_worker(subprocess_env, tmp_path) -> Iterator[subprocess.Popen]:
    """A real worker on the real Redis broker; tasks stop being eager while it runs."""
    from config.celery import app

    proc = start_celery_worker(subprocess_env, tmp_path / "worker.log", "test")
    app.conf.task_always_eager = False
    try:
        yield proc
    finally:
        app.conf.task_always_eager = True
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- simnet: a real lnd-compatible network over gRPC, shared by the whole run -----------------


@pytest.fixture(scope="session")
def simnet(tmp_path_factory) -> Iterator[object]:
    """One SimNet for the test session, with SIMNET_DATA_DIR (and nodes.json) pointing at it.

    Django settings are switched for the whole session (the per-test `settings` fixture can
    still override them); node clients are reset so `forum.services.node.client()` finds it.
    """
    from django.conf import settings as django_settings

    from forum.services import identity, node
    from lightning.simnet import SimNet

    data_dir = tmp_path_factory.mktemp("simnet")
    net = SimNet.start(data_dir)
    node.write_simnet_nodes(net, data_dir)
    saved = {
        name: getattr(django_settings, name)
        for name in ("SIMNET_DATA_DIR", "SIMNET_ENABLED", "LND_GRPC_HOST", "LND_CONNECT")
    }
    django_settings.SIMNET_DATA_DIR = data_dir
    django_settings.SIMNET_ENABLED = True
    django_settings.LND_GRPC_HOST = ""
    django_settings.LND_CONNECT = ""
    node.reset_clients()
    identity.forget()
    try:
        yield net
    finally:
        for name, value in saved.items():
            setattr(django_settings, name, value)
        node.reset_clients()
        identity.forget()
        net.stop()


class ForumNode:
    """Test helper around the simnet forum node: pay it, look up what it settled."""

    def __init__(self, net) -> None:
        from forum.services import node

        self.net = net
        self.node = net.nodes["forum"]
        self.pubkey: str = self.node.pubkey
        self.client = node.client()

    def sender(self, name: str = "alice"):
        from forum.services import node

        return node.client(name)

    def keysend(self, records: dict, amount_msat: int, *, sender: str = "alice"):
        """Pay the forum node with `records`; returns the settled invoice on the forum side."""
        payment = self.sender(sender).keysend(self.pubkey, amount_msat, records)
        assert payment.succeeded, payment.failure_reason
        return self.client.lookup_invoice(payment.payment_hash)

    def settle_index(self) -> int:
        """The node's highest settle index now (to start a listener after earlier tests)."""
        page = self.client.list_invoices(reversed=True, num_max_invoices=500)
        return max((inv.settle_index for inv in page.invoices if inv.settled), default=0)

    def cursor_to_now(self) -> None:
        """Make the listener's cursor skip everything earlier tests paid to the shared node."""
        from forum.models import ListenerCursor

        page = self.client.list_invoices(reversed=True, num_max_invoices=1)
        add_index = page.invoices[0].add_index if page.invoices else 0
        ListenerCursor.objects.update_or_create(
            node_pubkey=self.pubkey,
            defaults={"settle_index": self.settle_index(), "add_index": add_index},
        )


@pytest.fixture
def forum_node(simnet) -> ForumNode:
    return ForumNode(simnet)


def record_invoice(invoice, node_pubkey: str, *, enqueue: bool = True, **kw):
    """Record one settled invoice as the listener does; with `enqueue`, queue its
    reconciliation as the listener's caller does (eager in tests). Returns (row, created)."""
    from forum import tasks
    from forum.ingest import ledger
    from forum.models import LedgerEntry

    recorded = ledger.ledger_record_invoices(invoices=[invoice], node_pubkey=node_pubkey, **kw)
    if enqueue:
        tasks.recorded_handle(recorded)
    return LedgerEntry.objects.get(payment_hash=invoice.payment_hash), bool(recorded.created)


@pytest.fixture
def running_listener(forum_node):
    """The real listener (`Listener.run` in a thread, as the embedded process runs it) on the
    shared simnet forum node, its batches followed by the tasks' handler (eager)."""
    import threading

    from forum.ingest.listener import Listener
    from forum.tasks import recorded_handle

    forum_node.cursor_to_now()
    forum_node.keysend({}, 1_000)  # start from a settled index, not 0 (no-backlog)
    listener = Listener(
        client=forum_node.client,
        node_pubkey=forum_node.pubkey,
        on_recorded=recorded_handle,
        lease_seconds=5,
    )
    stop = threading.Event()
    runner = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    runner.start()
    yield listener
    stop.set()
    runner.join(10)
