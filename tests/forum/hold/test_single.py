"""Hold mode, one keysend per message: valid posts settle and publish, every rejection reason
cancels and leaves the payer exactly as rich as before (routing fees included)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from forum import nostr, protocol
from forum.models import Ban, Board, Event, LedgerEntry, Rejection, Thread
from tests.forum.hold.conftest import Hold, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

R = protocol.RECORD_TYPES
CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def _published(event_id: str) -> Callable[[], bool]:
    return lambda: Event.objects.filter(event_id=event_id, state="published").exists()


def assert_cancelled(
    hold: Hold, records: dict[int, bytes], amount_msat: int, reason: str, *, sender: str = "alice"
) -> Rejection:
    """Pay, expect the payment to fail back, the balance untouched and the attempt on record."""
    before = hold.balances_msat(sender)
    payment = hold.result(hold.pay(records, amount_msat, sender=sender))
    assert payment.status == "FAILED" and payment.failure_reason == CANCELED
    assert hold.balances_msat(sender) == before  # amount and routing fees came back
    entry = LedgerEntry.objects.get(payment_hash=payment.payment_hash)
    assert entry.status == LedgerEntry.Status.CANCELLED
    assert entry.amount_msat == amount_msat and entry.settle_index is None
    assert entry.reconcile_state == "done"
    rejection = Rejection.objects.get(ledger_entry=entry)
    assert rejection.reason == reason
    assert "No charge: the payment was cancelled" in rejection.message
    assert hold.client.lookup_invoice(payment.payment_hash).state == "CANCELED"
    return rejection


def test_valid_thread_and_reply_settle_and_publish(listening, board, alice_key, bob_key):
    thread = nostr.thread_event(alice_key, board="general", title="Held", content="first")
    before = listening.balances_msat("alice")
    payment = listening.result(listening.post(thread, 10_000))
    assert payment.succeeded
    wait_for(_published(thread.id), what="the thread")
    reply = nostr.reply_event(bob_key, board="general", root=thread, content="welcome")
    assert listening.result(listening.post(reply, 2_000, sender="bob")).succeeded
    wait_for(_published(reply.id), what="the reply")

    spent = sum(before[c][0] - now for c, (now, _) in listening.balances_msat("alice").items())
    assert spent == 10_000  # direct channel: no fee
    entry = LedgerEntry.objects.get(payment_hash=payment.payment_hash)
    assert entry.status == LedgerEntry.Status.SETTLED and entry.settle_index
    assert Thread.objects.get(event__event_id=thread.id).reply_count == 1
    assert not Rejection.objects.exists()


def test_donation_settles(listening, board):
    payment = listening.result(listening.pay({}, 3_000))
    assert payment.succeeded
    entry = wait_for(
        lambda: LedgerEntry.objects.filter(payment_hash=payment.payment_hash).first(),
        what="the ledger row",
    )
    assert (entry.purpose, entry.status) == ("other", "settled")


def _thread(key: str, **kw: Any) -> nostr.Event:
    return nostr.thread_event(
        key, board=kw.pop("board", "general"), title=kw.pop("title", "t"), content="c", **kw
    )


def test_malformed(listening, board):
    assert_cancelled(
        listening, {R["version"]: b"1", R["pubkey"]: b"not base64!"}, 5_000, "malformed"
    )


def test_bad_signature(listening, board, alice_key):
    records = protocol.encode_event(_thread(alice_key))
    records[R["content"]] = b"tampered"
    rejection = assert_cancelled(listening, records, 10_000, "bad_signature")
    assert rejection.event_ref


def test_unsupported_kind(listening, board, alice_key):
    event = nostr.sign_event(alice_key, kind=1, tags=[["h", "general"]], content="a note")
    assert_cancelled(listening, protocol.encode_event(event), 10_000, "unsupported_kind")


def test_unknown_board(listening, board, alice_key):
    event = _thread(alice_key, board="nope")
    rejection = assert_cancelled(listening, protocol.encode_event(event), 10_000, "unknown_board")
    assert rejection.event_ref == event.id and rejection.pubkey == event.pubkey


def test_too_large(listening, board, alice_key):
    Board.objects.filter(pk=board.pk).update(max_content_length=10)
    event = nostr.thread_event(alice_key, board="general", title="t", content="x" * 11)
    assert_cancelled(listening, protocol.encode_event(event), 10_000, "too_large")


def test_banned_over_two_hops(listening, board, bob_key):
    """bob pays through router1: the routing fee comes back too."""
    Ban.objects.create(pubkey=nostr.public_key(bob_key), reason="spam")
    event = _thread(bob_key)
    assert_cancelled(listening, protocol.encode_event(event), 10_000, "banned", sender="bob")


def test_thread_locked(listening, board, alice_key, bob_key):
    root = _thread(alice_key)
    assert listening.result(listening.post(root, 10_000)).succeeded
    wait_for(_published(root.id), what="the thread")
    Thread.objects.filter(event__event_id=root.id).update(is_locked=True)
    reply = nostr.reply_event(bob_key, board="general", root=root, content="late")
    assert_cancelled(listening, protocol.encode_event(reply), 2_000, "thread_locked")


def test_underpaid_at_the_current_price(listening, board, alice_key):
    first = _thread(alice_key, title="one")
    assert listening.result(listening.post(first, 10_000)).succeeded
    wait_for(_published(first.id), what="the first thread")
    # The second thread within the window costs 2 x 10 sats now.
    second = _thread(alice_key, title="two")
    rejection = assert_cancelled(listening, protocol.encode_event(second), 10_000, "underpaid")
    assert "costs 20 sats" in rejection.message and "Top up" not in rejection.message
    assert not Event.objects.filter(event_id=second.id).exists()
    # Paying the price settles it.
    assert listening.result(listening.post(second, 20_000)).succeeded
    wait_for(_published(second.id), what="the second thread")


def test_duplicate_of_a_published_event(listening, board, alice_key):
    event = _thread(alice_key)
    assert listening.result(listening.post(event, 10_000)).succeeded
    wait_for(_published(event.id), what="the thread")
    assert_cancelled(listening, protocol.encode_event(event), 10_000, "duplicate")


def test_unknown_target_topup_and_tip(listening, board, alice_key):
    assert_cancelled(listening, protocol.encode_topup("ab" * 32), 1_000, "unknown_target")
    assert_cancelled(listening, protocol.encode_tip("cd" * 32), 1_000, "unknown_target")


def test_tip_for_a_published_post_settles(listening, board, alice_key):
    event = _thread(alice_key)
    assert listening.result(listening.post(event, 10_000)).succeeded
    wait_for(_published(event.id), what="the thread")
    tip = listening.result(listening.pay(protocol.encode_tip(event.id), 5_000, sender="bob"))
    assert tip.succeeded


def test_room_create_settles_at_the_room_price_and_cancels_below_it(listening, settings, alice_key):
    from forum.services import rooms

    settings.ROOM_PRICE_SATS = 50
    cheap = rooms.room_event(alice_key, slug="held-room", name="Held", password="pw")
    assert_cancelled(listening, protocol.encode_event(cheap), 40_000, "underpaid")
    assert not Board.objects.filter(slug="held-room").exists()
    room = rooms.room_event(alice_key, slug="held-room", name="Held", password="pw2")
    assert listening.result(listening.post(room, 50_000)).succeeded
    wait_for(lambda: Board.objects.filter(slug="held-room").exists(), what="the room")


def test_a_burst_is_priced_in_order_and_nothing_is_charged_for_a_rejection(
    listening, board, alice_key
):
    """Two threads at the base price at once: the second costs double by the time it is
    checked (the first was approved), so it is cancelled instead of settled and rejected."""
    first, second = (_thread(alice_key, title=t) for t in ("one", "two"))
    futures = [listening.post(first, 10_000), listening.post(second, 10_000)]
    payments = [listening.result(f) for f in futures]
    assert sorted(p.status for p in payments) == ["FAILED", "SUCCEEDED"]
    wait_for(
        lambda: Event.objects.filter(state="published").count() == 1, what="one published thread"
    )
    charged = Rejection.objects.filter(ledger_entry__status=LedgerEntry.Status.SETTLED)
    assert not charged.exists()
    assert Rejection.objects.get().reason == "underpaid"


def test_topup_of_an_event_kept_as_underpaid_before_hold_mode_settles(listening, board, alice_key):
    """An underpaid post kept (charged) while the node did not hold keysends can still be
    completed by a top-up once it does: the top-up is settled, not cancelled."""
    event = _thread(alice_key)
    listening.net.network.set_keysend_hold("forum", 0)
    assert listening.result(listening.post(event, 4_000)).succeeded  # settled at once
    wait_for(
        lambda: Event.objects.filter(event_id=event.id, waiting_for="underpaid").exists(),
        what="the underpaid event",
    )
    listening.net.network.set_keysend_hold("forum", 30)
    topup = listening.result(listening.pay(protocol.encode_topup(event.id), 6_000))
    assert topup.succeeded
    wait_for(_published(event.id), what="the topped-up thread")
