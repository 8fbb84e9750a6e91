"""The status of an event paid again after hold mode refused an earlier payment of it: the new
payment's news, not the old refusal (a composer polling by event id would otherwise show the
refusal again and stop watching)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from forum.ingest.rejections import rejection_build
from forum.models import LedgerEntry
from forum.selectors.status import message_status

pytestmark = pytest.mark.django_db

EVENT = "ab" * 32
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _payment(hash_byte: str, **fields) -> LedgerEntry:
    return LedgerEntry.objects.create(
        payment_hash=hash_byte * 32,
        node_pubkey="02" + "11" * 32,
        purpose=LedgerEntry.Purpose.MESSAGE,
        amount_msat=5_000,
        settled_at=AT,
        event_id=EVENT,
        **fields,
    )


def test_a_new_payment_of_a_refused_event_reads_as_paid_until_judged() -> None:
    refused = _payment(
        "01",
        status=LedgerEntry.Status.CANCELLED,
        reconcile_state=LedgerEntry.ReconcileState.DONE,
    )
    rejection_build(
        reason="underpaid", entry=refused, amount_msat=5_000, event_ref=EVENT, charged=False,
        price_msat=10_000, paid_msat=5_000,
    ).save()  # fmt: skip
    assert message_status(key=EVENT)["state"] == "rejected"

    _payment("02", settle_index=7)  # paid again at the new price, not reconciled yet
    assert message_status(key=EVENT)["state"] == "paid"
