"""Publishing: an accepted event becomes a Thread or a Post, counters move, browsers hear of it.

Locking contract: the caller holds the author's row lock (see `reconcile.author_lock`). A reply
locks its thread row to take the next post number. Counters move by `F()` deltas so they commute
with moderation's hide/unhide deltas. Broadcasts and follow-up tasks are queued on commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Max, Value
from django.db.models.functions import Coalesce, Greatest

from forum import nostr, realtime
from forum.models import Author, Board, Event, Post, Thread
from forum.relay.index import event_tags_index
from forum.services.versions import versions_bump, versions_bump_event


def _later(field: str, at: datetime) -> Greatest:
    # Coalesce first: SQLite's MAX() of NULL is NULL, PostgreSQL's GREATEST ignores it.
    return Greatest(Coalesce(F(field), Value(at)), Value(at))


def _enqueue_orphans(event_id: str) -> None:
    from forum import tasks

    tasks.orphans_attach.delay(event_id)


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


def _broadcast_published(payload: dict[str, Any], *, board: Board, thread_event_id: str) -> None:
    for group in (
        realtime.board_group(board.slug),
        realtime.thread_group(thread_event_id),
        realtime.PUBLIC_FEED_GROUP,
    ):
        realtime.broadcast_on_commit(group, "post.published", payload)


def thread_publish(*, event: Event, parsed: nostr.Event, author: Author, at: datetime) -> Thread:
    """Publish an accepted kind-11 event as a thread on its board."""
    board = event.board
    event.state, event.waiting_for = Event.State.PUBLISHED, ""
    event.save()
    event._status_where = (event.event_id, 0)
    thread = Thread.objects.create(
        event=event,
        board=board,
        author=author,
        title=parsed.tag_value("title") or "",
        content=parsed.content,
        settled_at=at,
        last_activity_at=at,
        sats_msat=event.paid_msat,
    )
    event_tags_index(event, parsed.tags)
    Author.objects.filter(pk=author.pk).update(thread_count=F("thread_count") + 1)
    Board.objects.filter(pk=board.pk).update(
        thread_count=F("thread_count") + 1,
        post_count=F("post_count") + 1,
        last_activity_at=_later("last_activity_at", at),
    )
    payload = published_payload(event=event, board=board, thread=thread, post=None)
    _broadcast_published(payload, board=board, thread_event_id=event.event_id)
    versions_bump(board=board.slug, thread=event.event_id)
    transaction.on_commit(lambda: _enqueue_orphans(event.event_id), robust=True)
    return thread


def reply_publish(
    *,
    event: Event,
    parsed: nostr.Event,
    author: Author,
    thread: Thread,
    parent: Post | None,
    at: datetime,
) -> Post:
    """Publish an accepted kind-1111 event in `thread` (the caller checked lock and board)."""
    # The thread row lock serializes numbering within the thread.
    thread = (
        Thread.objects.select_for_update(of=("self",))
        .select_related("event", "board")
        .get(pk=thread.pk)
    )
    last = Post.objects.filter(thread=thread).aggregate(n=Max("number"))["n"] or 0
    event.state, event.waiting_for = Event.State.PUBLISHED, ""
    event.save()
    event._status_where = (thread.event.event_id, last + 1)
    post = Post.objects.create(
        event=event,
        thread=thread,
        parent=parent,
        author=author,
        board=thread.board,
        content=parsed.content,
        number=last + 1,
        settled_at=at,
        sats_msat=event.paid_msat,
    )
    event_tags_index(event, parsed.tags)
    Thread.objects.filter(pk=thread.pk).update(
        reply_count=F("reply_count") + 1,
        sats_msat=F("sats_msat") + event.paid_msat,
        last_activity_at=_later("last_activity_at", at),
    )
    Author.objects.filter(pk=author.pk).update(reply_count=F("reply_count") + 1)
    # A reply in a hidden thread is not on the board's visible count (see moderation.hide).
    board_updates: dict[str, Any] = {"last_activity_at": _later("last_activity_at", at)}
    if not thread.is_hidden:
        board_updates["post_count"] = F("post_count") + 1
    Board.objects.filter(pk=thread.board_id).update(**board_updates)
    thread.refresh_from_db(fields=["reply_count", "sats_msat", "last_activity_at"])
    payload = published_payload(event=event, board=thread.board, thread=thread, post=post)
    _broadcast_published(payload, board=thread.board, thread_event_id=thread.event.event_id)
    updated = thread_updated_payload(thread)
    for group in (
        realtime.board_group(thread.board.slug),
        realtime.thread_group(thread.event.event_id),
    ):
        realtime.broadcast_on_commit(group, "thread.updated", updated)
    versions_bump(board=thread.board.slug, thread=thread.event.event_id)
    transaction.on_commit(lambda: _enqueue_orphans(event.event_id), robust=True)
    return post


def sats_add(*, event: Event, amount_msat: int) -> None:
    """Money for a published event after it was published (top-up beyond its price, tip)."""
    versions_bump_event(event_id=event.event_id)
    Event.objects.filter(pk=event.pk).update(paid_msat=F("paid_msat") + amount_msat)
    post = Post.objects.filter(event=event).first()
    if post is not None:
        Post.objects.filter(pk=post.pk).update(sats_msat=F("sats_msat") + amount_msat)
        Thread.objects.filter(pk=post.thread_id).update(sats_msat=F("sats_msat") + amount_msat)
    else:
        Thread.objects.filter(event=event).update(sats_msat=F("sats_msat") + amount_msat)
