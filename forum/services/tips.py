"""Tips: sats sent to a post by keysend, and the forwarding of their share to its author.

A tip is a keysend whose records name a published event (`protocol.encode_tip`). Reconciliation
(`forum.ingest.reconcile`) adds its amount to that post's and thread's sats and, in the same
transaction, calls `tip_forward_prepare`: if the author named a node with an
`["ln", <node pubkey>]` tag, the forward is planned: one `TipForward` row per tip, for the tip
minus the forum's share (`TIP_FORUM_SHARE_PERCENT`). The keysend itself happens after commit
(the batch's outcome lists it; `forum.tip_forward` task),
and again from the periodic `tips_forward_due` while it keeps failing, with a growing delay, up
to `TIP_FORWARD_MAX_ATTEMPTS`; then the row is `failed` and waits for a moderator (`/mod/tips/`).

Never twice: the forward's preimage is an HMAC of the tip's payment hash under a server secret,
so every attempt for one tip is the same payment hash. The node refuses to pay a hash twice
(`payout.keysend_send` then reads how the earlier attempt ended), and the row is locked with
`select_for_update` and checked for `sent` during the attempt. The outgoing ledger row
(`purpose=tip_forward`) is written only for a payment the node reports as succeeded.

The forum pays the routing fee, at most its own share (a fee limit of 0 when the share is 0:
only fee-free routes, so forwarding never costs the forum more than it kept).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from forum.ingest.tips import (  # noqa: F401 (re-exported: the tips API in one place)
    forward_amount_msat,
    forward_preimage,
    share_percent,
    tip_forward_prepare,
)
from forum.models import Event, LedgerEntry, TipForward
from forum.services import lnaddress, node, payout
from forum.services.moderation.audit import audit_record
from lightning.types import LightningError

log = logging.getLogger(__name__)

State = TipForward.State


def max_attempts() -> int:
    return int(getattr(settings, "TIP_FORWARD_MAX_ATTEMPTS", 8))


def retry_delay(*, attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failure: base x 2^(attempts-1), capped."""
    base = float(getattr(settings, "TIP_FORWARD_RETRY_SECONDS", 60))
    cap = float(getattr(settings, "TIP_FORWARD_RETRY_MAX_SECONDS", 3600))
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


@dataclass(frozen=True)
class ForwardOutcome:
    """What one attempt did: `state` is the row's state after it (or "missing"/"not_due")."""

    state: str
    retry_in: float = 0.0
    error: str = ""


def tip_forward_attempt(
    *, tip_payment_hash: str, now: datetime | None = None, force: bool = False
) -> ForwardOutcome:
    """Try to send one tip's forward, unless it is sent, given up, or not due (`force` skips
    the last two checks: a moderator's retry).

    Locking contract: the row stays locked for the keysend (as refunds do), so two workers
    (the task and the sweep) cannot both pay it; the fixed payment hash covers a crash between
    the node paying and this transaction committing. A Lightning Address forward first gets
    its invoice in a transaction of its own (`_address_invoice_prepare`), so the invoice it
    pays is on the row before it is paid.
    """
    prepared = ""
    if TipForward.objects.filter(tip_payment_hash=tip_payment_hash).exclude(address="").exists():
        prepared = _address_invoice_prepare(
            tip_payment_hash=tip_payment_hash, now=now or timezone.now(), force=force
        )
    with transaction.atomic():
        forward = (
            TipForward.objects.select_for_update(of=("self",))
            .filter(tip_payment_hash=tip_payment_hash)
            .first()
        )
        if forward is None:
            return ForwardOutcome("missing")
        if forward.state == State.SENT or (forward.state == State.FAILED and not force):
            return ForwardOutcome(forward.state)
        now = now or timezone.now()
        if not force and forward.next_attempt_at > now:
            return ForwardOutcome(
                "not_due", retry_in=(forward.next_attempt_at - now).total_seconds()
            )
        # The tip's row is for the outgoing row's references only; None while a
        # rebuild_from_node replay has not re-created it yet.
        tip = LedgerEntry.objects.filter(pk=forward.tip_entry_id).first()
        share_msat = forward.tip_amount_msat - forward.amount_msat
        if forward.address and (prepared or not forward.payment_request):
            payment, failure = None, prepared or "no invoice from the Lightning Address yet"
        elif forward.address:
            payment, failure = payout.invoice_send(
                payment_request=forward.payment_request,
                payment_hash=forward.payment_hash,
                fee_limit_msat=max(share_msat, 0),
            )
        else:
            payment, failure = payout.keysend_send(
                destination=forward.destination,
                amount_msat=forward.amount_msat,
                preimage=forward_preimage(tip_payment_hash=tip_payment_hash),
                fee_limit_msat=max(share_msat, 0),
            )
        forward.attempts += 1
        if failure:
            forward.last_error = failure[:500]
            delay = retry_delay(attempts=forward.attempts)
            if forward.attempts >= max_attempts() and not force:
                forward.state = State.FAILED
            else:
                forward.state = State.PENDING
                forward.next_attempt_at = now + delay
            forward.save(update_fields=["attempts", "last_error", "state", "next_attempt_at"])
            log.warning(
                "tip forward %s attempt %d failed: %s", tip_payment_hash, forward.attempts, failure
            )
            return ForwardOutcome(forward.state, retry_in=delay.total_seconds(), error=failure)
        assert payment is not None
        event_id = tip.event_id if tip is not None else ""
        author = Event.objects.filter(event_id=event_id).values_list("pubkey", flat=True)
        forward.forward_entry = payout.payout_record(
            payment=payment,
            purpose=LedgerEntry.Purpose.TIP_FORWARD,
            amount_msat=forward.amount_msat,
            destination=forward.destination,
            forum_node=tip.node_pubkey if tip is not None else "",
            pubkey=(author.first() or "") if event_id else "",
            event_id=event_id,
        )
        forward.state, forward.last_error = State.SENT, ""
        forward.save(update_fields=["attempts", "last_error", "state", "forward_entry"])
    log.info("tip forward %s sent %d msat", tip_payment_hash, forward.amount_msat)
    return ForwardOutcome(State.SENT)


