"""rebuild_from_node replays tips: the sats come back, the forwards are neither lost nor repeated."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from forum import nostr
from forum.models import LedgerEntry, Thread, TipForward
from forum.services import node
from tests.forum.core.conftest import fresh_forum_node  # noqa: F401 (fixture)
from tests.forum.tips.conftest import Tipper, local_balance_msat

pytestmark = pytest.mark.django_db(transaction=True)


def test_rebuild_keeps_tip_forwards_and_pays_nothing_again(
    fresh_forum_node,  # noqa: F811
    board,
    author_key,
):
    tipper = Tipper(fresh_forum_node)
    payee = fresh_forum_node.net.nodes["alice"].pubkey
    thread = nostr.thread_event(author_key, board="tips", title="t", content="c", ln_node=payee)
    tipper.post(thread, 10_000, sender="bob")
    tip = tipper.tip(thread.id, 20_000, sender="bob")
    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert forward.state == "sent"
    alice = node.client("alice")
    balance = local_balance_msat(alice)
    out_rows = list(LedgerEntry.objects.filter(direction="out").values_list("pk", "payment_hash"))

    call_command("rebuild_from_node", "--yes", stdout=open("/dev/null", "w"))  # noqa: SIM115

    relinked = TipForward.objects.get(pk=forward.pk)
    assert relinked.state == "sent" and relinked.forward_entry_id == forward.forward_entry_id
    assert relinked.tip_entry == LedgerEntry.objects.get(payment_hash=tip.payment_hash)
    assert TipForward.objects.count() == 1
    assert list(LedgerEntry.objects.filter(direction="out").values_list("pk", "payment_hash")) == (
        out_rows
    )
    assert local_balance_msat(alice) == balance
    assert Thread.objects.get(event__event_id=thread.id).sats_msat == 30_000


def test_rebuild_replays_zapped_tips_paid_by_invoice_and_keeps_one_receipt(
    fresh_forum_node,  # noqa: F811
    board,
    author_key,
    client,
):
    import json
    from urllib.parse import quote

    import nostr_sdk as ns

    from forum.models import ZapReceipt

    tipper = Tipper(fresh_forum_node)
    thread = nostr.thread_event(author_key, board="tips", title="t", content="c")
    tipper.post(thread, 10_000, sender="bob")
    tags = [["p", thread.pubkey], ["e", thread.id], ["relays", "wss://r.example"]]
    zap = ns.EventBuilder(ns.Kind(9734), "").tags([ns.Tag.parse(t) for t in tags])
    text = zap.finalize(ns.Keys.generate()).as_json()
    answer = client.get(f"/lnurlp/e/{thread.id}/callback?amount=7000&nostr={quote(text)}").json()
    payment = fresh_forum_node.sender("bob").pay_invoice(answer["pr"])
    assert payment.succeeded
    tipper.record(fresh_forum_node.client.lookup_invoice(payment.payment_hash))
    receipt = ZapReceipt.objects.get()
    assert Thread.objects.get(event__event_id=thread.id).sats_msat == 17_000

    call_command("rebuild_from_node", "--yes", stdout=open("/dev/null", "w"))  # noqa: SIM115

    # The invoice's row is rebuilt from the node plus its stored intent: the tip is back, once.
    entry = LedgerEntry.objects.get(payment_hash=payment.payment_hash)
    assert (entry.purpose, entry.event_id) == ("tip", thread.id)
    assert Thread.objects.get(event__event_id=thread.id).sats_msat == 17_000
    assert list(ZapReceipt.objects.values_list("receipt_id", flat=True)) == [receipt.receipt_id]
    assert json.loads(receipt.raw_json)["kind"] == 9735
