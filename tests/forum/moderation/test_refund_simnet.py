"""A refund over simnet's real gRPC: the sats go back to the node the author named."""

from __future__ import annotations

import pytest

from forum import nostr
from forum.models import Event, LedgerEntry, ModerationAction, Rejection
from forum.services import moderation, node
from tests.forum.moderation.conftest import backdate_bans, deliver, local_balance_sat, make_board

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("sender", ["alice", "bob"])  # a direct channel, and two hops away
def test_refund_moves_sats_back_to_the_authors_node(forum_node, simnet, moderator, sender):
    make_board("refunds", thread_price_msat=10_000)
    author_key = nostr.generate_secret_key()
    author_node = simnet.nodes[sender].pubkey
    moderation.author_ban(actor=moderator, pubkey=nostr.public_key(author_key), reason="test")
    backdate_bans()
    event = nostr.thread_event(
        author_key, board="refunds", title="hi", content="hello", ln_node=author_node
    )
    entry = deliver(forum_node, event, 21_000, sender=sender)
    rejection = Rejection.objects.get(ledger_entry=entry)
    assert rejection.reason == Rejection.Reason.BANNED
    assert rejection.event.ln_node == author_node and rejection.amount_msat == 21_000

    payer, forum = node.client(sender), forum_node.client
    payer_before, forum_before = local_balance_sat(payer), local_balance_sat(forum)
    assert moderation.rejection_refund(actor=moderator, rejection=rejection, reason="sorry")
    assert local_balance_sat(payer) - payer_before == 21
    refund = Rejection.objects.get(pk=rejection.pk).refund_entry
    assert refund.direction == "out" and refund.purpose == "refund"
    assert refund.counterparty == author_node and refund.amount_msat == 21_000
    # The forum pays the routing fee (zero on the direct channel).
    assert (refund.fee_msat == 0) is (sender == "alice")
    spent_msat = forum_before * 1000 - local_balance_sat(forum) * 1000
    assert abs(spent_msat - (21_000 + refund.fee_msat)) < 1000  # sat-rounded view
    assert forum.track_payment(refund.payment_hash).succeeded

    # Once only: a second press neither pays nor records anything.
    assert moderation.rejection_refund(actor=moderator, rejection=rejection) is False
    assert local_balance_sat(payer) - payer_before == 21
    assert LedgerEntry.objects.filter(direction="out").count() == 1
    assert ModerationAction.objects.filter(action="rejection.refund").count() == 1


def test_refund_to_an_unknown_node_fails_and_is_audited(forum_node, moderator):
    make_board("refunds2")
    key = nostr.generate_secret_key()
    moderation.author_ban(actor=moderator, pubkey=nostr.public_key(key))
    backdate_bans()
    nowhere = "02" + "77" * 32
    entry = deliver(
        forum_node,
        nostr.thread_event(key, board="refunds2", title="x", content="y", ln_node=nowhere),
        10_000,
    )
    rejection = Rejection.objects.get(ledger_entry=entry)
    assert Event.objects.get(pk=rejection.event_id).ln_node == nowhere
    with pytest.raises(moderation.RefundFailed):
        moderation.rejection_refund(actor=moderator, rejection=rejection)
    assert Rejection.objects.get(pk=rejection.pk).refund_entry is None
    assert not LedgerEntry.objects.filter(direction="out").exists()
    failed = ModerationAction.objects.get(action="rejection.refund_failed")
    assert failed.details["failure"]
