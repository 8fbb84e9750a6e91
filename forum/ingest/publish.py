"""Publishing: the rows of a published thread or reply, and the one builder of each realtime
payload about them (`post.published`, `thread.updated`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from forum import nostr, realtime
from forum.ingest.outcome import Message
from forum.models import Author, Board, Event, Post, Thread


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
