"""Where a paid message stands, by event id or payment hash: for the composer and its socket.

One shape for both the `GET /api/status/<key>` answer and the `message.status` broadcast:
every key is always present (None when it does not apply), `state` is one of
`paid` (recorded, not yet reconciled), `waiting` (`waiting_for`: parts, parent, underpaid, or
payment: an invoice issued and not paid yet),
`published` and `rejected` (with `reason` and a NIP-01 style `message`; `charged` is False when
hold mode cancelled the payment, so nothing was charged).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from forum.models import Event, InvoiceIntent, LedgerEntry, MessagePart, Rejection

IN = LedgerEntry.Direction.IN


def status_unknown(key: str) -> dict[str, Any]:
    """The shape for a key nobody has paid (yet): state `unknown`."""
    return {
        "key": key,
        "state": "unknown",
        "event_id": None,
        "payment_hash": None,
        "reason": None,
        "message": None,
        "waiting_for": None,
        "board": None,
        "thread_event_id": None,
        "number": None,
        "price_msat": None,
        "paid_msat": None,
        "parts_received": None,
        "parts_total": None,
        # False when hold mode cancelled the payment (nothing charged); None otherwise.
        "charged": None,
    }


def rejection_status(
    key: str,
    rejection: Rejection,
    *,
    paid_msat: int,
    payment_hash: str | None,
    charged: bool | None = None,
) -> dict[str, Any]:
    """The status of a payment refused with `rejection`, from facts the caller holds (no
    query): the pipeline's batches and the hold reviewer send it as it happens.
    `charged=False`: hold mode cancelled the payment, the sats went back."""
    return {
        **status_unknown(key),
        "state": "rejected",
        "reason": rejection.reason,
        "message": rejection.message,
        "event_id": rejection.event_ref or None,
        "payment_hash": payment_hash,
        "board": rejection.board.slug if rejection.board_id else None,
        "paid_msat": paid_msat,
        "charged": charged,
    }


def _from_rejection(status: dict[str, Any], rejection: Rejection) -> dict[str, Any]:
    status.update(state="rejected", reason=rejection.reason, message=rejection.message)
    entry = rejection.ledger_entry if rejection.ledger_entry_id is not None else None
    if entry is not None and entry.status == LedgerEntry.Status.CANCELLED:
        status["charged"] = False
    if rejection.event_ref and not status["event_id"]:
        status["event_id"] = rejection.event_ref
    return status


def _from_event(status: dict[str, Any], event: Event) -> dict[str, Any]:
    """`status` completed from `event` as stored (its thread or post, its latest standing
    rejection: read here)."""
    if event.state == Event.State.PUBLISHED:
        thread_event_id, number = None, None
        if getattr(event, "thread", None) is not None:
            thread_event_id, number = event.event_id, 0
        else:
            post = getattr(event, "post", None)  # None for a room-create event: no page of its own
            if post is not None:
                thread_event_id, number = post.thread.event.event_id, post.number
        return _event_fields(
            status, event, rejection=None, thread_event_id=thread_event_id, number=number
        )
    latest = event.rejections.filter(resolved_at__isnull=True).order_by("-id").first()
    _event_fields(status, event, rejection=latest, thread_event_id=None, number=None)
    if event.state == Event.State.REJECTED and latest is not None:
        return _from_rejection(status, latest)  # and whether hold mode charged it
    return status


def event_status(
    event: Event,
    *,
    rejection: Rejection | None,
    thread_event_id: str | None,
    number: int | None,
) -> dict[str, Any]:
    """The status of `event` from facts the caller already holds (no queries).

    `rejection` is its latest standing rejection, if any; `thread_event_id`/`number` where it
    was published, if it was.
    """
    return _event_fields(
        status_unknown(event.event_id),
        event,
        rejection=rejection,
        thread_event_id=thread_event_id,
        number=number,
    )


def _event_fields(
    status: dict[str, Any],
    event: Event,
    *,
    rejection: Rejection | None,
    thread_event_id: str | None,
    number: int | None,
) -> dict[str, Any]:
    """The one place an event's state becomes a status (read back or built by a batch)."""
    status.update(
        event_id=event.event_id,
        board=event.board.slug if event.board_id else None,
        price_msat=event.price_msat,
        paid_msat=event.paid_msat,
    )
    if event.state == Event.State.PUBLISHED:
        status.update(state="published", thread_event_id=thread_event_id, number=number)
    elif event.state == Event.State.REJECTED:
        status["state"] = "rejected"
        if rejection is not None:
            status.update(reason=rejection.reason, message=rejection.message)
    else:
        status.update(state="waiting", waiting_for=event.waiting_for)
        if rejection is not None and rejection.reason == Rejection.Reason.UNDERPAID:
            status.update(reason=rejection.reason, message=rejection.message)
    return status


