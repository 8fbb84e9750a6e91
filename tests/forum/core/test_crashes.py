"""Crashes lose nothing and duplicate nothing: the listener SIGKILLed mid-stream and restarted,
a worker SIGKILLed mid-task; plus the one-listener lease."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from forum import nostr, protocol, tasks
from forum.ingest import ledger, listener, sweep
from forum.models import Author, Event, LedgerEntry, ListenerCursor, Thread
from tests.conftest import ROOT, need, record_invoice, start_celery_worker

pytestmark = pytest.mark.django_db(transaction=True)


def log_tail(log: Path, lines: int = 40) -> str:
    """The interesting end of a subprocess log (not the per-payment lines)."""
    keep = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if "ledger.settled" not in line and "celery.app.trace" not in line
    ]
    return "\n".join(keep[-lines:])


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_listener_per_node_and_fenced_writes(forum_node, board):
    node = forum_node.pubkey
    ledger.cursor_ensure(node_pubkey=node)
    assert listener.lease_acquire(node_pubkey=node, holder="a", seconds=60)
    assert not listener.lease_acquire(node_pubkey=node, holder="b", seconds=60)
    assert listener.lease_acquire(node_pubkey=node, holder="a", seconds=60)  # re-entrant
    ListenerCursor.objects.filter(node_pubkey=node).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert listener.lease_acquire(node_pubkey=node, holder="b", seconds=60)  # a went silent
    assert not listener.lease_renew(node_pubkey=node, holder="a", seconds=60)
    invoice = forum_node.keysend({}, 1_000)
    with pytest.raises(ledger.LeaseLost):
        record_invoice(invoice, node_pubkey=node, lease_holder="a")
    assert not LedgerEntry.objects.filter(payment_hash=invoice.payment_hash).exists()
    record_invoice(invoice, node_pubkey=node, lease_holder="b")
    assert LedgerEntry.objects.filter(payment_hash=invoice.payment_hash).exists()


def start_listener(env: dict, log: Path, holder: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-u", "manage.py", "listen", "--holder", holder, "--lease-seconds", "2"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_listener_sigkill_mid_stream_then_restart(forum_node, board, subprocess_env, tmp_path):
    env = dict(subprocess_env)
    env["SIMNET_DATA_DIR"] = str(settings.SIMNET_DATA_DIR)
    env.pop("REDIS_URL")  # the listener reconciles in-process (eager), no worker needed
    forum_node.cursor_to_now()
    start = forum_node.settle_index()
    log = tmp_path / "listener.log"
    first = start_listener(env, log, "first")
    paid: list[str] = []
    events: list[str] = []
    total = 30

    def send() -> None:
        for i in range(total):
            key = nostr.generate_secret_key()
            event = nostr.thread_event(key, board="general", title=f"t{i}", content=f"c{i}")
            invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
            paid.append(invoice.payment_hash)
            events.append(event.id)
            time.sleep(0.05)

    sender = threading.Thread(target=send)
    try:
        # Payments start once the first listener streams, so it is killed mid-stream (with
        # group commit, a listener started late would catch up on all of them at once).
        wait_for(lambda: "first holds the lease" in log_tail(log), 60, f"first\n{log_tail(log)}")
        sender.start()
        wait_for(lambda: LedgerEntry.objects.count() >= 8, 60, f"first listener\n{log_tail(log)}")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(0.5)  # payments keep settling while no listener runs
        second = start_listener(env, log, "second")
        try:
            wait_for(
                lambda: "second holds the lease" in log_tail(log), 60, f"second\n{log_tail(log)}"
            )
            sender.join(120)
            wait_for(
                lambda: LedgerEntry.objects.count() >= total,
                90,
                f"all {total} payments in the ledger\n{log_tail(log)}",
            )
            # A payment the first listener recorded but was killed before reconciling stays
            # pending until the next batch (the second listener's) or the sweep; run the sweep.
            report = sweep.sweep_run(now=timezone.now() + timedelta(minutes=5))
            if report.reconcile_due:
                tasks.reconcile_batch()
            wait_for(lambda: Thread.objects.count() >= total, 30, f"threads\n{log_tail(log)}")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(15)
    finally:
        if first.poll() is None:
            first.kill()
    assert set(LedgerEntry.objects.values_list("payment_hash", flat=True)) == set(paid)
    # Nothing the node settled since the start is missing from the ledger (no gap, no extra).
    on_node = {
        inv.payment_hash
        for inv in listener.settled_backlog(forum_node.client, after_settle_index=start)
    }
    assert on_node == set(paid)
    assert Thread.objects.count() == total
    assert set(Event.objects.filter(state="published").values_list("event_id", flat=True)) == set(
        events
    )
    cursor = ListenerCursor.objects.get(node_pubkey=forum_node.pubkey)
    assert cursor.settle_index == forum_node.settle_index()
    assert cursor.lease_holder == ""  # released on SIGTERM


def blocked_on_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


@pytest.mark.slow
def test_worker_sigkill_mid_task(forum_node, board, subprocess_env, tmp_path, alice_key):
    from config.celery import app

    need(connection.vendor == "postgresql", "a worker process needs PostgreSQL")
    env = dict(subprocess_env)
    env["SIMNET_DATA_DIR"] = str(settings.SIMNET_DATA_DIR)
    log = tmp_path / "worker.log"
    alice = nostr.public_key(alice_key)
    Author.objects.create(pubkey=alice)
    held, release = threading.Event(), threading.Event()

    def hold_author_lock() -> None:
        # Another transaction holds alice's row: the worker's task blocks inside it.
        try:
            with transaction.atomic():
                Author.objects.select_for_update().get(pubkey=alice)
                held.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_author_lock)
    holder.start()
    held.wait(10)
    app.conf.task_always_eager = False
    worker = start_celery_worker(env, log, "doomed")
    try:
        event = nostr.thread_event(alice_key, board="general", title="t", content="survives")
        invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
        record_invoice(invoice, node_pubkey=forum_node.pubkey)
        wait_for(lambda: blocked_on_lock() > 0, 30, f"the task to block\n{log_tail(log)}")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        release.set()
        holder.join(10)
        if worker.poll() is None:
            worker.kill()
    entry = LedgerEntry.objects.get(payment_hash=invoice.payment_hash)
    assert entry.reconcile_state == "pending"  # the killed task's transaction rolled back
    assert not Event.objects.exists()
    survivor = start_celery_worker(env, log, "survivor")
    try:
        # The broker would redeliver only after its visibility timeout; the sweep finds the
        # stale row now, and its caller queues a batch.
        later = timezone.now() + timedelta(minutes=5)
        assert sweep.sweep_run(now=later).stale == 1
        tasks.reconcile_batch.delay()
        wait_for(lambda: Thread.objects.exists(), 30, f"the thread\n{log_tail(log)}")
        # Running it again (a late redelivery) changes nothing.
        tasks.reconcile_batch.delay()
        time.sleep(1)
    finally:
        survivor.terminate()
        survivor.wait(15)
        app.conf.task_always_eager = True
    assert Thread.objects.count() == 1
    assert Event.objects.get().state == "published"
    assert LedgerEntry.objects.get().reconcile_state == "done"
