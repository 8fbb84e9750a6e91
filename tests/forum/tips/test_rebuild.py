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
