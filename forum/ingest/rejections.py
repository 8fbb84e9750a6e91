"""Rejections: a paid message that was not published keeps a row with a reason and a sentence.

Each reason maps to a NIP-01 style prefix (what a Nostr client already understands) and a
human sentence that says what to do next. Rows are never deleted; `rejection_resolve` marks
the ones that stopped standing (an underpaid event completed by a top-up, late parts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from forum.models import Board, Event, LedgerEntry, Rejection

Reason = Rejection.Reason

PREFIXES: dict[str, str] = {
    Reason.MALFORMED: "invalid",
    Reason.BAD_ID: "invalid",
    Reason.BAD_SIGNATURE: "invalid",
    Reason.UNSUPPORTED_KIND: "invalid",
    Reason.UNKNOWN_BOARD: "invalid",
    Reason.TOO_LARGE: "invalid",
    Reason.UNDERPAID: "rate-limited",
    Reason.DUPLICATE: "duplicate",
    Reason.ORPHAN_TIMEOUT: "invalid",
    Reason.INCOMPLETE_PARTS: "invalid",
    Reason.BANNED: "blocked",
    Reason.THREAD_LOCKED: "blocked",
    Reason.UNKNOWN_TARGET: "invalid",
    Reason.HOLD_EXPIRED: "error",
    Reason.UNSUPPORTED_VERSION: "invalid",
    Reason.BAD_CREATED_AT: "invalid",
    Reason.TARGET_HIDDEN: "blocked",
    Reason.NOT_AUTHOR: "blocked",
    Reason.DELETIONS_OFF: "blocked",
    Reason.INSUFFICIENT_BALANCE: "blocked",
}

_SENTENCES: dict[str, str] = {
    Reason.MALFORMED: "the message could not be read ({detail}). Sign it again with an up-to-date "
    "client and resend.",
    Reason.BAD_ID: "the parts do not reassemble into the announced event ({detail}). Send the "
    "event again.",
    Reason.BAD_SIGNATURE: "the signature does not verify for this event and key. Sign it again "
    "and resend.",
    Reason.UNSUPPORTED_KIND: "kind {kind} is not accepted here. Send a kind 11 thread, a kind "
    "1111 reply, a kind 0 profile, a kind 5 deletion or a kind 1010 edit.",
    Reason.UNKNOWN_BOARD: "there is no board {slug!r}. Choose one of the forum's boards and "
    "resend.",
    Reason.TOO_LARGE: "{what} is {length} characters, over the limit of {limit}. Shorten it and "
    "resend.",
    Reason.UNDERPAID: "this post costs {price_sats} now and {paid_sats} arrived. Top up "
    "{short_sats} naming event {event_id} to publish it.",
    Reason.DUPLICATE: "{what} was already received and is shown only once; this payment is kept "
    "on record.",
    Reason.ORPHAN_TIMEOUT: "the post this replies to did not arrive within {minutes} minutes. "
    "Send the thread or parent first, then the reply again.",
    Reason.INCOMPLETE_PARTS: "only {received} of {count} parts arrived within {minutes} minutes. "
    "Send the whole event again.",
    Reason.BANNED: "this key may not post here{until}.",
    Reason.THREAD_LOCKED: "the thread is locked: it takes no new replies.",
    Reason.UNKNOWN_TARGET: "event {event_id} is {why}. Check the event id.",
    Reason.HOLD_EXPIRED: "the payment was held past the node's hold time before the forum could "
    "check it. Send it again.",
    Reason.UNSUPPORTED_VERSION: "{detail}. Update your client and resend.",
    Reason.BAD_CREATED_AT: "the event is dated {offset} the payment; the forum takes events dated "
    "at most {max_ahead} ahead of it and {max_behind} behind. Check your clock, sign it again "
    "and resend.",
    Reason.TARGET_HIDDEN: "{what} is hidden by a moderator: it takes no new replies or tips.",
    Reason.NOT_AUTHOR: "event {target}… is signed by another key: only its author may {what} it. "
    "Nothing was changed.",
    Reason.DELETIONS_OFF: "board {slug!r} does not let authors delete their posts. Ask a "
    "moderator to hide it instead.",
    # An EVENT sent to the relay, paid from the author's balance (docs/relay.md); nothing taken.
    Reason.INSUFFICIENT_BALANCE: "not enough balance: balance {balance_msat} msat, this costs "
    "{price_msat} msat; top up by {fund}. Nothing was charged.",
}

# Hold mode cancels instead of keeping the sats: no top-up can complete a cancelled payment.
_UNCHARGED_SENTENCES: dict[str, str] = {
    Reason.UNDERPAID: "this post costs {price_sats} now and {paid_sats} were offered. "
    "Send it again with at least {price_sats}.",
    # Hold mode does not settle a reply whose parent is unknown; it waits while the node holds
    # the payment, then gives up (docs/hold-mode.md).
    Reason.ORPHAN_TIMEOUT: "the post this replies to did not arrive while the payment was held. "
    "Send the thread or parent first, then the reply again.",
}
NO_CHARGE = "No charge: the payment was cancelled and the sats went back."


def rejection_message(reason: str, *, charged: bool = True, **context: Any) -> str:
    """`prefix: sentence` for a reason; missing context words degrade, never raise.

    `charged=False` (hold mode cancelled the payment) says that nothing was charged.
    """
    template = (None if charged else _UNCHARGED_SENTENCES.get(reason)) or _SENTENCES.get(
        reason, "{detail}"
    )
    # Amounts in sats read as words: "1 sat", "20 sats" (the context keeps the numbers).
    words = {
        name: f"{value} sat{'' if value == 1 else 's'}"
        for name, value in context.items()
        if name.endswith("_sats") and isinstance(value, int)
    }
    try:
        sentence = template.format(**{**context, **words})
    except (KeyError, IndexError, ValueError):
        sentence = context.get("detail") or str(Reason(reason).label)
    if not charged:
        sentence = f"{sentence.rstrip()} {NO_CHARGE}"
    return f"{PREFIXES.get(reason, 'error')}: {sentence}"[:500]


def reason_for_code(code: str) -> str:
    """A protocol/nostr error code as a rejection reason (unknown codes are `malformed`)."""
    return code if code in Reason.values else Reason.MALFORMED


def rejection_record(**kw: Any) -> Rejection:
    """Write one rejection row (the caller decides what happens to the event's state)."""
    rejection = rejection_build(**kw)
    rejection.save()
    return rejection


def rejection_build(
    *,
    reason: str,
    entry: LedgerEntry | None,
    amount_msat: int,
    event: Event | None = None,
    event_ref: str = "",
    pubkey: str = "",
    board: Board | None = None,
    at: datetime | None = None,
    charged: bool = True,
    **context: Any,
) -> Rejection:
    """One rejection row, not saved yet (the batch reconciler inserts them together).

    `charged=False`: hold mode cancelled the payment; the message says nothing was charged.
    """
    ref = event_ref or (event.event_id if event is not None else "")
    fields: dict[str, Any] = {
        "reason": reason,
        "message": rejection_message(reason, charged=charged, event_id=ref, **context),
        "amount_msat": amount_msat,
        "ledger_entry": entry,
        "event": event,
        "event_ref": ref,
        "pubkey": pubkey or (event.pubkey if event is not None else ""),
        "board": board or (event.board if event is not None and event.board_id else None),
    }
    if at is not None:
        fields["created_at"] = at
    return Rejection(**fields)


def rejection_resolve(
    *, reasons: list[str], at: datetime, resolution: str, event: Event | None = None, ref: str = ""
) -> int:
    """Mark the standing rejections of an event (by row or by id) as resolved."""
    rows = Rejection.objects.filter(reason__in=reasons, resolved_at__isnull=True)
    rows = rows.filter(event=event) if event is not None else rows.filter(event_ref=ref)
    return rows.update(resolved_at=at, resolution=resolution)
