"""What people see of a cancelled attempt: the composer's status (live and polled), the
moderators' rejected list, and revenue that leaves it out."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from forum import nostr, realtime
from forum.models import Event, LedgerEntry, Rejection
from forum.selectors import moderation as mod_selectors
from forum.services.moderation.refund import refund_blocker
from tests.forum.group_messages import listen, received
from tests.forum.hold.conftest import Hold, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_composer_is_told_rejected_and_not_charged(listening: Hold, board, alice_key, client):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    layer, channel = listen(realtime.payment_group(event.id))
    payment = listening.result(listening.post(event, 4_000))  # the price is 10 sats
    assert payment.status == "FAILED"

    statuses = [m["payload"] for m in received(layer, channel) if m["type"] == "message.status"]
    assert statuses, "no message.status broadcast"
    final = statuses[-1]
    assert (final["state"], final["reason"], final["charged"]) == ("rejected", "underpaid", False)
    assert final["event_id"] == event.id
    assert "No charge: the payment was cancelled" in final["message"]
    assert "paid" not in [s["state"] for s in statuses]  # it never was

    # Polling says the same, by event id and by payment hash.
    for key in (event.id, payment.payment_hash):
        polled = client.get(f"/api/status/{key}").json()
        assert (polled["state"], polled["reason"], polled["charged"]) == (
            "rejected",
            "underpaid",
            False,
        ), key
        assert "No charge" in polled["message"]


def test_moderators_see_the_attempt_and_revenue_leaves_it_out(
    listening: Hold, board, alice_key, bob_key
):
    good = nostr.thread_event(alice_key, board="general", title="paid", content="c")
    bad = nostr.thread_event(bob_key, board="elsewhere", title="spam", content="c")
    assert listening.result(listening.post(good, 10_000)).succeeded
    assert listening.result(listening.post(bad, 7_000, sender="bob")).status == "FAILED"
    wait_for(
        lambda: Event.objects.filter(event_id=good.id, state="published").exists(),
        what="the paid thread",
    )

    rows = list(mod_selectors.rejections_list(mod_selectors.QueueFilters()))
    assert [(r.reason, r.amount_msat, r.event_ref) for r in rows] == [
        ("unknown_board", 7_000, bad.id)
    ]
    assert rows[0].ledger_entry.status == LedgerEntry.Status.CANCELLED
    assert "Nothing was charged" in refund_blocker(rows[0])
    assert not mod_selectors.rejections_list(mod_selectors.QueueFilters(), refundable_only=True)

    today = mod_selectors.revenue_today()
    assert today.received_msat == 10_000
    bob = mod_selectors.author_overview(bad.pubkey)
    assert bob.paid_msat == 0 and bob.payments == [] and len(bob.rejections) == 1


def test_revenue_excludes_cancelled_rows(db):
    now = timezone.now()
    common = {"node_pubkey": "02" + "11" * 32, "settled_at": now, "purpose": "message"}
    LedgerEntry.objects.create(payment_hash="aa" * 32, amount_msat=5_000, **common)
    LedgerEntry.objects.create(
        payment_hash="bb" * 32, amount_msat=70_000, status=LedgerEntry.Status.CANCELLED, **common
    )
    result = mod_selectors.revenue(start=now.date() - dt.timedelta(days=1), end=now.date())
    assert result.total.received_msat == 5_000
    assert not Rejection.objects.exists()


def test_hold_message_sentences():
    from forum.ingest.rejections import rejection_message

    charged = rejection_message(
        "underpaid", price_sats=20, paid_sats=10, short_sats=10, event_id="ab" * 32
    )
    held = rejection_message("underpaid", charged=False, price_sats=20, paid_sats=10)
    assert "Top up" in charged and "Top up" not in held
    assert held.startswith("rate-limited: ") and held.endswith("the sats went back.")
