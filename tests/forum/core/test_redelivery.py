"""Tasks of a dead worker come back by themselves, quickly, and the sweep does not feed the queue
the same rows again and again.

- a pool child killed mid-task: the worker's main process re-queues the task at once
  (`acks_late` + `task_reject_on_worker_lost`);
- the worker's main process killed: the broker hands the task out again after the visibility
  timeout (`BROKER_VISIBILITY_TIMEOUT_SECONDS`), no sweep needed;
- the sweep queues one batch for stale rows, and no copy while that batch waits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from forum import nostr, protocol
from forum.ingest import sweep
from forum.models import Author, Event, LedgerEntry, Thread
from tests.conftest import ROOT, need, record_invoice
from tests.forum.core.test_crashes import blocked_on_lock, log_tail, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def queued_tasks() -> int:
    from config.celery import app

    with app.connection_for_read() as conn:
        return conn.default_channel.client.llen(app.conf.task_default_queue)


def test_the_sweep_queues_one_batch_for_stale_rows_and_no_copies_while_it_waits(
    forum_node, board, alice_key, redis_url
):
    from config.celery import app
    from forum import tasks

    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
    record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)  # its task is lost
    grace = settings.SWEEP_REQUEUE_AFTER_SECONDS
    first = timezone.now() + timedelta(seconds=grace + 1)
    app.conf.task_always_eager = False  # queued for a worker that does not come (yet)
    app.control.purge()
    added = []
    try:
        for now in (
            first,
            first,
            first + timedelta(seconds=grace / 2),
            first + timedelta(seconds=2 * grace),
        ):
            report = sweep.sweep_run(now=now)
            assert report.stale == 1
            before = queued_tasks()
            tasks.sweep_handle(report)
            added.append(queued_tasks() - before)
    finally:
        app.control.purge()
        app.conf.task_always_eager = True
    # One batch task waits in the queue (it will claim every pending row); later sweeps add
    # no copy while it waits.
    assert added == [1, 0, 0, 0]
    assert LedgerEntry.objects.get(payment_hash=invoice.payment_hash).reconcile_state == "pending"


def pay_unreconciled(forum_node, key: str) -> str:
    event = nostr.thread_event(key, board="general", title="t", content="c")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
    record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    return invoice.payment_hash


@pytest.fixture
def empty_broker(redis_url) -> Iterator[object]:
    """Tasks go to the real Redis broker, which starts empty; yields its Redis client."""
    from config.celery import app
    from forum import tasks

    app.conf.task_always_eager = False
    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            channel.client.delete(
                channel.unacked_key, channel.unacked_index_key, tasks.BROKER_MARK_KEY
            )
            app.control.purge()
            yield channel.client
    finally:
        app.control.purge()
        app.conf.task_always_eager = True


def test_rows_are_stale_soon_when_the_broker_holds_no_task(
    forum_node, board, alice_key, empty_broker
):
    from config.celery import app
    from forum import tasks

    pay_unreconciled(forum_node, alice_key)
    soon = timezone.now() + timedelta(seconds=tasks.IDLE_BROKER_GRACE_SECONDS + 1)
    assert tasks.broker_state() == "lost"  # no mark yet: the previous sweep's is left now
    tasks.worker_health.delay()  # a backlog: the row's task may be queued there
    assert sweep.sweep_run(now=soon, grace_seconds=tasks.sweep_grace()).stale == 0
    app.control.purge()  # the backlog drained, and the row's task was not in it
    assert sweep.sweep_run(now=soon, grace_seconds=tasks.sweep_grace()).stale == 1


def test_every_pending_row_is_stale_at_once_when_redis_lost_its_data(
    forum_node, board, alice_key, bob_key, empty_broker
):
    from forum import tasks

    pay_unreconciled(forum_node, alice_key)
    tasks.broker_state()
    tasks.worker_health.delay()
    assert sweep.sweep_run(now=timezone.now(), grace_seconds=tasks.sweep_grace()).stale == 0
    empty_broker.flushdb()  # as a restart without persistence does
    pay_unreconciled(forum_node, bob_key)  # written just now, its task lost as well
    tasks.worker_health.delay()  # new tasks arrive: the broker is busy again
    report = sweep.sweep_run(now=timezone.now(), grace_seconds=tasks.sweep_grace())
    assert report.stale == 2
    assert report.reconcile_due


def start_worker(env: dict, log: Path, name: str, pool: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", f"--pool={pool}",
         "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for(lambda: b"ready." in log.read_bytes(), 30, f"worker {name}\n{log_tail(log)}")
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def author_row_held(pubkey: str) -> Iterator[threading.Event]:
    """Another transaction holds the author's row: a task reconciling their post blocks in it.
    Set the yielded event to let it go."""
    Author.objects.create(pubkey=pubkey)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Author.objects.select_for_update().get(pubkey=pubkey)
                held.set()
                release.wait(120)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join(10)


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.fixture
def worker_env(subprocess_env) -> Iterator[dict]:
    from config.celery import app

    need(connection.vendor == "postgresql", "worker processes need PostgreSQL")
    env = dict(subprocess_env)
    env["SIMNET_DATA_DIR"] = str(settings.SIMNET_DATA_DIR)
    env["BROKER_VISIBILITY_TIMEOUT_SECONDS"] = "5"
    app.control.purge()
    app.conf.task_always_eager = False
    try:
        yield env
    finally:
        app.conf.task_always_eager = True


def pay_thread(forum_node, key: str) -> nostr.Event:
    event = nostr.thread_event(key, board="general", title="t", content="survives")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
    record_invoice(invoice, node_pubkey=forum_node.pubkey)  # queues its batch
    return event


@pytest.mark.slow
def test_a_task_whose_pool_child_was_killed_runs_again_at_once(
    forum_node, board, worker_env, tmp_path, alice_key
):
    log = tmp_path / "worker.log"
    worker = None
    try:
        with author_row_held(nostr.public_key(alice_key)) as release:
            worker = start_worker(worker_env, log, "prefork", "prefork")
            event = pay_thread(forum_node, alice_key)
            wait_for(lambda: blocked_on_lock() > 0, 30, f"the task to block\n{log_tail(log)}")
            (child,) = children_of(worker.pid)
            os.kill(child, signal.SIGKILL)
            # The main process sees its child die and puts the task back; a new child takes it
            # and blocks on the same row again.
            wait_for(lambda: child not in children_of(worker.pid), 30, "a new pool child")
            wait_for(lambda: blocked_on_lock() > 0, 30, f"the task again\n{log_tail(log)}")
            release.set()
        wait_for(lambda: Thread.objects.exists(), 30, f"the thread\n{log_tail(log)}")
    finally:
        stop(worker)
    assert Event.objects.get(event_id=event.id).state == "published"
    assert "WorkerLostError" in log.read_text()


@pytest.mark.slow
def test_tasks_of_a_killed_worker_come_back_after_the_visibility_timeout(
    forum_node, board, worker_env, tmp_path, alice_key
):
    log = tmp_path / "worker.log"
    doomed = survivor = None
    try:
        with author_row_held(nostr.public_key(alice_key)):
            doomed = start_worker(worker_env, log, "doomed", "solo")
            event = pay_thread(forum_node, alice_key)
            wait_for(lambda: blocked_on_lock() > 0, 30, f"the task to block\n{log_tail(log)}")
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(10)
        killed_at = time.monotonic()
        assert LedgerEntry.objects.get(event_id=event.id).reconcile_state == "pending"
        survivor = start_worker(worker_env, log, "survivor", "solo")
        # No sweep: the broker itself hands the unacknowledged task out again, once it is
        # older than the visibility timeout (5 s here) at a worker's next look (every 5 s).
        wait_for(lambda: Thread.objects.exists(), 30, f"the thread\n{log_tail(log)}")
        took = time.monotonic() - killed_at
    finally:
        stop(doomed)
        stop(survivor)
    print(f"redelivered and published {took:.1f} s after the worker was killed")
    assert Event.objects.get(event_id=event.id).state == "published"
    assert Thread.objects.count() == 1
