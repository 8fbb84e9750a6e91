"""Hold mode, posts paid by BOLT11 hold invoice: the forum checks the event before issuing the
invoice, the hold reviewer judges it again while the HTLC is held (the one verdict), and a
settled invoice becomes a ledger row that reconciliation publishes like a keysend."""

from __future__ import annotations

import pytest

from forum import nostr
from forum.models import Event, InvoiceIntent, LedgerEntry, Rejection, Thread
from tests.forum.hold.conftest import wait_for
from tests.forum.invoices.conftest import ask_invoice, pay_invoice

pytestmark = pytest.mark.django_db(transaction=True)

CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def _spent(before: dict, after: dict) -> int:
    return sum(before[c][0] - after[c][0] for c in before)


def test_thread_paid_by_invoice_is_published(listening, board, alice_key, client):
    thread = nostr.thread_event(alice_key, board="general", title="By invoice", content="hi")
    answer = ask_invoice(client, thread)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["amount_msat"] == 10_000 and body["event_id"] == thread.id
    assert body["payment_request"].startswith("lnbcrt")
    assert body["hold"] is True
    # Asking again for the same event while it is open: the same invoice.
    again = ask_invoice(client, thread)
    assert again.status_code == 200 and again.json()["payment_hash"] == body["payment_hash"]
    status = client.get(f"/api/status/{body['payment_hash']}").json()
    assert status["state"] == "waiting" and status["waiting_for"] == "payment"

    before = listening.balances_msat("bob")
    payment = pay_invoice(listening, body["payment_request"], sender="bob").result(timeout=20)
    assert payment.succeeded, payment.failure_reason
    wait_for(
        lambda: Event.objects.filter(event_id=thread.id, state="published").exists(),
        what="the thread published",
    )
    assert _spent(before, listening.balances_msat("bob")) >= 10_000
    entry = LedgerEntry.objects.get(payment_hash=body["payment_hash"])
    assert entry.status == LedgerEntry.Status.SETTLED and not entry.is_keysend
    assert entry.purpose == LedgerEntry.Purpose.MESSAGE and entry.event_id == thread.id
    assert Thread.objects.get(event__event_id=thread.id).title == "By invoice"
    intent = InvoiceIntent.objects.get(payment_hash=body["payment_hash"])
    assert intent.state == InvoiceIntent.State.SETTLED
    status = client.get(f"/api/status/{body['payment_hash']}").json()
    assert status["state"] == "published" and status["number"] == 0


def test_post_invalid_when_paid_is_cancelled_and_costs_nothing(listening, board, alice_key, client):
    """Valid when the invoice was issued, locked out by a ban before the payment: the reviewer
    cancels it (the one verdict at the moment of the HTLC), the payer keeps every sat."""
    from forum.models import Ban

    thread = nostr.thread_event(alice_key, board="general", title="Too late", content="x")
    body = ask_invoice(client, thread).json()
    Ban.objects.create(pubkey=thread.pubkey, reason="spam")
    before = listening.balances_msat("bob")
    payment = pay_invoice(listening, body["payment_request"], sender="bob").result(timeout=20)
    assert payment.status == "FAILED" and payment.failure_reason == CANCELED
    assert listening.balances_msat("bob") == before
    entry = LedgerEntry.objects.get(payment_hash=body["payment_hash"])
    assert entry.status == LedgerEntry.Status.CANCELLED and entry.event_id == thread.id
    rejection = Rejection.objects.get(ledger_entry=entry)
    assert rejection.reason == "banned" and "No charge" in rejection.message
    intent = InvoiceIntent.objects.get(payment_hash=body["payment_hash"])
    assert intent.state == InvoiceIntent.State.CANCELLED and intent.reason == "banned"
    status = client.get(f"/api/status/{body['payment_hash']}").json()
    assert status["state"] == "rejected" and status["charged"] is False
    assert not Event.objects.filter(event_id=thread.id, state="published").exists()


def test_an_invoice_issued_under_another_secret_key_fails_back_at_once(
    listening, board, alice_key, client, settings
):
    """Its preimage cannot be derived any more: the payer gets the sats back now, not when the
    HTLC's CLTV runs out hours later; the attempt stays on record as not charged."""
    thread = nostr.thread_event(alice_key, board="general", title="Rotated", content="x")
    body = ask_invoice(client, thread).json()
    settings.SECRET_KEY = "rotated " + settings.SECRET_KEY
    before = listening.balances_msat("bob")
    payment = pay_invoice(listening, body["payment_request"], sender="bob").result(timeout=20)
    assert payment.status == "FAILED"
    assert listening.balances_msat("bob") == before
    entry = wait_for(
        lambda: LedgerEntry.objects.filter(payment_hash=body["payment_hash"]).first(),
        what="the attempt on record",
    )
    assert entry.status == LedgerEntry.Status.CANCELLED
    assert Rejection.objects.get(ledger_entry=entry).reason == "hold_expired"
