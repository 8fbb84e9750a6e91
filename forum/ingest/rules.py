"""The posting rules as side-effect-free checks over `Lookups`: one implementation, every path.

Each check writes nothing and answers with a `Finding` (a `Rejection.Reason` code plus the words
its sentence needs) or None. `verdict` is their only caller; signature, id and record format
are checked earlier, by `protocol.decode_records` and `protocol.join_parts`.

Every check is judged at the payment's settle time (`at`), never at "now", so reconciling the
same ledger row later (a retry, `rebuild_from_node`) gives the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from forum import nostr
from forum.ingest import kinds
from forum.ingest.lookups import Lookups
from forum.models import Board, Event, Rejection
from forum.room_events import KIND_ROOM_CREATE

Reason = Rejection.Reason
MAX_TITLE_LENGTH = 300  # Thread.title
# lnd reports settle times in whole seconds: a ban made within that second counts as before
# the payment (a moderator who just banned someone expects the next post blocked).
SETTLE_RESOLUTION = timedelta(seconds=1) - timedelta(microseconds=1)

# The window an event's `created_at` must fall in, around its payment's settle time (see
# docs/protocol.md). Ahead: strfry's default (900 s), room for a fast clock; an event dated
# further ahead would sort above everything on the relay until that date. Behind: a day, room
# for a slow clock, signing before paying and paying again after a cancellation; an older date
# would file a new post among old ones and past every relay client that syncs with `since`.
# Constants, not settings: a rebuild from the node must judge every payment as it was judged.
CREATED_AT_MAX_AHEAD = timedelta(minutes=15)
CREATED_AT_MAX_BEHIND = timedelta(hours=24)
_UNITS = (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


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


def _span(seconds: float) -> str:
    """A length of time in its two largest units: "15 minutes 59 seconds", "79 years 20 days"
    (hours up to two days: "36 hours" reads better than "1 day 12 hours")."""
    rest = max(0, int(seconds))
    units = [(u, size) for u, size in _UNITS if u != "day" or rest >= 2 * 86400]
    for i, (unit, size) in enumerate(units):
        if rest < size and size > 1:
            continue
        count, rest = divmod(rest, size)
        words = [f"{count} {unit}{'s' if count != 1 else ''}"]
        if i + 1 < len(units) and rest >= units[i + 1][1]:
            nunit, nsize = units[i + 1]
            ncount = rest // nsize
            words.append(f"{ncount} {nunit}{'s' if ncount != 1 else ''}")
        return " ".join(words)
    return "0 seconds"


def created_at_check(
    created_at: int, *, at: datetime, settle_slack: timedelta = timedelta(0)
) -> Finding | None:
    """Is `created_at` inside the window around a settle time between `at` and `at` + slack?

    Reconciliation passes the settle time itself. Hold mode checks before the settle, which
    happens within the node's hold time: it passes that as the slack, so an event it lets
    settle cannot fall out of the window by the time reconciliation looks at it.
    """
    limits = {
        "max_ahead": _span(CREATED_AT_MAX_AHEAD.total_seconds()),
        "max_behind": _span(CREATED_AT_MAX_BEHIND.total_seconds()),
    }
    ahead = created_at - at.timestamp()
    if ahead > CREATED_AT_MAX_AHEAD.total_seconds():
        return Finding(Reason.BAD_CREATED_AT, {"offset": f"{_span(ahead)} ahead of", **limits})
    behind = (at + settle_slack).timestamp() - created_at
    if behind > CREATED_AT_MAX_BEHIND.total_seconds():
        return Finding(Reason.BAD_CREATED_AT, {"offset": f"{_span(behind)} behind", **limits})
    return None


def room_content_check(parsed: nostr.Event, *, lookups: Lookups) -> ContentCheck:
    """A room-create event: its shape, and a slug that is free (or already this room's)."""
    from forum.ingest.rooms import room_slug_taken, room_spec

    try:
        spec = room_spec(parsed)
    except ValueError as exc:
        return ContentCheck(None, _malformed(str(exc)))
    if room_slug_taken(lookups.board(spec.slug), spec):
        return ContentCheck(
            None, _malformed(f"the room slug {spec.slug!r} is taken; choose another d tag")
        )
    return ContentCheck(None, None)


def event_content_check(
    parsed: nostr.Event,
    *,
    at: datetime,
    lookups: Lookups,
    settle_slack: timedelta = timedelta(0),
) -> ContentCheck:
    """Kind, board, date, title, sizes and reply shape: everything the event decides by itself
    (with the settle time `at`; `settle_slack`: see `created_at_check`)."""
    if parsed.kind == KIND_ROOM_CREATE:  # renting a private room (no board yet)
        return room_content_check(parsed, lookups=lookups)
    if parsed.kind in kinds.SIDE_KINDS:  # a profile, deletion or edit: on no board
        dated = created_at_check(parsed.created_at, at=at, settle_slack=settle_slack)
        return ContentCheck(None, dated or side_kind_check(parsed, at=at, lookups=lookups))
    if parsed.kind not in (nostr.KIND_THREAD, nostr.KIND_REPLY):
        return ContentCheck(None, Finding(Reason.UNSUPPORTED_KIND, {"kind": parsed.kind}))
    slug = parsed.tag_value("h") or ""
    board = lookups.board(slug) if slug else None
    if board is None or board.destroyed_at is not None:
        return ContentCheck(None, Finding(Reason.UNKNOWN_BOARD, {"slug": slug}))
    dated = created_at_check(parsed.created_at, at=at, settle_slack=settle_slack)
    if dated is not None:
        return ContentCheck(board, dated)
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


def side_kind_check(parsed: nostr.Event, *, at: datetime, lookups: Lookups) -> Finding | None:
    """A kind 0 profile, kind 5 deletion (NIP-09) or kind 1010 edit: readable, and naming
    only published posts of the same key (on boards that allow deletions, for kind 5)."""
    try:
        if parsed.kind == nostr.KIND_PROFILE:
            kinds.profile_read(parsed)
            return None
        if parsed.kind == nostr.KIND_DELETION:
            targets = kinds.deletion_targets(parsed)
        else:
            edit = kinds.edit_read(parsed)
            targets = [edit.target]
    except kinds.KindError as exc:
        return _malformed(str(exc))
    what = "delete" if parsed.kind == nostr.KIND_DELETION else "edit"
    for target in targets:
        event = lookups.event(target)
        if (
            event is None
            or event.state != Event.State.PUBLISHED
            or event.kind not in kinds.POST_KINDS
        ):
            why = f"asked to {what} {target[:16]}…, which is not a published thread or reply here"
            return Finding(Reason.UNKNOWN_TARGET, {"why": why})
        if event.pubkey != parsed.pubkey:
            return Finding(Reason.NOT_AUTHOR, {"target": target[:16], "what": what})
        board = event.board
        if parsed.kind == nostr.KIND_DELETION:
            if board is not None and not lookups.board_as_of(board, at).allow_deletions:
                return Finding(Reason.DELETIONS_OFF, {"slug": board.slug})
            continue
        if event.deleted_at is not None or _post_hidden(event, lookups):
            return Finding(Reason.TARGET_HIDDEN, {"what": "the post"})
        limit = lookups.board_as_of(board, at).max_content_length if board else 0
        if len(edit.content) > limit:
            context = {"what": "the content", "length": len(edit.content), "limit": limit}
            return Finding(Reason.TOO_LARGE, context)
        if edit.title is not None:
            if event.kind != nostr.KIND_THREAD:
                return _malformed("only a thread's edit may carry a title tag")
            if not edit.title.strip():
                return _malformed("a thread needs a title tag")
            if len(edit.title) > MAX_TITLE_LENGTH:
                context = {
                    "what": "the title",
                    "length": len(edit.title),
                    "limit": MAX_TITLE_LENGTH,
                }
                return Finding(Reason.TOO_LARGE, context)
    return None


def _post_hidden(event: Event, lookups: Lookups) -> bool:
    if event.kind == nostr.KIND_THREAD:
        thread = lookups.thread(event.event_id)
        return thread is None or thread.is_hidden
    post = lookups.post(event.event_id)
    return post is None or post.is_hidden


def gate_check(
    *,
    pubkey: str,
    kind: int,
    root_ref: str,
    board_id: int | None,
    at: datetime,
    lookups: Lookups,
    parent_ref: str = "",
) -> Finding | None:
    """Ban, and where a reply goes (see `reply_place_check`), for a message settled (or about
    to settle) at `at`."""
    ban = lookups.active_ban(pubkey, at + SETTLE_RESOLUTION)
    if ban is not None:
        until = f" until {ban.expires_at:%Y-%m-%d %H:%M} UTC" if ban.expires_at else ""
        return Finding(Reason.BANNED, {"until": until})
    if kind == nostr.KIND_REPLY and root_ref:
        return reply_place_check(
            root_ref=root_ref, parent_ref=parent_ref, board_id=board_id, lookups=lookups
        )
    return None


def reply_place_check(
    *, root_ref: str, parent_ref: str, board_id: int | None, lookups: Lookups
) -> Finding | None:
    """A reply's thread and parent, as far as they are known: refused when the reply can never
    be published there (its root is a reply, its parent is in another thread, the thread is
    on another board), or may not be now (the thread is locked, thread or parent hidden).

    An unknown thread or parent is no finding: it may still arrive (see `reply_parent_missing`).
    """
    thread = lookups.thread(root_ref)
    if thread is None:
        root = lookups.event(root_ref)
        if root is not None and root.kind and root.kind != nostr.KIND_THREAD:
            detail = f"the reply's root (E tag) is a kind {root.kind} event, not a thread"
            return _malformed(detail)
    else:
        if thread.is_locked:
            return Finding(Reason.THREAD_LOCKED)
        if board_id and thread.board_id != board_id:
            return _malformed("the reply's board tag differs from its thread's board")
        if thread.is_hidden:
            return Finding(Reason.TARGET_HIDDEN, {"what": "the thread"})
    if not parent_ref or parent_ref == root_ref:
        return None
    parent = lookups.event(parent_ref)
    if parent is not None and parent.kind:
        # An event's kind and tags are part of its id: what is wrong here stays wrong.
        if parent.kind != nostr.KIND_REPLY:
            detail = f"the reply's parent (e tag) is a kind {parent.kind} event, not a reply"
            return _malformed(detail)
        if parent.root_ref and parent.root_ref != root_ref:
            return _malformed("the reply's parent (e tag) is a reply in another thread")
    post = lookups.post(parent_ref)
    if post is not None and post.is_hidden:
        return Finding(Reason.TARGET_HIDDEN, {"what": "the post it replies to"})
    return None


def reply_parent_missing(*, root_ref: str, parent_ref: str, lookups: Lookups) -> bool:
    """True while a reply's thread, or the reply it answers, is not published (yet)."""
    if lookups.thread(root_ref) is None:
        return True
    if parent_ref and parent_ref != root_ref:
        return lookups.post(parent_ref) is None
    return False


def tip_target_check(event: Event | None, *, lookups: Lookups) -> Finding | None:
    """Can `event` take a tip? It must be published and visible (not hidden, nor its thread)."""
    if event is None:
        return Finding(Reason.UNKNOWN_TARGET, {"why": "not known here"})
    if event.state != Event.State.PUBLISHED:
        return Finding(Reason.UNKNOWN_TARGET, {"why": "not a published post"})
    if event.kind == nostr.KIND_THREAD:
        thread = lookups.thread(event.event_id)
        hidden = thread is not None and thread.is_hidden
    else:
        post = lookups.post(event.event_id)
        hidden = post is not None and (post.is_hidden or post.thread.is_hidden)
    if hidden:
        return Finding(Reason.TARGET_HIDDEN, {"what": "the post"})
    return None
