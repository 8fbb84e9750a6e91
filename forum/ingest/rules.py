"""The posting rules as side-effect-free checks over `Lookups`: one implementation, every path.

Each check writes nothing and answers with a `Finding` (a `Rejection.Reason` code plus the words
its sentence needs) or None. `verdict.decide` is their only caller; signature, id and record
format are checked earlier, by `protocol.decode_records` and `protocol.join_parts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from forum import nostr
from forum.ingest.lookups import Lookups
from forum.models import Board, Rejection
from forum.room_events import KIND_ROOM_CREATE

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


def _malformed(detail: str) -> Finding:
    return Finding(Reason.MALFORMED, {"detail": detail})


def room_content_check(parsed: nostr.Event, *, lookups: Lookups) -> ContentCheck:
    """A room-create event: its shape, and a slug that is free (or already this room's)."""
    from forum.services.rooms import room_slug_taken, room_spec

    try:
        spec = room_spec(parsed)
    except ValueError as exc:
        return ContentCheck(None, _malformed(str(exc)))
    if room_slug_taken(lookups.board(spec.slug), spec):
        return ContentCheck(
            None, _malformed(f"the room slug {spec.slug!r} is taken; choose another d tag")
        )
    return ContentCheck(None, None)


def event_content_check(parsed: nostr.Event, *, at: datetime, lookups: Lookups) -> ContentCheck:
    """Kind, board, title, sizes and reply shape: everything the event decides by itself."""
    if parsed.kind == KIND_ROOM_CREATE:  # renting a private room (no board yet)
        return room_content_check(parsed, lookups=lookups)
    if parsed.kind not in (nostr.KIND_THREAD, nostr.KIND_REPLY):
        return ContentCheck(None, Finding(Reason.UNSUPPORTED_KIND, {"kind": parsed.kind}))
    slug = parsed.tag_value("h") or ""
    board = lookups.board(slug) if slug else None
    if board is None or board.destroyed_at is not None:
        return ContentCheck(None, Finding(Reason.UNKNOWN_BOARD, {"slug": slug}))
    title = parsed.tag_value("title") or ""
    if parsed.kind == nostr.KIND_THREAD and not title.strip():
        return ContentCheck(board, _malformed("a thread needs a title tag"))
    limit = lookups.board_as_of(board, at).max_content_length
    if len(parsed.content) > limit:
        context = {"what": "the content", "length": len(parsed.content), "limit": limit}
        return ContentCheck(board, Finding(Reason.TOO_LARGE, context))
    if len(title) > MAX_TITLE_LENGTH:
        context = {"what": "the title", "length": len(title), "limit": MAX_TITLE_LENGTH}
        return ContentCheck(board, Finding(Reason.TOO_LARGE, context))
    if parsed.kind == nostr.KIND_REPLY:
        try:
            nostr.reply_target(parsed)
        except nostr.EventError as exc:
            return ContentCheck(board, _malformed(exc.message))
    return ContentCheck(board, None)


def gate_check(
    *,
    pubkey: str,
    kind: int,
    root_ref: str,
    board_id: int | None,
    at: datetime,
    lookups: Lookups,
) -> Finding | None:
    """Ban and thread checks for a message settled (or about to settle) at `at`."""
    ban = lookups.active_ban(pubkey, at + SETTLE_RESOLUTION)
    if ban is not None:
        until = f" until {ban.expires_at:%Y-%m-%d %H:%M} UTC" if ban.expires_at else ""
        return Finding(Reason.BANNED, {"until": until})
    if kind == nostr.KIND_REPLY and root_ref:
        thread = lookups.thread(root_ref)
        if thread is not None and thread.is_locked:
            return Finding(Reason.THREAD_LOCKED)
        if thread is not None and board_id and thread.board_id != board_id:
            return _malformed("the reply's board tag differs from its thread's board")
    return None
