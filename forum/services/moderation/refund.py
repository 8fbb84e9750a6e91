"""Refund a rejected payment by keysend to the node the author named in the event.

The author names a node with an `["ln", <node pubkey>]` tag (see `docs/protocol.md`); the core
stores it as `Event.ln_node`. Without it, or without a decodable event, there is nowhere to send
the sats and the refund is impossible (`RefundImpossible`).

A refund that succeeds becomes an outgoing `LedgerEntry` (direction `out`, purpose `refund`,
the payment's hash, amount and routing fee), linked from `Rejection.refund_entry`, so revenue
stays right and the same rejection is never refunded twice. The forum pays the routing fee.

Locking contract: the rejection row is locked with `select_for_update` for the whole keysend
(on SQLite every transaction takes the write lock up front, which serializes the same way), and
`refund_entry` is checked under the lock. A second moderator pressing "refund" at the same time
waits and then sees it refunded. Holding a row lock across a network call is acceptable here:
refunds are rare, manual, and the keysend has a timeout.

Refunding an underpaid event that still waits for a top-up also ends that wait (see
`_close_underpaid_event`), so a later top-up cannot publish it with money already sent back.

A keysend that fails records no ledger row, only an audit entry with lnd's failure reason, and
raises `RefundFailed` after that entry is committed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from forum.models import Event, LedgerEntry, Rejection
from forum.services import payout
from forum.services.moderation.audit import audit_record

log = logging.getLogger(__name__)

NODE_PUBKEY_RE = re.compile(r"^(02|03)[0-9a-f]{64}$")


class RefundError(Exception):
    """Base class: the refund did not happen; `str()` is a sentence for the moderator."""


class RefundImpossible(RefundError):
    """Nothing to refund, or nowhere to send it."""


class RefundFailed(RefundError):
    """The keysend was tried and failed (audited with the failure reason)."""


def refund_destination(rejection: Rejection) -> str:
    """The node pubkey to refund to, or "" if the author named none."""
    event = rejection.event
    ln_node = (event.ln_node if event is not None else "").strip().lower()
    return ln_node if NODE_PUBKEY_RE.match(ln_node) else ""


def refund_blocker(rejection: Rejection) -> str:
    """Why this rejection cannot be refunded, or "" if it can."""
    if rejection.refund_entry_id is not None:
        return "Already refunded."
    if rejection.resolved_at is not None:
        # A top-up or late parts completed the message: the payment now pays for a post.
        return f"No longer standing ({rejection.resolution or 'resolved'}): the post went through."
    if rejection.amount_msat <= 0:
        return "Nothing was paid."
    entry = rejection.ledger_entry
    if entry is not None and entry.status == entry.Status.CANCELLED:
        return "Nothing was charged: hold mode cancelled the payment and the sats went back."
    if rejection.event is None:
        return "The payment carried no decodable event, so it names no node to refund to."
    if not refund_destination(rejection):
        return 'The event names no Lightning node (no "ln" tag), so there is nowhere to refund to.'
    return ""


def _close_underpaid_event(event: Event, *, amount_msat: int) -> bool:
    """An underpaid event waits for a top-up that would count the money just sent back.

    Refunding it takes that money off the event and stops the wait (state `rejected`): a later
    top-up is then refused as `unknown_target`, and paying the whole event again gets a fresh
    hearing, as for any rejected event. Other underpaid payments for it stay refundable.
    """
    if event.state != Event.State.PENDING or event.waiting_for != "underpaid":
        return False
    event.paid_msat = max(event.paid_msat - amount_msat, 0)
    event.state, event.waiting_for = Event.State.REJECTED, ""
    event.save(update_fields=["paid_msat", "state", "waiting_for"])
    return True


def rejection_refund(
    *, actor: AbstractBaseUser | None, rejection: Rejection, reason: str = ""
) -> bool:
    """Send the rejected amount back. Returns False if it was already refunded.

    Raises `RefundImpossible` when there is nothing to send or nowhere to send it, and
    `RefundFailed` when the keysend failed (after auditing the failure).
    """
    with transaction.atomic():
        locked = (
            Rejection.objects.select_for_update(of=("self",))
            .select_related("event", "ledger_entry")
            .get(pk=rejection.pk)
        )
        if locked.refund_entry_id is not None:
            return False
        blocker = refund_blocker(locked)
        if blocker:
            raise RefundImpossible(blocker)
        destination = refund_destination(locked)
        # Lock the event too: a top-up being reconciled right now must see the refund's outcome.
        event = Event.objects.select_for_update().get(pk=locked.event_id)
        details = {
            "amount_msat": locked.amount_msat,
            "destination": destination,
            "rejection_reason": locked.reason,
            "event_id": locked.event_ref or locked.event.event_id,
            "pubkey": locked.pubkey,
        }
        # Our own preimage, so the payment hash is known even if the call breaks mid-way.
        preimage = secrets.token_bytes(32)
        details["payment_hash"] = hashlib.sha256(preimage).hexdigest()
        payment, failure = payout.keysend_send(
            destination=destination, amount_msat=locked.amount_msat, preimage=preimage
        )
        if failure:
            audit_record(
                actor=actor,
                action="rejection.refund_failed",
                target_type="rejection",
                target_id=locked.pk,
                reason=reason,
                details={**details, "failure": failure},
            )
        else:
            assert payment is not None
            forum_node = locked.ledger_entry.node_pubkey if locked.ledger_entry is not None else ""
            entry = payout.payout_record(
                payment=payment,
                purpose=LedgerEntry.Purpose.REFUND,
                amount_msat=locked.amount_msat,
                destination=destination,
                forum_node=forum_node,
                pubkey=locked.pubkey,
                event_id=details["event_id"],
            )
            locked.refund_entry = entry
            locked.save(update_fields=["refund_entry"])
            details["event_closed"] = _close_underpaid_event(event, amount_msat=entry.amount_msat)
            audit_record(
                actor=actor,
                action="rejection.refund",
                target_type="rejection",
                target_id=locked.pk,
                reason=reason,
                details={
                    **details,
                    "payment_hash": entry.payment_hash,
                    "fee_msat": entry.fee_msat,
                },
            )
            rejection.refund_entry = entry
    if failure:
        log.warning("refund of rejection %s failed: %s", rejection.pk, failure)
        raise RefundFailed(f"The keysend failed: {failure}")
    return True
