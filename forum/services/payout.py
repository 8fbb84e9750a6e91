"""Paying out by keysend: send sats from the forum's node and record the outgoing ledger row.

Both money-out paths use it: refunds of rejected payments (`moderation.refund`) and tip forwards
(`tips`). Each caller chooses its own preimage so the payment hash is known before anything is
sent: a call that breaks mid-way can then ask the node how that payment ended instead of
guessing, and a deterministic preimage (tips) makes a second send of the same payout impossible
(lnd refuses a payment hash that already succeeded or is in flight).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.utils import timezone

from forum.models import LedgerEntry
from forum.services import identity, node
from lightning.types import LightningError, LightningUnavailable, Payment, PaymentAlreadyExists

if TYPE_CHECKING:
    from lightning.client import LightningClient


def keysend_send(
    *,
    destination: str,
    amount_msat: int,
    preimage: bytes,
    fee_limit_msat: int | None = None,
) -> tuple[Payment | None, str]:
    """Keysend and return (payment, failure text); failure is "" only if it succeeded.

    A payment hash the node already knows (paid before, or still in flight) is not an error:
    the node's record of that payment is the answer, so retrying a payout is always safe.
    """
    return _send_or_track(
        hashlib.sha256(preimage).hexdigest(),
        lambda client: client.keysend(
            destination, amount_msat, {}, preimage=preimage, fee_limit_msat=fee_limit_msat
        ),
    )


def invoice_send(
    *, payment_request: str, payment_hash: str, fee_limit_msat: int | None = None
) -> tuple[Payment | None, str]:
    """Pay a BOLT 11 invoice (a Lightning Address's) and return (payment, failure text), as
    `keysend_send` does: an invoice the node already paid, or is paying, is answered from the
    node's record of that payment, so a retry never pays twice."""
    return _send_or_track(
        payment_hash,
        lambda client: client.pay_invoice(payment_request, fee_limit_msat=fee_limit_msat),
    )


def _send_or_track(
    payment_hash: str, send: Callable[[LightningClient], Payment]
) -> tuple[Payment | None, str]:
    """Run ``send`` on the node's client; when the node cannot say, or already knows this
    payment hash, ask it how that payment ended. Returns (payment, failure text)."""
    try:
        client = node.client()
    except node.NodeNotConfigured as exc:
        return None, str(exc)
    try:
        payment = send(client)
    except (LightningUnavailable, PaymentAlreadyExists) as exc:
        # The HTLC may be out (or long settled): ask the node how the payment ended.
        try:
            payment = client.track_payment(payment_hash)
        except LightningError:
            return None, f"node unreachable ({exc}); check payment {payment_hash} on the node"
    except LightningError as exc:
        return None, str(exc) or exc.__class__.__name__
    if payment.succeeded:
        return payment, ""
    if payment.status in ("IN_FLIGHT", "INITIATED"):
        return None, f"still in flight; check payment {payment_hash} on the node"
    return None, payment.failure_reason or payment.status


def payout_record(
    *,
    payment: Payment,
    purpose: str,
    amount_msat: int,
    destination: str,
    forum_node: str = "",
    pubkey: str = "",
    event_id: str = "",
) -> LedgerEntry:
    """The outgoing ledger row for a payout that succeeded (the caller holds its own locks)."""
    now = timezone.now()
    return LedgerEntry.objects.create(
        payment_hash=payment.payment_hash,
        node_pubkey=forum_node or identity.forum_node_pubkey(),
        direction=LedgerEntry.Direction.OUT,
        purpose=purpose,
        amount_msat=payment.value_msat or amount_msat,
        fee_msat=payment.fee_msat,
        settled_at=now,
        is_keysend=True,
        pubkey=pubkey,
        event_id=event_id,
        counterparty=destination,
        # Outgoing rows are not messages: nothing for the reconcile sweep to pick up.
        reconcile_state=LedgerEntry.ReconcileState.DONE,
        reconciled_at=now,
        created_at=now,
    )
