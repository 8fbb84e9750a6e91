"""Hold mode, multipart: parts stay held until the set is complete, then settle together, or
are cancelled together (invalid set, a repeated part, or the hold time about to run out)."""

from __future__ import annotations

import time

import pytest

from forum import nostr, protocol
from forum.models import Event, LedgerEntry, Rejection
from tests.forum.hold.conftest import Hold, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def three_parts(event: nostr.Event) -> list[dict[int, bytes]]:
    data = protocol.pack_event(event)
    third = -(-len(data) // 3)
    chunks = [data[i : i + third] for i in range(0, len(data), third)]
    assert len(chunks) == 3
    return [protocol.encode_part(event.id, i, 3, chunk) for i, chunk in enumerate(chunks)]


def long_thread(key: str, board: str = "general") -> nostr.Event:
    return nostr.thread_event(key, board=board, title="long", content="word " * 120)


def test_parts_are_held_until_complete_then_settle(listening: Hold, board, alice_key):
    event = long_thread(alice_key)
    parts = three_parts(event)
    before = listening.balances_msat("alice")
    first = [listening.pay(parts[0], 4_000), listening.pay(parts[1], 3_000)]
    listening.wait_held(2)
    time.sleep(0.6)  # a few review rounds: still held, nothing settled
    assert not any(f.done() for f in first)
    assert len(listening.held()) == 2
    assert not LedgerEntry.objects.exists()

    last = listening.pay(parts[2], 3_000)
    payments = [listening.result(f) for f in [*first, last]]
    assert all(p.succeeded for p in payments)
    wait_for(
        lambda: Event.objects.filter(event_id=event.id, state="published").exists(),
        what="the joined thread",
    )
    stored = Event.objects.get(event_id=event.id)
    assert stored.paid_msat == 10_000
    spent = sum(before[c][0] - now for c, (now, _) in listening.balances_msat("alice").items())
    assert spent == 10_000
    assert not Rejection.objects.exists()


def test_invalid_set_is_cancelled_together(listening: Hold, board, alice_key):
    event = long_thread(alice_key, board="nowhere")
    before = listening.balances_msat("alice")
    futures = [listening.pay(records, 4_000) for records in three_parts(event)]
    payments = [listening.result(f) for f in futures]
    assert all(p.failure_reason == CANCELED for p in payments)
    assert listening.balances_msat("alice") == before
    entries = LedgerEntry.objects.filter(event_id=event.id)
    assert entries.count() == 3
    assert {e.status for e in entries} == {"cancelled"}
    assert {e.pubkey for e in entries} == {event.pubkey}
    reasons = list(Rejection.objects.filter(event_ref=event.id).values_list("reason", flat=True))
    assert reasons == ["unknown_board"] * 3


def test_parts_that_do_not_join_are_cancelled(listening: Hold, board, alice_key):
    event = long_thread(alice_key)
    other = nostr.thread_event(alice_key, board="general", title="t", content="y")
    data = protocol.pack_event(event)
    half = len(data) // 2
    futures = [
        listening.pay(protocol.encode_part(other.id, 0, 2, data[:half]), 5_000),
        listening.pay(protocol.encode_part(other.id, 1, 2, data[half:]), 5_000),
    ]
    assert all(listening.result(f).failure_reason == CANCELED for f in futures)
    reasons = set(Rejection.objects.filter(event_ref=other.id).values_list("reason", flat=True))
    assert reasons == {"bad_id"}


def test_repeated_part_is_cancelled_and_the_set_still_completes(listening: Hold, board, alice_key):
    event = long_thread(alice_key)
    parts = three_parts(event)
    first = listening.pay(parts[0], 4_000)
    listening.wait_held(1)
    again = listening.result(listening.pay(parts[0], 4_000))
    assert again.failure_reason == CANCELED
    assert Rejection.objects.get(ledger_entry__payment_hash=again.payment_hash).reason == (
        "duplicate"
    )
    rest = [listening.pay(parts[1], 3_000), listening.pay(parts[2], 3_000)]
    assert all(listening.result(f).succeeded for f in [first, *rest])
    wait_for(
        lambda: Event.objects.filter(event_id=event.id, state="published").exists(),
        what="the joined thread",
    )


def test_incomplete_set_is_cancelled_before_the_hold_time_ends(hold: Hold, board, alice_key):
    hold.set_hold_seconds(4)  # the node would cancel after 4 s; the forum gives up ~1.3 s earlier
    hold.start_listener()
    event = long_thread(alice_key)
    parts = three_parts(event)
    before = hold.balances_msat("alice")
    started = time.monotonic()
    futures = [hold.pay(parts[0], 4_000), hold.pay(parts[2], 3_000)]
    payments = [hold.result(f) for f in futures]
    assert all(p.failure_reason == CANCELED for p in payments)
    assert time.monotonic() - started < 4  # cancelled by the forum, not by the node's timer
    assert hold.balances_msat("alice") == before
    rejections = list(Rejection.objects.filter(event_ref=event.id))
    assert [r.reason for r in rejections] == ["incomplete_parts"] * 2
    assert "2 of 3" in rejections[0].message
