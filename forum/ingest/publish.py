"""Publishing: the rows of a published thread or reply (with its Hot rank), the inbox rows it
or a tip causes, and the one builder of each realtime payload about them (`post.published`,
`thread.updated`, `inbox.new`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from forum import nostr, realtime
from forum.ingest.outcome import Message
from forum.ingest.rows import NoteRow
from forum.markdown_links import mentioned_pubkeys
from forum.models import Author, Board, Event, LedgerEntry, Notification, Post, Thread
from forum.ranking import hot_score


def thread_build(
    *, event: Event, parsed: nostr.Event, author: Author, board: Board, at: datetime
) -> Thread:
    """The unsaved thread row of an accepted kind-11 event."""
    event.state, event.waiting_for = Event.State.PUBLISHED, ""
    return Thread(
        event=event,
        board=board,
        author=author,
        title=parsed.tag_value("title") or "",
        content=parsed.content,
        settled_at=at,
        last_activity_at=at,
        sats_msat=event.paid_msat,
        hot=hot_score(sats_msat=event.paid_msat, replies=0, at=at),
    )


def reply_build(
    *,
    event: Event,
    parsed: nostr.Event,
    author: Author,
    thread: Thread,
    parent: Post | None,
    number: int,
    at: datetime,
) -> Post:
    """The unsaved post row of an accepted kind-1111 event, numbered `number` in `thread`."""
    event.state, event.waiting_for = Event.State.PUBLISHED, ""
    return Post(
        event=event,
        thread=thread,
        parent=parent,
        author=author,
        board=thread.board,
        content=parsed.content,
        number=number,
        settled_at=at,
        sats_msat=event.paid_msat,
    )


def published_payload(
    *, event: Event, board: Board, thread: Thread, post: Post | None
) -> dict[str, Any]:
    """The `post.published` message: data only; the web layer renders it."""
    subject = post if post is not None else thread
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "pubkey": event.pubkey,
        "board": board.slug,
        "thread_id": thread.pk,
        "thread_event_id": thread.event.event_id,
        "post_id": post.pk if post is not None else None,
        "number": post.number if post is not None else 0,
        # A reply to the thread itself names the thread; a thread names nothing.
        "parent_event_id": (
            None
            if post is None
            else post.parent.event.event_id
            if post.parent_id
            else thread.event.event_id
        ),
        "title": thread.title,
        "content": subject.content,
        "settled_at": subject.settled_at.isoformat(),
        "sats_msat": subject.sats_msat,
        "raw": event.raw_json,
    }


# The thread columns `thread.updated` reports (a batch re-reads just these after commit).
THREAD_UPDATED_FIELDS = (
    "reply_count",
    "sats_msat",
    "last_activity_at",
    "is_hidden",
    "is_locked",
    "is_pinned",
)


def thread_updated_payload(thread: Thread) -> dict[str, Any]:
    return {
        "thread": thread.event.event_id,
        "reply_count": thread.reply_count,
        "sats_msat": thread.sats_msat,
        "last_activity_at": thread.last_activity_at.isoformat(),
        "is_hidden": thread.is_hidden,
        "is_locked": thread.is_locked,
        "is_pinned": thread.is_pinned,
    }


def published_messages(
    *, event: Event, board: Board, thread: Thread, post: Post | None
) -> list[Message]:
    message = {
        "type": "post.published",
        "payload": published_payload(event=event, board=board, thread=thread, post=post),
    }
    groups = (
        realtime.board_group(board.slug),
        realtime.thread_group(thread.event.event_id),
        realtime.PUBLIC_FEED_GROUP,
    )
    return [(group, message) for group in groups]


def thread_updated_messages(thread: Thread) -> list[Message]:
    message = {"type": "thread.updated", "payload": thread_updated_payload(thread)}
    groups = (realtime.board_group(thread.board.slug), realtime.thread_group(thread.event.event_id))
    return [(group, message) for group in groups]


# --- notifications (the inbox of a pubkey) ----------------------------------------------------

# Mentions one event may notify: a long list of `p` tags is not a way to page everyone.
MAX_MENTIONS = 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


def mentions(parsed: nostr.Event) -> tuple[str, ...]:
    """Who an event mentions: its `p` tags, then `nostr:npub…`/`nprofile…` in its content."""
    found: dict[str, None] = {}
    for tag in parsed.tags:
        if len(tag) >= 2 and tag[0] == "p" and isinstance(tag[1], str) and _HEX64.fullmatch(tag[1]):
            found.setdefault(tag[1], None)
    for pubkey in mentioned_pubkeys(parsed.content, limit=MAX_MENTIONS):
        found.setdefault(pubkey, None)
    return tuple(found)[:MAX_MENTIONS]


def _public(board: Board | None) -> bool:
    # A private room's posts never reach anyone's inbox (it is public: any npub's is readable).
    return board is not None and not board.password_verifier


def notifications_build(
    *,
    event: Event,
    parsed: nostr.Event,
    thread: Thread,
    post: Post | None,
    at: datetime,
    mentioned: Sequence[str] | None = None,
) -> list[NoteRow]:
    """The unsaved inbox rows a published thread (post None) or reply causes: the authors of
    the thread and of the post replied to, then everyone mentioned; never the author itself,
    one row per person (a reply outranks a mention). `mentioned`: `mentions(parsed)`, if the
    caller made it already."""
    if not _public(event.board):
        return []
    actor = event.pubkey
    reasons: dict[str, str] = {}
    if post is not None:
        parent = post.parent
        for recipient in (parent.event.pubkey if parent is not None else None, thread.event.pubkey):
            if recipient and recipient != actor:
                reasons.setdefault(recipient, Notification.Reason.REPLY)
    for recipient in mentions(parsed) if mentioned is None else mentioned:
        if recipient != actor:
            reasons.setdefault(recipient, Notification.Reason.MENTION)
    return [
        NoteRow(recipient, str(reason), event.event_id, thread, post, at, actor=actor)
        for recipient, reason in reasons.items()
    ]


def tip_notification(
    *, event: Event, thread: Thread, post: Post | None, entry: LedgerEntry
) -> list[NoteRow]:
    """The inbox row of a tip to `event` (a published thread or reply) paid by `entry`."""
    if not _public(event.board):
        return []
    reason = str(Notification.Reason.TIP)
    return [
        NoteRow(
            event.pubkey,
            reason,
            entry.payment_hash,
            thread,
            post,
            entry.settled_at,
            amount_msat=entry.amount_msat,
        )  # fmt: skip
    ]


def inbox_messages(rows: list[NoteRow]) -> list[Message]:
    """One `inbox.new` per recipient of this batch: the browser asks for its unread count."""
    recipients = dict.fromkeys(row.recipient for row in rows)
    return [
        (realtime.inbox_group(recipient), {"type": "inbox.new", "payload": {"pubkey": recipient}})
        for recipient in recipients
    ]
