"""Arrival order does not matter: parts in any order, replies before their thread."""

from __future__ import annotations

import pytest

from forum import nostr, protocol
from forum.models import Event, LedgerEntry, MessagePart, Post, Rejection, Thread

pytestmark = pytest.mark.django_db(transaction=True)


def parts_of(event: nostr.Event, budget: int = 220) -> list[dict[int, bytes]]:
    payments = protocol.split_event(event, budget=budget)
    assert len(payments) >= 3, "the event should need several parts at this budget"
    return payments


def test_parts_out_of_order_publish_once(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="Long", content="word " * 120)
    payments = parts_of(event)
    amount = -(-10_000 // len(payments))
    entries = [poster.pay(records, amount) for records in reversed(payments)]
    thread = Thread.objects.get(event__event_id=event.id)
    assert thread.content == event.content
    assert thread.sats_msat == amount * len(payments)
    assert MessagePart.objects.filter(event_id=event.id).count() == len(payments)
    # The joined event is the author's; every part's row is reconciled (the batch takes
    # rows in settle order, so no part needs to carry the author for ordering any more).
    assert Event.objects.get(event_id=event.id).pubkey == nostr.public_key(alice_key)
    assert len(entries) == len(payments)
    assert set(LedgerEntry.objects.values_list("reconcile_state", flat=True)) == {"done"}
    assert not Rejection.objects.exists()


def test_parts_underpaid_in_total(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="Long", content="word " * 120)
    payments = parts_of(event)
    for records in payments:
        poster.pay(records, 1_000)
    stored = Event.objects.get(event_id=event.id)
    assert (stored.state, stored.waiting_for) == ("pending", "underpaid")
    assert stored.paid_msat == 1_000 * len(payments)
    [rejection] = Rejection.objects.filter(reason="underpaid")
    assert rejection.amount_msat == stored.paid_msat


def test_repeated_part_is_a_duplicate(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="Long", content="word " * 120)
    payments = parts_of(event)
    poster.pay(payments[0], 4_000)
    again = poster.pay(payments[0], 4_000)
    assert Rejection.objects.get(ledger_entry=again).reason == "duplicate"
    for records in payments[1:]:
        poster.pay(records, 4_000)
    assert Thread.objects.filter(event__event_id=event.id).exists()


def test_reply_before_thread_waits_then_attaches(poster, board, alice_key, bob_key):
    carol_key = nostr.generate_secret_key()  # a third author: no escalation from the replies
    root = nostr.thread_event(carol_key, board="general", title="Root", content="r")
    first = nostr.reply_event(bob_key, board="general", root=root, content="one")
    nested = nostr.reply_event(alice_key, board="general", root=root, parent=first, content="two")
    # Deepest first: the nested reply waits for its parent, which waits for the thread.
    poster.post(nested, 2_000)
    poster.post(first, 2_000, sender="bob")
    assert set(Event.objects.values_list("waiting_for", flat=True)) == {"parent"}
    assert not Post.objects.exists()
    poster.post(root, 10_000)
    thread = Thread.objects.get(event__event_id=root.id)
    posts = {p.event.event_id: p for p in Post.objects.select_related("event", "parent__event")}
    assert posts[first.id].number == 1 and posts[first.id].parent is None
    assert posts[nested.id].number == 2 and posts[nested.id].parent.event.event_id == first.id
    thread.refresh_from_db()
    assert thread.reply_count == 2
    assert not Rejection.objects.exists()


def test_reply_to_thread_on_another_board_is_rejected(poster, board, alice_key, bob_key):
    from forum.models import Board

    Board.objects.create(slug="other", title="Other")
    root = nostr.thread_event(alice_key, board="general", title="Root", content="r")
    poster.post(root, 10_000)
    stray = nostr.sign_event(
        bob_key,
        kind=nostr.KIND_REPLY,
        tags=[
            ["E", root.id, "", root.pubkey],
            ["K", "11"],
            ["P", root.pubkey],
            ["e", root.id, "", root.pubkey],
            ["k", "11"],
            ["p", root.pubkey],
            ["h", "other"],
        ],
        content="wrong board",
    )
    entry = poster.post(stray, 2_000, sender="bob")
    assert Rejection.objects.get(ledger_entry=entry).reason == "malformed"
