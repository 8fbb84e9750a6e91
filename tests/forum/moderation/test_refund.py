"""Refunds that must not reach the node at all: nothing paid, nowhere to send, already resolved.

Refunds that do reach it run over simnet: `test_refund_simnet.py` (sats back to the author's
node, once; an unknown node fails and is audited) and `test_refund_races.py` (the forum's node
down, two moderators at once)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from forum.models import LedgerEntry, ModerationAction, Rejection
from forum.services import moderation
from tests.forum.moderation.conftest import make_board, make_rejection, node_pubkey

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"ln_node": ""}, "names no Lightning node"),
        ({"ln_node": "not-a-node"}, "names no Lightning node"),
        ({"with_event": False}, "no decodable event"),
        ({"amount_msat": 0, "ln_node": "02" + "cd" * 32}, "Nothing was paid"),
    ],
)
def test_refund_impossible(moderator, kwargs, why):
    rejection = make_rejection(board=make_board(), pubkey="ab" * 32, **kwargs)
    with pytest.raises(moderation.RefundImpossible, match=why):
        moderation.rejection_refund(actor=moderator, rejection=rejection)
    assert not ModerationAction.objects.exists()  # a keysend tried would be audited
    assert not LedgerEntry.objects.filter(direction="out").exists()


def test_resolved_rejection_is_not_refundable(moderator):
    rejection = make_rejection(board=make_board(), pubkey="ab" * 32, ln_node=node_pubkey())
    Rejection.objects.filter(pk=rejection.pk).update(
        resolved_at=timezone.now(), resolution="topped_up"
    )
    rejection.refresh_from_db()
    with pytest.raises(moderation.RefundImpossible, match="topped_up"):
        moderation.rejection_refund(actor=moderator, rejection=rejection)
    assert not ModerationAction.objects.exists()