def _address_invoice_prepare(*, tip_payment_hash: str, now: datetime, force: bool) -> str:
    """A Lightning Address forward's invoice, fetched and checked, saved on the row before
    anything is paid; returns why not ("" when the row has an invoice to pay, or when the
    attempt has nothing to do).

    An invoice fetched earlier is kept while the node says its payment succeeded or is in
    flight (the payment step then reads that outcome); after a failed or never-made payment a
    new invoice is asked for (each attempt's invoice has its own hash, and the old one was
    not paid, so nothing is paid twice).
    """
    with transaction.atomic():
        forward = (
            TipForward.objects.select_for_update(of=("self",))
            .filter(tip_payment_hash=tip_payment_hash)
            .first()
        )
        if forward is None or forward.state == State.SENT:
            return ""
        if not force and (forward.state == State.FAILED or forward.next_attempt_at > now):
            return ""
        try:
            client = node.client()
        except node.NodeNotConfigured as exc:
            return str(exc)
        if forward.payment_request:
            try:
                prior = client.track_payment(forward.payment_hash)
            except LightningError:
                prior = None  # never sent: this invoice can be replaced
            if prior is not None and (prior.succeeded or not prior.final):
                return ""
        try:
            payment_request, metadata = lnaddress.address_invoice(
                forward.address, amount_msat=forward.amount_msat
            )
            decoded = client.decode_pay_req(payment_request)
        except lnaddress.AddressError as exc:
            return f"{forward.address}: {exc}"
        except LightningError as exc:
            return f"{forward.address}: its invoice does not decode ({exc})"
        if decoded.amount_msat != forward.amount_msat:
            return (
                f"{forward.address}: its invoice asks {decoded.amount_msat} msat,"
                f" not {forward.amount_msat} msat"
            )
        if decoded.description_hash != hashlib.sha256(metadata.encode("utf-8")).hexdigest():
            return f"{forward.address}: its invoice does not commit to its metadata (LUD-06)"
        forward.payment_request = payment_request
        forward.payment_hash = decoded.payment_hash
        forward.destination = decoded.destination[:66]
        forward.save(update_fields=["payment_request", "payment_hash", "destination"])
    return ""


def tips_forward_due(*, now: datetime | None = None, limit: int = 200) -> list[str]:
    """The pending forwards whose next attempt is due (the caller queues them; each re-checks)."""
    now = now or timezone.now()
    return list(
        TipForward.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("tip_payment_hash", flat=True)[:limit]
    )


def tip_forward_retry(
    *, actor: AbstractBaseUser | None, forward: TipForward, reason: str = ""
) -> ForwardOutcome:
    """A moderator's "retry now" for a failed or waiting forward (audited)."""
    outcome = tip_forward_attempt(tip_payment_hash=forward.tip_payment_hash, force=True)
    audit_record(
        actor=actor,
        action="tip.forward_retry",
        target_type="tip_forward",
        target_id=forward.pk,
        reason=reason,
        details={"state": outcome.state, "error": outcome.error},
    )
    return outcome
