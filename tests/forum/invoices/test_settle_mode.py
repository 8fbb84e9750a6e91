"""Posts by invoice with hold mode off: a plain invoice with the derived preimage settles at
once and reconciliation judges it afterwards, as it judges a keysend in that mode. And
rebuild_from_node brings invoice posts back from the node's invoices plus the stored events."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from forum import nostr
from forum.models import Event, InvoiceIntent, LedgerEntry, Thread
from tests.conftest import record_invoice
from tests.forum.core.conftest import alice_key, board, fresh_forum_node  # noqa: F401
from tests.forum.invoices.conftest import ask_invoice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _settle_mode(settings):
    settings.HOLD_MODE = False


def _pay(forum_node, payment_request: str, *, sender: str = "bob"):
    """Pay from `sender`'s node and record the settled invoice as the listener does."""
    payment = forum_node.sender(sender).pay_invoice(payment_request)
    assert payment.succeeded, payment.failure_reason
    invoice = forum_node.client.lookup_invoice(payment.payment_hash)
    return record_invoice(invoice, forum_node.pubkey)[0]


def test_plain_invoice_settles_and_publishes_underpaid_one_is_topped_up(
    fresh_forum_node,  # noqa: F811
    board,  # noqa: F811
    alice_key,  # noqa: F811
    client,
):
    node = fresh_forum_node
    first = nostr.thread_event(alice_key, board="general", title="One", content="a")
    second = nostr.thread_event(alice_key, board="general", title="Two", content="b")
    invoice_1 = ask_invoice(client, first).json()
    invoice_2 = ask_invoice(client, second).json()  # quoted 10 sats too: nothing counted yet
    assert invoice_1["hold"] is False and invoice_2["amount_msat"] == 10_000

    entry = _pay(node, invoice_1["payment_request"])
    assert entry.purpose == LedgerEntry.Purpose.MESSAGE and entry.event_id == first.id
    assert Event.objects.get(event_id=first.id).state == Event.State.PUBLISHED
    # The second one now costs 20 sats: settled (hold mode off), kept waiting for a top-up.
    _pay(node, invoice_2["payment_request"])
    status = client.get(f"/api/status/{invoice_2['payment_hash']}").json()
    assert status["state"] == "waiting" and status["waiting_for"] == "underpaid"
    assert InvoiceIntent.objects.get(payment_hash=invoice_2["payment_hash"]).state == "settled"
    # Asking again for the same event: an invoice for the missing sats, its top-up.
    top_up = ask_invoice(client, second).json()
    assert top_up["amount_msat"] == 10_000 and top_up["payment_hash"] != invoice_2["payment_hash"]
    _pay(node, top_up["payment_request"])
    assert Event.objects.get(event_id=second.id).state == Event.State.PUBLISHED
    assert Event.objects.get(event_id=second.id).paid_msat == 20_000


def test_rebuild_brings_invoice_posts_back_from_the_node_and_the_stored_events(
    fresh_forum_node,  # noqa: F811
    board,  # noqa: F811
    alice_key,  # noqa: F811
    client,
):
    from forum import protocol

    node = fresh_forum_node
    by_invoice = nostr.thread_event(alice_key, board="general", title="Invoice", content="i")
    _pay(node, ask_invoice(client, by_invoice).json()["payment_request"])
    by_keysend = nostr.reply_event(alice_key, board="general", root=by_invoice, content="k")
    record_invoice(node.keysend(protocol.encode_event(by_keysend), 4_000), node.pubkey)
    before = {e.event_id: (e.state, e.paid_msat, e.settle_index) for e in Event.objects.all()}
    assert len(before) == 2 and all(s == "published" for s, _, _ in before.values())

    call_command("rebuild_from_node", "--yes", stdout=open("/dev/null", "w"))  # noqa: SIM115

    after = {e.event_id: (e.state, e.paid_msat, e.settle_index) for e in Event.objects.all()}
    assert after == before
    assert Thread.objects.get(event__event_id=by_invoice.id).reply_count == 1
    # Without the stored event the invoice is only a payment: the node alone cannot say what.
    InvoiceIntent.objects.all().delete()
    call_command("rebuild_from_node", "--yes", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not Event.objects.filter(event_id=by_invoice.id).exists()
    assert LedgerEntry.objects.filter(purpose="other", is_keysend=False).count() >= 1
