"""Hold mode across restarts: payments held while no listener runs are decided when one starts;
a recorded cancellation is repeated, never reconsidered; what the node cancelled at the hold
time is still on record."""

from __future__ import annotations

import pytest

from forum import nostr
from forum.ingest import hold as hold_service
from forum.ingest.rules import Finding
from forum.models import Event, LedgerEntry, Rejection
from tests.forum.hold.conftest import Hold, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def test_payments_held_while_stopped_are_decided_on_start(hold: Hold, board, alice_key, bob_key):
    hold.start_listener()
    hold.stop_listener()  # a listener that ran and stopped (crash, deploy) ...
    good = nostr.thread_event(alice_key, board="general", title="t", content="fine")
    bad = nostr.thread_event(bob_key, board="nope", title="t", content="lost")
    before = hold.balances_msat("bob")
    futures = [hold.post(good, 10_000), hold.post(bad, 10_000, sender="bob")]
    hold.wait_held(2)
    assert not LedgerEntry.objects.exists()  # ... and nobody decides while it is down

    hold.start_listener()  # the session's first scan finds both
    assert hold.result(futures[0]).succeeded
    assert hold.result(futures[1]).failure_reason == CANCELED
    wait_for(
        lambda: Event.objects.filter(event_id=good.id, state="published").exists(),
        what="the valid post",
    )
    assert hold.balances_msat("bob") == before
    assert Rejection.objects.get(event_ref=bad.id).reason == "unknown_board"
    assert not hold.held()


def test_recorded_cancellation_is_repeated_not_reconsidered(hold: Hold, board, alice_key):
    """A crash between recording a cancellation and telling the node: the restart cancels,
    even though the payment would pass the checks now (here: the board appeared since)."""
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    future = hold.post(event, 10_000)
    (invoice,) = hold.wait_held(1)
    hold_service.hold_attempt_record(
        invoice=invoice,
        node_pubkey=hold.pubkey,
        finding=Finding("unknown_board", {"slug": "general"}),
        event_ref=event.id,
    )
    hold.start_listener()
    assert hold.result(future).failure_reason == CANCELED
    assert not Event.objects.filter(event_id=event.id).exists()
    assert LedgerEntry.objects.get(payment_hash=invoice.payment_hash).status == "cancelled"


def test_node_cancels_at_the_hold_time_and_the_attempt_is_recorded(hold: Hold, board, alice_key):
    hold.set_hold_seconds(1)
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    before = hold.balances_msat("alice")
    payment = hold.result(hold.post(event, 10_000))  # nobody reviews: the node gives up
    assert payment.failure_reason == CANCELED
    assert hold.balances_msat("alice") == before

    hold.start_listener()  # the stream's add backlog shows the cancelled keysend
    entry = wait_for(
        lambda: LedgerEntry.objects.filter(payment_hash=payment.payment_hash).first(),
        what="the expired attempt",
    )
    assert (entry.status, entry.amount_msat, entry.event_id) == ("cancelled", 10_000, event.id)
    rejection = Rejection.objects.get(ledger_entry=entry)
    assert rejection.reason == "hold_expired" and "No charge" in rejection.message


def test_simnet_apply_follows_the_settings(held_net, settings):
    """The embedded process and `manage.py simnet` set the node's hold time on every start."""
    forum = held_net.network.nodes["forum"]
    settings.HOLD_MODE, settings.HOLD_SECONDS = True, 42
    hold_service.simnet_apply(held_net)
    assert forum.keysend_hold_seconds == 42
    settings.HOLD_MODE = False
    hold_service.simnet_apply(held_net)
    assert forum.keysend_hold_seconds == 0
    settings.HOLD_MODE, settings.HOLD_SECONDS = True, 30
    hold_service.simnet_apply(held_net)
    assert forum.keysend_hold_seconds == 30
