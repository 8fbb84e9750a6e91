"""A reply that arrives before its thread is never stranded.

Two ways it used to be: the thread's `orphans_attach` task was lost (a Redis restart), or the
reply committed its wait just after that task had looked for waiting replies. Either way the
reply sat waiting for a parent that was published, and the sweep later rejected it
`orphan_timeout`, keeping the author's sats. Now a batch attaches the replies waiting for what
it publishes in the same transaction, under the sequencer (no task to lose, no window), and
the sweep repairs any such state left by older code.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from forum import nostr, protocol, tasks
from forum.ingest import reconcile, sweep
from forum.models import Event, LedgerEntry, Post, Rejection
from tests.conftest import need, record_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def pay_unreconciled(forum_node, event: nostr.Event, amount_msat: int, sender: str) -> str:
    """Pay `event` and record it in the ledger; its reconcile task is lost (never queued)."""
    invoice = forum_node.keysend(protocol.encode_event(event), amount_msat, sender=sender)
    record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    return invoice.payment_hash


def reply_state(reply: nostr.Event) -> tuple[str, str]:
    event = Event.objects.get(event_id=reply.id)
    return event.state, event.waiting_for


def test_lost_tasks_strand_nothing_the_sweep_queues_a_batch(forum_node, board, alice_key, bob_key):
    thread = nostr.thread_event(alice_key, board="general", title="t", content="first")
    reply = nostr.reply_event(bob_key, board="general", root=thread, content="second")
    pay_unreconciled(forum_node, reply, 2_000, "bob")
    pay_unreconciled(forum_node, thread, 10_000, "alice")
    assert not Event.objects.exists()  # nothing reconciled: both tasks were lost

    later = timezone.now() + timedelta(seconds=settings.ORPHAN_TIMEOUT_SECONDS + 60)
    report = sweep.sweep_run(now=later)
    assert (report.stale, report.orphans_expired) == (2, 0)
    tasks.sweep_handle(report)  # what the periodic task does: queue a batch

    assert reply_state(reply) == ("published", "")
    assert Post.objects.get(event__event_id=reply.id).thread.event.event_id == thread.id
    assert not Rejection.objects.exists()


def test_a_reply_paid_before_its_thread_is_published_with_it_whatever_the_batches(
    forum_node, board, alice_key, bob_key
):
    thread = nostr.thread_event(alice_key, board="general", title="t", content="first")
    first = nostr.reply_event(bob_key, board="general", root=thread, content="second")
    carol_key = nostr.generate_secret_key()  # (alice's reply would raise her thread's price)
    second = nostr.reply_event(carol_key, board="general", root=thread, parent=first, content="3")
    pay_unreconciled(forum_node, second, 2_000, "alice")
    pay_unreconciled(forum_node, first, 2_000, "bob")
    pay_unreconciled(forum_node, thread, 10_000, "alice")
    # One row per batch: each reply waits in its own transaction, and the thread's batch
    # publishes both (a chain) in the same transaction as the thread.
    while reconcile.reconcile_batch(limit=1).rows:
        pass
    assert reply_state(first) == reply_state(second) == ("published", "")
    assert Post.objects.get(event__event_id=second.id).parent.event.event_id == first.id
    assert [p.number for p in Post.objects.order_by("number")] == [1, 2]


def test_the_sweep_attaches_a_reply_left_waiting_by_older_code_and_never_expires_it(
    forum_node, board, alice_key, bob_key, monkeypatch
):
    thread = nostr.thread_event(alice_key, board="general", title="t", content="first")
    reply = nostr.reply_event(bob_key, board="general", root=thread, content="second")
    pay_unreconciled(forum_node, reply, 2_000, "bob")
    pay_unreconciled(forum_node, thread, 10_000, "alice")
    reconcile.reconcile_batch(limit=1)
    assert reply_state(reply) == ("pending", "parent")
    # The thread published by code that did not attach its replies (the per-row reconciler).
    monkeypatch.setattr(reconcile._Run, "_attach_children", lambda run, event_id: None)
    reconcile.reconcile_batch()
    monkeypatch.undo()
    assert reply_state(reply) == ("pending", "parent")

    later = timezone.now() + timedelta(seconds=settings.ORPHAN_TIMEOUT_SECONDS + 60)
    assert sweep.orphans_expire(now=later) == []  # its thread is published: never rejected
    report = sweep.sweep_run(now=later)
    assert (report.orphans_attached, report.orphans_expired) == (1, 0)
    assert reply_state(reply) == ("published", "")
    assert not Rejection.objects.exists()


def test_two_workers_racing_a_reply_and_its_thread_publish_both(
    forum_node, board, alice_key, bob_key
):
    need(connection.vendor == "postgresql", "truly concurrent workers need PostgreSQL")
    thread = nostr.thread_event(alice_key, board="general", title="t", content="first")
    reply = nostr.reply_event(bob_key, board="general", root=thread, content="second")
    pay_unreconciled(forum_node, reply, 2_000, "bob")
    pay_unreconciled(forum_node, thread, 10_000, "alice")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            while reconcile.reconcile_batch(limit=1).rows:
                pass
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors, errors
    assert LedgerEntry.objects.filter(reconcile_state="done").count() == 2
    assert Event.objects.get(event_id=thread.id).state == "published"
    assert reply_state(reply) == ("published", "")
    assert Post.objects.filter(event__event_id=reply.id).count() == 1
