"""Hold mode, incomplete part sets: a refused repeat part leaves nothing behind, and giving up
on an incomplete set keeps working (ledger row and `incomplete_parts` for every part), however
many repeats came before; a part that arrives after its siblings were given up never settles."""

from __future__ import annotations

import time

import pytest

from forum import nostr, protocol
from forum.models import Event, LedgerEntry, Rejection
from tests.forum.hold.conftest import Hold, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def split(event: nostr.Event, count: int) -> list[dict[int, bytes]]:
    data = protocol.pack_event(event)
    size = -(-len(data) // count)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert len(chunks) == count
    return [protocol.encode_part(event.id, i, count, chunk) for i, chunk in enumerate(chunks)]


def published(event_id: str) -> bool:
    return Event.objects.filter(event_id=event_id, state="published").exists()


def test_a_repeated_part_does_not_stop_incomplete_sets_from_being_given_up(
    hold: Hold, board, alice_key, bob_key
):
    hold.set_hold_seconds(4)  # the forum gives up on a set ~1.3 s before the node would
    hold.start_listener()
    root = nostr.thread_event(alice_key, board="general", title="root", content="c")
    assert hold.result(hold.post(root, 10_000)).succeeded
    wait_for(lambda: published(root.id), what="the thread")

    # A 2-part reply settles and is published.
    reply = nostr.reply_event(bob_key, board="general", root=root, content="word " * 120)
    reply_parts = split(reply, 2)
    futures = [hold.pay(p, 1_000, sender="bob") for p in reply_parts]
    assert all(hold.result(f).succeeded for f in futures)
    wait_for(lambda: published(reply.id), what="the 2-part reply")

    # Its part 0 sent again is refused and costs nothing.
    before_bob = hold.balances_msat("bob")
    again = hold.result(hold.pay(reply_parts[0], 1_000, sender="bob"))
    assert again.failure_reason == CANCELED
    assert hold.balances_msat("bob") == before_bob
    assert Rejection.objects.get(ledger_entry__payment_hash=again.payment_hash).reason == (
        "duplicate"
    )

    # A fresh incomplete set is still given up by the forum, recorded, before the node's timer.
    event = nostr.thread_event(alice_key, board="general", title="long", content="word " * 120)
    parts = split(event, 3)
    before = hold.balances_msat("alice")
    started = time.monotonic()
    first_two = [hold.pay(parts[0], 4_000), hold.pay(parts[1], 3_000)]
    payments = [hold.result(f) for f in first_two]
    assert all(p.failure_reason == CANCELED for p in payments)
    assert time.monotonic() - started < 4  # the forum's decision, not the node's hold timer
    for payment in payments:
        entry = LedgerEntry.objects.get(payment_hash=payment.payment_hash)
        assert entry.status == LedgerEntry.Status.CANCELLED
        rejection = Rejection.objects.get(ledger_entry=entry)
        assert rejection.reason == "incomplete_parts"
        assert "2 of 3" in rejection.message

    # The last part, late: its siblings are gone, so it must never settle on its own.
    late = hold.result(hold.pay(parts[2], 3_000))
    assert late.failure_reason == CANCELED
    assert hold.balances_msat("alice") == before  # nothing of the set was charged
    late_entry = LedgerEntry.objects.get(payment_hash=late.payment_hash)
    assert late_entry.status == LedgerEntry.Status.CANCELLED
    late_rejection = Rejection.objects.get(ledger_entry=late_entry)
    assert late_rejection.reason == "incomplete_parts" and "1 of 3" in late_rejection.message
    assert not Event.objects.filter(event_id=event.id).exists()
    assert not LedgerEntry.objects.filter(event_id=event.id, status="settled").exists()
