"""Guard: the sweep finds a settled payment the ledger lacks (below the listener's cursor, or
above it and old enough) by asking the node's ListInvoices, records it and reconciles it.

Runs on a simnet of its own, so the node's invoice history is only this test's.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from forum import nostr, protocol, tasks
from forum.ingest import listener, sweep
from forum.models import Event, LedgerEntry, ListenerCursor, Thread
from tests.conftest import record_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def settled_on_node(node) -> dict[str, int]:
    return {inv.payment_hash: inv.settle_index for inv in listener.settled_backlog(node.client)}


def test_payment_missing_below_the_cursor_is_filled_and_published(
    fresh_forum_node, board, alice_key, bob_key
):
    node = fresh_forum_node
    posts = [
        nostr.thread_event(key, board="general", title=f"t{i}", content=f"c{i}")
        for i, key in enumerate([alice_key, bob_key, nostr.generate_secret_key()])
    ]
    invoices = [node.keysend(protocol.encode_event(p), 10_000) for p in posts]
    # The listener recorded the first and the last; the middle one slipped through.
    for invoice in (invoices[0], invoices[2]):
        record_invoice(invoice, node_pubkey=node.pubkey)
    missing = invoices[1]
    cursor = ListenerCursor.objects.get(node_pubkey=node.pubkey)
    assert missing.settle_index < cursor.settle_index
    assert not LedgerEntry.objects.filter(payment_hash=missing.payment_hash).exists()

    report = sweep.sweep_run(now=timezone.now(), client=node.client)
    tasks.sweep_handle(report)

    assert report.node_error == ""
    assert report.invoices_filled == 1
    entry = LedgerEntry.objects.get(payment_hash=missing.payment_hash)
    assert (entry.settle_index, entry.amount_msat) == (missing.settle_index, 10_000)
    assert entry.reconcile_state == "done"
    assert Event.objects.get(event_id=posts[1].id).state == "published"
    assert Thread.objects.count() == 3
    # Node and ledger agree, one row each; the cursor did not move.
    recorded = dict(LedgerEntry.objects.values_list("payment_hash", "settle_index"))
    assert recorded == settled_on_node(node)
    assert ListenerCursor.objects.get(node_pubkey=node.pubkey).settle_index == cursor.settle_index
    assert (
        sweep.sweep_run(now=timezone.now(), client=node.client).invoices_filled == 0
    )  # nothing twice


def test_fresh_payment_above_the_cursor_is_left_to_the_listener_until_it_is_old(
    fresh_forum_node, board, alice_key
):
    node = fresh_forum_node
    first = node.keysend(protocol.encode_event(
        nostr.thread_event(alice_key, board="general", title="a", content="a")
    ), 10_000)  # fmt: skip
    record_invoice(first, node_pubkey=node.pubkey)
    event = nostr.thread_event(alice_key, board="general", title="b", content="b")
    late = node.keysend(protocol.encode_event(event), 20_000)

    # Settled a moment ago, above the cursor: the stream will bring it; no race with it.
    assert sweep.sweep_run(now=timezone.now(), client=node.client).invoices_filled == 0
    assert not LedgerEntry.objects.filter(payment_hash=late.payment_hash).exists()

    # Still missing two minutes on: the stream lost it, the sweep records it.
    later = timezone.now() + timedelta(minutes=2)
    report = sweep.sweep_run(now=later, client=node.client)
    tasks.sweep_handle(report)
    assert report.invoices_filled == 1
    assert Event.objects.get(event_id=event.id).state == "published"
    recorded = dict(LedgerEntry.objects.values_list("payment_hash", "settle_index"))
    assert recorded == settled_on_node(node)
