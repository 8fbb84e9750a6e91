"""Refunds with a stand-in node client: once only, recorded as an outgoing ledger row, and a
failed keysend leaves only an audit entry. (`test_refund_simnet.py` moves real sats.)"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from forum.models import LedgerEntry, ModerationAction, Rejection
from forum.services import moderation, node
from lightning.types import LightningUnavailable, Payment
from tests.forum.moderation.conftest import make_board, make_rejection, node_pubkey

pytestmark = pytest.mark.django_db


@dataclass
class FakeClient:
    status: str = "SUCCEEDED"
    failure_reason: str = "FAILURE_REASON_NONE"
    raises: Exception | None = None
    sent: list[tuple[str, int]] = field(default_factory=list)

    def keysend(self, dest, amt_msat, records, *, preimage=None, **kw) -> Payment:
        self.sent.append((dest, amt_msat))
        if self.raises:
            raise self.raises
        return Payment(
            payment_hash=hashlib.sha256(preimage).hexdigest(),
            preimage=preimage.hex() if self.status == "SUCCEEDED" else "",
            value_msat=amt_msat,
            fee_msat=7 if self.status == "SUCCEEDED" else 0,
            status=self.status,
            failure_reason=self.failure_reason,
            route_length=1,
        )

    def track_payment(self, payment_hash, *, wait=False) -> Payment:
        return Payment(
            payment_hash=payment_hash,
            preimage="",
            value_msat=0,
            fee_msat=0,
            status="FAILED",
            failure_reason="FAILURE_REASON_ERROR",
            route_length=0,
        )


@pytest.fixture
def fake(monkeypatch) -> FakeClient:
    client = FakeClient()
    monkeypatch.setattr(node, "client", lambda name=None: client)
    return client


def test_refund_once_as_outgoing_ledger_row(moderator, fake):
    dest = node_pubkey()
    rejection = make_rejection(board=make_board(), pubkey="ab" * 32, ln_node=dest)
    assert moderation.rejection_refund(actor=moderator, rejection=rejection, reason="our bug")
    assert moderation.rejection_refund(actor=moderator, rejection=rejection) is False
    assert fake.sent == [(dest, 5_000)]

    rejection = Rejection.objects.get(pk=rejection.pk)
    entry = rejection.refund_entry
    assert (entry.direction, entry.purpose, entry.amount_msat, entry.fee_msat) == (
        "out",
        "refund",
        5_000,
        7,
    )
    assert entry.counterparty == dest and entry.event_id == rejection.event_ref
    assert entry.reconcile_state == LedgerEntry.ReconcileState.DONE
    action = ModerationAction.objects.get()
    assert action.action == "rejection.refund" and action.reason == "our bug"
    assert action.details["payment_hash"] == entry.payment_hash


def test_failed_keysend_records_only_an_audit_entry(moderator, fake):
    fake.status, fake.failure_reason = "FAILED", "FAILURE_REASON_NO_ROUTE"
    rejection = make_rejection(board=make_board(), pubkey="ab" * 32, ln_node=node_pubkey())
    outgoing_before = LedgerEntry.objects.filter(direction="out").count()
    with pytest.raises(moderation.RefundFailed, match="NO_ROUTE"):
        moderation.rejection_refund(actor=moderator, rejection=rejection)
    assert LedgerEntry.objects.filter(direction="out").count() == outgoing_before
    assert Rejection.objects.get(pk=rejection.pk).refund_entry is None
    action = ModerationAction.objects.get()
    assert action.action == "rejection.refund_failed"
    assert action.details["failure"] == "FAILURE_REASON_NO_ROUTE"

    # It can be tried again once the route is back.
    fake.status, fake.failure_reason = "SUCCEEDED", "FAILURE_REASON_NONE"
    assert moderation.rejection_refund(actor=moderator, rejection=rejection)


def test_unreachable_node_is_a_failure_not_a_crash(moderator, fake):
    fake.raises = LightningUnavailable("connection refused")
    rejection = make_rejection(board=make_board(), pubkey="ab" * 32, ln_node=node_pubkey())
    with pytest.raises(moderation.RefundFailed):
        moderation.rejection_refund(actor=moderator, rejection=rejection)
    assert ModerationAction.objects.get().action == "rejection.refund_failed"


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"ln_node": ""}, "names no Lightning node"),
        ({"ln_node": "not-a-node"}, "names no Lightning node"),
        ({"with_event": False}, "no decodable event"),
        ({"amount_msat": 0, "ln_node": "02" + "cd" * 32}, "Nothing was paid"),
    ],
)
def test_refund_impossible(moderator, fake, kwargs, why):
    rejection = make_rejection(board=make_board(), pubkey="ab" * 32, **kwargs)
    with pytest.raises(moderation.RefundImpossible, match=why):
        moderation.rejection_refund(actor=moderator, rejection=rejection)
    assert fake.sent == [] and not ModerationAction.objects.exists()


def test_resolved_rejection_is_not_refundable(moderator, fake):
    rejection = make_rejection(board=make_board(), pubkey="ab" * 32, ln_node=node_pubkey())
    Rejection.objects.filter(pk=rejection.pk).update(
        resolved_at=timezone.now(), resolution="topped_up"
    )
    rejection.refresh_from_db()
    with pytest.raises(moderation.RefundImpossible, match="topped_up"):
        moderation.rejection_refund(actor=moderator, rejection=rejection)
