"""Posts paid by BOLT11 invoice: check a submitted event now, then issue an invoice for it.

`invoice_for_post` is what `POST /api/invoice`, the composer and `forum.client post
--invoice` call. It checks what can be checked before anyone pays, with the pipeline's one
verdict (`verdict.decide` over `LiveLookups`: structure, id, signature, board, size, gate,
price), and answers an `InvoiceError` with the rejection's own sentence, or an invoice:

- in hold mode a **hold invoice** (AddHoldInvoice) whose payment hash is sha256 of
  HMAC(SECRET_KEY, "post:<event id>:<attempt>"): the forum can settle it without keeping a
  preimage, and asking again for the same event while its invoice is open gives the same
  invoice. When it is paid, the hold reviewer judges the event again (in settle order) and
  settles or cancels: an invalid or underpaid post is never charged;
- with hold mode off a plain invoice with that preimage (settled at once, judged after, as a
  keysend is in that mode).

Either way the event is stored as an `InvoiceIntent` with its payment hash and its forum
records; the ledger links the settled invoice to it (`forum.ingest.invoices`), and the post is
published by the same pipeline as a keysend. Creating invoices costs the node a record each,
so it is rate-limited per client address and per pubkey (`InvoiceThrottled`).
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from forum import nostr, protocol
from forum.ingest import hold, rules
from forum.ingest import verdict as one_verdict
from forum.ingest.invoices import intent_payment_hash, intent_preimage
from forum.ingest.lookups import LiveLookups
from forum.ingest.rejections import rejection_message
from forum.models import InvoiceIntent
from forum.services import identity
from forum.services.moderation import throttle

log = logging.getLogger(__name__)

State = InvoiceIntent.State
# Anything larger than any price: the verdict then answers the price instead of "underpaid".
_ANY_AMOUNT = 21_000_000 * 100_000_000 * 1000
MAX_MEMO_CHARS = 200


def expiry_seconds() -> int:
    return int(getattr(settings, "INVOICE_EXPIRY_SECONDS", 600))


def _limits() -> tuple[int, int, int]:
    return (
        int(getattr(settings, "INVOICE_MAX_PER_CLIENT", 30)),
        int(getattr(settings, "INVOICE_MAX_PER_PUBKEY", 10)),
        int(getattr(settings, "INVOICE_RATE_WINDOW_SECONDS", 600)),
    )


class InvoiceError(ValueError):
    """No invoice: `message` says why (a rejection's sentence where there is one)."""

    def __init__(
        self, message: str, *, status: int = 400, reason: str = "", retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class PostInvoice:
    intent: InvoiceIntent
    reused: bool  # the open invoice issued earlier for this very event

    def as_dict(self) -> dict[str, Any]:
        return intent_dict(self.intent)


def intent_dict(intent: InvoiceIntent) -> dict[str, Any]:
    return {
        "payment_request": intent.payment_request,
        "lightning_uri": f"lightning:{intent.payment_request}",
        "payment_hash": intent.payment_hash,
        "event_id": intent.event_id,
        "amount_msat": intent.amount_msat,
        "amount_sats": intent.amount_msat // 1000,
        "memo": intent.memo,
        "expires_at": int(intent.expires_at.timestamp()),
        "hold": intent.is_hold,
        "state": intent.state,
    }


def _parse(body: Any) -> nostr.Event:
    try:
        return nostr.parse_event(body, verify=True)
    except nostr.EventError as exc:
        reason = exc.code if exc.code in ("bad_id", "bad_signature") else "malformed"
        raise InvoiceError(rejection_message(reason, detail=exc.message), reason=reason) from None


def _memo(parsed: nostr.Event, board_slug: str) -> str:
    title = (parsed.tag_value("title") or "").strip()
    if parsed.kind == nostr.KIND_THREAD and title:
        what = f'thread "{title[:80]}"'
    elif parsed.kind == nostr.KIND_REPLY:
        what = "reply"
    else:
        what = f"kind {parsed.kind} event"
    memo = f"Forum post: {what} on {board_slug or 'the forum'} (event {parsed.id[:12]})"
    return memo[:MAX_MEMO_CHARS]


def post_price(parsed: nostr.Event, *, at: datetime | None = None) -> tuple[int, str]:
    """(msat to pay, board slug) for `parsed` now, or `InvoiceError` with the verdict's reason.

    The one verdict, with the invoice's life as settle slack (the event must still be dated
    within range when it is paid).
    """
    at = at or timezone.now()
    lookups = LiveLookups()
    decided = one_verdict.decide(
        parsed,
        paid_msat=_ANY_AMOUNT,
        at=at,
        settle_slack=timedelta(seconds=expiry_seconds() + hold.hold_seconds()),
        settle_index=None,
        lookups=lookups,
    )
    if decided.finding is not None:
        context = {"event_id": parsed.id, **decided.finding.context}
        message = rejection_message(decided.finding.reason, **context)
        status = 409 if decided.finding.reason == "duplicate" else 400
        raise InvoiceError(message, status=status, reason=decided.finding.reason)
    board = decided.board.slug if decided.board is not None else ""
    if decided.action == one_verdict.Action.TOPUP and decided.existing is not None:
        # Kept underpaid (hold mode off): this payment of it again is its top-up.
        existing = decided.existing
        return max(existing.price_msat - existing.paid_msat, 1000), board
    root_ref, parent_ref = one_verdict.reply_refs(parsed)
    if root_ref and rules.reply_parent_missing(
        root_ref=root_ref, parent_ref=parent_ref, lookups=lookups
    ):
        # Paid now it could only wait for its parent (hold: until the hold time runs out).
        raise InvoiceError(
            "invalid: the post this replies to is not published yet. Wait until it is, then "
            "ask for the reply's invoice.",
            status=409,
            reason="orphan",
        )
    return decided.price_msat, board


def _throttle(*, client: str, pubkey: str) -> None:
    per_client, per_pubkey, window = _limits()
    counter = throttle.attempt_counter()
    budgets = (
        (throttle.counter_key("invoice-client", client), per_client, "from your address"),
        (throttle.counter_key("invoice-pubkey", pubkey), per_pubkey, "for this key"),
    )
    taken: list[str] = []
    for key, limit, whom in budgets:
        count = counter.add(key, 1, window_seconds=window)
        if count.total > limit:
            for other in taken:  # the budgets before keep nothing for a refused request
                counter.add(other, -1, window_seconds=window)
            counter.add(key, -1, window_seconds=window)
            raise InvoiceError(
                f"rate-limited: too many invoices requested {whom} ({limit} in "
                f"{window // 60} minutes). Pay one of them, or try again in "
                f"{count.retry_after} seconds.",
                status=429,
                reason="rate_limited",
                retry_after=count.retry_after,
            )
        taken.append(key)


def _open_for(event_id: str) -> InvoiceIntent | None:
    """The open invoice for this post that still has a minute to go, if any."""
    soon = timezone.now() + timedelta(seconds=60)
    return (
        InvoiceIntent.objects.filter(
            purpose=InvoiceIntent.Purpose.POST,
            event_id=event_id,
            state=State.OPEN,
            expires_at__gt=soon,
        )
        .exclude(payment_request="")
        .order_by("-created_at")
        .first()
    )


def _wait_for_request(payment_hash: str) -> InvoiceIntent | None:
    """A concurrent request is issuing this very invoice: wait for its payment request."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        intent = InvoiceIntent.objects.filter(payment_hash=payment_hash).first()
        if intent is None or intent.payment_request:
            return intent
        time.sleep(0.05)
    return None


def invoice_for_post(*, event: Any, client_ip: str) -> PostInvoice:
    """Check `event` (a signed event as JSON text or object) and issue its invoice."""
    parsed = _parse(event)
    existing = _open_for(parsed.id)
    if existing is not None:
        return PostInvoice(existing, reused=True)
    amount_msat, board_slug = post_price(parsed)
    amount_msat = -(-amount_msat // 1000) * 1000  # whole sats: every wallet can pay them
    client = throttle.address_bucket(client_ip)[:64]
    _throttle(client=client, pubkey=parsed.pubkey)
    attempt = InvoiceIntent.objects.filter(event_id=parsed.id).count()
    key = f"post:{parsed.id}:{attempt}"
    try:
        intent = intent_issue(
            purpose=InvoiceIntent.Purpose.POST,
            preimage_key=key,
            hold_invoice=hold.hold_mode_enabled(),
            event_id=parsed.id,
            pubkey=parsed.pubkey,
            event_json=parsed.to_json(),
            records=protocol.encode_event(parsed),
            amount_msat=amount_msat,
            memo=_memo(parsed, board_slug),
            client=client,
        )
    except IntegrityError:
        # The same event asked for twice at once: both get the one invoice.
        same = _wait_for_request(intent_payment_hash(key))
        if same is None or not same.payment_request:
            raise InvoiceError("the invoice is being issued; ask again", status=503) from None
        return PostInvoice(same, reused=True)
    return PostInvoice(intent, reused=False)


def intent_issue(
    *,
    purpose: str,
    preimage_key: str,
    hold_invoice: bool,
    event_id: str,
    records: dict[int, bytes],
    amount_msat: int,
    memo: str = "",
    pubkey: str = "",
    event_json: str = "",
    payload: dict[str, Any] | None = None,
    client: str = "",
    expiry: int | None = None,
    description_hash: bytes | None = None,
) -> InvoiceIntent:
    """Store an intent and issue its invoice on the forum's node; the one way to do both.

    The payment hash is sha256(HMAC(SECRET_KEY, `preimage_key`)), so `preimage_key` must be
    unique per invoice (IntegrityError when it is not: the row is the unique payment hash).
    `records`: the forum records the payment stands for (`protocol.encode_event`,
    `encode_tip`...): the settled invoice's ledger row carries them. `hold_invoice`: the hold
    reviewer settles or cancels it once paid; otherwise it settles at once and reconciliation
    judges it. Raises `InvoiceError` (503) when the node cannot issue it.
    """
    payment_hash = intent_payment_hash(preimage_key)
    expiry = expiry or expiry_seconds()
    with transaction.atomic():
        intent = InvoiceIntent.objects.create(
            payment_hash=payment_hash,
            purpose=purpose,
            is_hold=hold_invoice,
            preimage_key=preimage_key,
            event_id=event_id,
            pubkey=pubkey,
            event_json=event_json,
            payload=payload or {},
            custom_records=protocol.records_to_json(records),
            amount_msat=amount_msat,
            payment_request="",
            memo=memo,
            expires_at=timezone.now() + timedelta(seconds=expiry),
            client=client,
        )
    extra: dict[str, Any] = {}
    if description_hash is not None:
        extra["description_hash"] = description_hash
    try:
        node = identity.forum_client()
        if hold_invoice:
            invoice = node.add_hold_invoice(
                payment_hash=payment_hash,
                value_msat=amount_msat,
                memo=memo,
                expiry=expiry,
                private=True,  # route hints for the node's private channels (lnd)
                **extra,
            )
        else:
            invoice = node.add_invoice(
                value_msat=amount_msat,
                memo=memo,
                expiry=expiry,
                preimage=intent_preimage(preimage_key),
                **extra,
            )
    except Exception as exc:
        intent.delete()
        log.warning("invoice for %s %s failed: %s", purpose, event_id, exc)
        raise InvoiceError(
            f"error: the forum's Lightning node cannot issue an invoice now ({exc}). "
            "Try again in a moment.",
            status=503,
        ) from None
    intent.payment_request = invoice.payment_request
    intent.save(update_fields=["payment_request"])
    log.info("invoice.issued %s %s event=%s msat=%d", payment_hash, purpose, event_id, amount_msat)
    return intent


def invoice_qr_svg(payment_hash: str) -> str | None:
    """The invoice as an SVG QR code (upper case: the smaller alphanumeric QR mode)."""
    import segno

    intent = (
        InvoiceIntent.objects.filter(payment_hash=payment_hash.lower())
        .exclude(payment_request="")
        .first()
    )
    if intent is None:
        return None
    uri = f"lightning:{intent.payment_request}".upper()
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=2, dark="#111", light="#fff")
    return out.getvalue().decode()