def _parts(status: dict[str, Any], event_id: str) -> dict[str, Any]:
    parts = list(MessagePart.objects.filter(event_id=event_id).values_list("index", "count"))
    status.update(state="waiting", waiting_for="parts", event_id=event_id)
    status["parts_received"] = len({index for index, _ in parts})
    status["parts_total"] = parts[0][1] if parts else None
    return status


def message_status(*, key: str) -> dict[str, Any] | None:
    """The status of the message paid by payment hash `key`, or of the event with id `key`."""
    key = key.strip().lower()
    status = status_unknown(key)
    entry = LedgerEntry.objects.filter(payment_hash=key, direction=IN).first()
    event_id = entry.event_id if entry is not None else key
    if entry is not None:
        status.update(payment_hash=entry.payment_hash, event_id=entry.event_id or None)
        own = entry.rejections.filter(resolved_at__isnull=True).order_by("-id").first()
        # An underpaid payment waits for a top-up, unless hold mode cancelled it (final).
        cancelled = entry.status == LedgerEntry.Status.CANCELLED
        if own is not None and (own.reason != Rejection.Reason.UNDERPAID or cancelled):
            return _from_rejection(status, own)
    event = (
        Event.objects.select_related("board", "post__thread__event", "thread")
        .filter(event_id=event_id)
        .first()
        if event_id
        else None
    )
    if event is not None:
        return _from_event(status, event)
    if entry is not None:
        if entry.reconcile_state != LedgerEntry.ReconcileState.DONE:
            status["state"] = "paid"
            return status
        if entry.purpose == LedgerEntry.Purpose.PART and entry.event_id:
            return _parts(status, entry.event_id)
        status["state"] = "paid"
        return status
    # A payment of this event the ledger holds and has not judged yet is newer news than a
    # refusal of an earlier attempt (hold mode cancels a refused one, and the same signed
    # event may be paid again).
    if (
        LedgerEntry.objects.filter(event_id=key, direction=IN, status=LedgerEntry.Status.SETTLED)
        .exclude(reconcile_state=LedgerEntry.ReconcileState.DONE)
        .exists()
    ):
        status.update(state="paid", event_id=key)
        return status
    rejection = Rejection.objects.filter(event_ref=key, resolved_at__isnull=True).first()
    if rejection is not None:
        return _from_rejection(status, rejection)
    if LedgerEntry.objects.filter(event_id=key, purpose=LedgerEntry.Purpose.PART).exists():
        return _parts(status, key)
    intent = (
        InvoiceIntent.objects.filter(Q(payment_hash=key) | Q(event_id=key))
        .order_by("-created_at", "-id")
        .first()
    )
    return None if intent is None else _from_intent(status, intent)


INVOICE_EXPIRED = "invoice_expired"
INVOICE_EXPIRED_MESSAGE = (
    "invalid: the invoice expired before it was paid. Nothing was charged; ask for a new "
    "invoice and pay it before it expires."
)


def _from_intent(status: dict[str, Any], intent: InvoiceIntent) -> dict[str, Any]:
    """An invoice the forum issued and nobody has paid: waiting for payment, or expired."""
    status.update(
        event_id=intent.event_id or None,
        payment_hash=intent.payment_hash,
        price_msat=intent.amount_msat,
        paid_msat=0,
    )
    expired = intent.state == InvoiceIntent.State.EXPIRED or (
        intent.state == InvoiceIntent.State.OPEN and intent.expires_at <= timezone.now()
    )
    if expired:
        status.update(
            state="rejected", reason=INVOICE_EXPIRED, message=INVOICE_EXPIRED_MESSAGE, charged=False
        )
    else:
        status.update(state="waiting", waiting_for="payment")
    return status
