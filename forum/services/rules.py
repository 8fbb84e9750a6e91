"""The posting rules as side-effect-free checks: one implementation for two callers.

`reconcile` applies them to a payment that already settled (a finding becomes a rejection and
the sats stay with the forum); `hold` applies them to a payment the node still holds (a finding
cancels it and the sats go back). Each check reads the database, writes nothing, and answers
with a `Finding` (a `Rejection.Reason` code plus the words its sentence needs) or None.

Signature, id and record format are checked earlier, by `protocol.decode_records` and
`protocol.join_parts`; duplicates and price depend on what the caller is doing and stay there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from forum import nostr
from forum.models import Ban, Board, Rejection, Thread
from forum.services import rooms

Reason = Rejection.Reason
MAX_TITLE_LENGTH = 300  # Thread.title
# lnd reports settle times in whole seconds: a ban made within that second counts as before
# the payment (a moderator who just banned someone expects the next post blocked).
SETTLE_RESOLUTION = timedelta(seconds=1) - timedelta(microseconds=1)


@dataclass(frozen=True)
class Finding:
    """Why a message may not be published: a reason code and its sentence's context."""

    reason: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContentCheck:
    """The board the event names (None if there is none) and what is wrong, if anything."""

    board: Board | None
    finding: Finding | None


def event_content_check(parsed: nostr.Event) -> ContentCheck:
    """Kind, board, title, sizes and reply shape: everything the event decides by itself."""
    if parsed.kind == rooms.KIND_ROOM_CREATE:  # renting a private room (no board yet)
        return rooms.room_content_check(parsed)
    if parsed.kind not in (nostr.KIND_THREAD, nostr.KIND_REPLY):
        return ContentCheck(None, Finding(Reason.UNSUPPORTED_KIND, {"kind": parsed.kind}))
    slug = parsed.tag_value("h") or ""
    board = Board.objects.filter(slug=slug, destroyed_at__isnull=True).first() if slug else None
    if board is None:
        return ContentCheck(None, Finding(Reason.UNKNOWN_BOARD, {"slug": slug}))
    title = parsed.tag_value("title") or ""
    if parsed.kind == nostr.KIND_THREAD and not title.strip():
        return ContentCheck(
            board, Finding(Reason.MALFORMED, {"detail": "a thread needs a title tag"})
        )
    if len(parsed.content) > board.max_content_length:
        context = {
            "what": "the content",
            "length": len(parsed.content),
            "limit": board.max_content_length,
        }
        return ContentCheck(board, Finding(Reason.TOO_LARGE, context))
    if len(title) > MAX_TITLE_LENGTH:
        context = {"what": "the title", "length": len(title), "limit": MAX_TITLE_LENGTH}
        return ContentCheck(board, Finding(Reason.TOO_LARGE, context))
    if parsed.kind == nostr.KIND_REPLY:
        try:
            nostr.reply_target(parsed)
        except nostr.EventError as exc:
            return ContentCheck(board, Finding(Reason.MALFORMED, {"detail": exc.message}))
    return ContentCheck(board, None)


def gate_check(
    *, pubkey: str, kind: int, root_ref: str, board_id: int | None, at: datetime
) -> Finding | None:
    """Ban and thread-lock checks for a message settled (or about to settle) at `at`."""
    judged_at = at + SETTLE_RESOLUTION
    ban = Ban.objects.active(at=judged_at).filter(pubkey=pubkey).order_by("-created_at").first()
    if ban is not None:
        until = f" until {ban.expires_at:%Y-%m-%d %H:%M} UTC" if ban.expires_at else ""
        return Finding(Reason.BANNED, {"until": until})
    if kind == nostr.KIND_REPLY and root_ref:
        thread = Thread.objects.filter(event__event_id=root_ref).first()
        if thread is not None and thread.is_locked:
            return Finding(Reason.THREAD_LOCKED)
        if thread is not None and board_id and thread.board_id != board_id:
            detail = "the reply's board tag differs from its thread's board"
            return Finding(Reason.MALFORMED, {"detail": detail})
    return None
