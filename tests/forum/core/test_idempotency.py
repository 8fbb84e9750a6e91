"""Exactly once: the same invoice twice, the same task twice (also at the same moment)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from forum import nostr, protocol
from forum.ingest import ledger, reconcile
from forum.models import Event, LedgerEntry, ListenerCursor, Post, Thread
from tests.conftest import need, record_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def test_same_invoice_recorded_twice(forum_node, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
    first, created = record_invoice(invoice, node_pubkey=forum_node.pubkey)
    again, created_again = record_invoice(invoice=invoice, node_pubkey=forum_node.pubkey)
    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert LedgerEntry.objects.count() == 1
    assert Thread.objects.count() == 1
    cursor = ListenerCursor.objects.get(node_pubkey=forum_node.pubkey)
    assert cursor.settle_index == invoice.settle_index


def test_stored_records_round_trip(forum_node, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="ünïcødé")
    records = protocol.encode_event(event)
    invoice = forum_node.keysend(records, 10_000)
    entry, _ = record_invoice(invoice=invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    stored = ledger.entry_records(entry)
    assert {t: v for t, v in stored.items() if t in records} == records
    assert (entry.purpose, entry.pubkey, entry.event_id) == ("message", event.pubkey, event.id)


def test_task_run_twice_in_a_row(forum_node, board, alice_key):
    from forum import tasks

    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
    record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    assert tasks.reconcile_batch.apply().get() == 1
    assert tasks.reconcile_batch.apply().get() == 0
    assert Thread.objects.count() == 1
    assert Event.objects.get().paid_msat == 10_000


def test_same_task_twice_concurrently(forum_node, board, alice_key):
    need(connection.vendor == "postgresql", "truly concurrent tasks need PostgreSQL row locks")
    root = nostr.thread_event(alice_key, board="general", title="t", content="c")
    invoice = forum_node.keysend(protocol.encode_event(root), 10_000)
    record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    reconcile.reconcile_batch()
    hashes = []
    for i in range(5):
        # Five different authors, so no escalation: every reply is paid in full.
        key = nostr.generate_secret_key()
        reply = nostr.reply_event(key, board="general", root=root, content=f"r{i}")
        invoice = forum_node.keysend(protocol.encode_event(reply), 2_000, sender="bob")
        record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)
        hashes.append(invoice.payment_hash)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            while reconcile.reconcile_batch(limit=2).rows:
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors, errors
    assert Post.objects.count() == 5
    assert sorted(Post.objects.values_list("number", flat=True)) == [1, 2, 3, 4, 5]
    thread = Thread.objects.get()
    assert thread.reply_count == 5
    assert thread.sats_msat == 10_000 + 5 * 2_000
