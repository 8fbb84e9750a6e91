"""A reply that arrives before its thread is never stranded.

Two ways it used to be: the thread's `orphans_attach` task was lost (a Redis restart), or the
reply committed its wait just after that task had looked for waiting replies. Either way the
reply sat waiting for a parent that was published, and the sweep later rejected it
`orphan_timeout`, keeping the author's sats.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from forum import nostr, protocol
from forum.models import Event, LedgerEntry, Post, Rejection
from forum.services import ledger, reconcile, sweep
from tests.conftest import need

pytestmark = pytest.mark.django_db(transaction=True)


def pay_unreconciled(forum_node, event: nostr.Event, amount_msat: int, sender: str) -> str:
    """Pay `event` and record it in the ledger without queueing its reconciliation."""
    invoice = forum_node.keysend(protocol.encode_event(event), amount_msat, sender=sender)
    ledger.ledger_record_invoice(invoice=invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    return invoice.payment_hash


def reply_state(reply: nostr.Event) -> tuple[str, str]:
    event = Event.objects.get(event_id=reply.id)
    return event.state, event.waiting_for


def test_a_reply_whose_attach_task_was_lost_is_published_by_the_sweep(
    forum_node, board, alice_key, bob_key
):
    from config.celery import app

    thread = nostr.thread_event(alice_key, board="general", title="t", content="first")
    reply = nostr.reply_event(bob_key, board="general", root=thread, content="second")
    reply_hash = pay_unreconciled(forum_node, reply, 2_000, "bob")
    thread_hash = pay_unreconciled(forum_node, thread, 10_000, "alice")
    # Tasks go to the broker (Redis, or the in-memory one) and no worker takes them.
    app.conf.task_always_eager = False
    try:
        reconcile.ledger_entry_reconcile(payment_hash=reply_hash)
        assert reply_state(reply) == ("pending", "parent")
        reconcile.ledger_entry_reconcile(payment_hash=thread_hash)
        app.control.purge()  # the thread's orphans_attach task is lost, as in a Redis restart
        assert reply_state(reply) == ("pending", "parent")

        later = timezone.now() + timedelta(seconds=settings.ORPHAN_TIMEOUT_SECONDS + 60)
        report = sweep.sweep_run(now=later, check_node=False)
        app.control.purge()
    finally:
        app.conf.task_always_eager = True
    assert reply_state(reply) == ("published", "")
    assert (report.orphans_attached, report.orphans_expired) == (1, 0)
    assert Post.objects.get(event__event_id=reply.id).thread.event.event_id == thread.id
    assert not Rejection.objects.exists()


def test_the_sweep_attaches_a_chain_of_waiting_replies(forum_node, board, alice_key, bob_key):
    from config.celery import app

    thread = nostr.thread_event(alice_key, board="general", title="t", content="first")
    first = nostr.reply_event(bob_key, board="general", root=thread, content="second")
    carol_key = nostr.generate_secret_key()  # (alice's reply would raise her thread's price)
    second = nostr.reply_event(carol_key, board="general", root=thread, parent=first, content="3")
    hashes = [
        pay_unreconciled(forum_node, second, 2_000, "alice"),
        pay_unreconciled(forum_node, first, 2_000, "bob"),
        pay_unreconciled(forum_node, thread, 10_000, "alice"),
    ]
    app.conf.task_always_eager = False
    try:
        for payment_hash in hashes:
            reconcile.ledger_entry_reconcile(payment_hash=payment_hash)
        app.control.purge()
        assert reply_state(first) == reply_state(second) == ("pending", "parent")
        report = sweep.sweep_run(check_node=False)
        app.control.purge()
    finally:
        app.conf.task_always_eager = True
    assert reply_state(first) == reply_state(second) == ("published", "")
    assert report.orphans_attached == 2
    assert Post.objects.get(event__event_id=second.id).parent.event.event_id == first.id


def test_expiry_never_rejects_a_reply_whose_thread_is_published(
    forum_node, board, alice_key, bob_key
):
    from config.celery import app

    thread = nostr.thread_event(alice_key, board="general", title="t", content="first")
    reply = nostr.reply_event(bob_key, board="general", root=thread, content="second")
    reply_hash = pay_unreconciled(forum_node, reply, 2_000, "bob")
    thread_hash = pay_unreconciled(forum_node, thread, 10_000, "alice")
    app.conf.task_always_eager = False
    try:
        reconcile.ledger_entry_reconcile(payment_hash=reply_hash)
        reconcile.ledger_entry_reconcile(payment_hash=thread_hash)
        app.control.purge()
        # Expiry on its own (as if the attaching part of the sweep had not run yet).
        later = timezone.now() + timedelta(seconds=settings.ORPHAN_TIMEOUT_SECONDS + 60)
        assert sweep.orphans_expire(now=later) == 0
        assert not Rejection.objects.exists()
        assert reply_state(reply) == ("pending", "parent")
        assert sweep.sweep_run(now=later, check_node=False).orphans_attached == 1
        app.control.purge()
    finally:
        app.conf.task_always_eager = True
    assert reply_state(reply) == ("published", "")
    assert not Rejection.objects.exists()


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def in_thread(target, errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker


def test_a_reply_that_commits_its_wait_after_the_thread_looked_is_published(
    forum_node, board, alice_key, bob_key
):
    """The race, interleaved on purpose with real connections.

    The reply's reconciliation finds no thread, then its INSERT of the waiting event blocks
    (another transaction holds that event id uncommitted). Meanwhile the thread is published
    and its attach step finds no waiting reply. Then the reply's wait commits.
    """
    need(connection.vendor == "postgresql", "the interleaving needs PostgreSQL row locks")
    thread = nostr.thread_event(alice_key, board="general", title="t", content="first")
    reply = nostr.reply_event(bob_key, board="general", root=thread, content="second")
    reply_hash = pay_unreconciled(forum_node, reply, 2_000, "bob")
    thread_hash = pay_unreconciled(forum_node, thread, 10_000, "alice")
    errors: list[BaseException] = []
    holding, release = threading.Event(), threading.Event()

    class Rollback(Exception):
        pass

    def hold_the_reply_event_id() -> None:
        try:
            with transaction.atomic():
                Event.objects.create(
                    event_id=reply.id, pubkey=reply.pubkey, kind=reply.kind, created_at=0
                )
                holding.set()
                release.wait(60)
                raise Rollback
        except Rollback:
            pass

    blocker = in_thread(hold_the_reply_event_id, errors)
    assert holding.wait(10)
    try:
        reply_worker = in_thread(
            lambda: reconcile.ledger_entry_reconcile(payment_hash=reply_hash), errors
        )
        wait_until(lambda: lock_waiters() >= 1, 30, "the reply's insert to block")
        thread_worker = in_thread(
            lambda: reconcile.ledger_entry_reconcile(payment_hash=thread_hash), errors
        )
        # The thread's reconciliation either finishes (publish, attach finds nothing) or
        # waits for the reply (a fix that serializes the two on the thread's id).
        wait_until(
            lambda: not thread_worker.is_alive() or lock_waiters() >= 2,
            30,
            "the thread's reconciliation",
        )
    finally:
        release.set()
        blocker.join(10)
    reply_worker.join(30)
    thread_worker.join(30)
    assert not errors, errors
    assert LedgerEntry.objects.filter(reconcile_state="done").count() == 2
    assert Event.objects.get(event_id=thread.id).state == "published"
    assert reply_state(reply) == ("published", "")
    assert Post.objects.filter(event__event_id=reply.id).count() == 1
