"""Hide and unhide posts and threads.

Hiding never deletes: the ledger row, the Event and its raw signed JSON stay, and the post can
be unhidden. What changes are the `is_hidden` flag and the *visible* counters:

- `Thread.reply_count`: visible replies of the thread (a reply's own flag).
- `Board.thread_count`: visible threads; `Board.post_count`: visible threads + visible replies
  in visible threads (a hidden thread takes its replies off the board with it).
- `Author.thread_count` / `Author.reply_count`: the author's own visible threads / replies
  (hiding a thread does not touch the counters of the people who replied in it).

Counters move by `F()` deltas rather than recounts, so they commute with the forum core's
concurrent publish increments instead of overwriting them. Sats counters are money received
and do not change.

Locking contract: the post/thread row is locked (`select_for_update`) and its flag checked under
the lock, so two moderators hiding the same post change the counters once.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from forum import realtime
from forum.models import Author, Board, Post, Thread
from forum.ranking import threads_hot_refresh
from forum.selectors.pages import board_in_feed
from forum.services.moderation.audit import audit_record
from forum.services.versions import versions_bump


def _bump(model, pk: int, **deltas: int) -> None:
    """Add deltas to counters; never below zero (a PositiveIntegerField would refuse it)."""
    if not any(deltas.values()):
        return
    model.objects.filter(pk=pk).update(
        **{name: Greatest(F(name) + delta, 0) for name, delta in deltas.items() if delta}
    )


def _broadcast_post_hidden(*, thread: Thread, event_id: str, number: int) -> None:
    payload = {"event_id": event_id, "thread": thread.event.event_id, "number": number}
    realtime.broadcast_on_commit(
        realtime.thread_group(thread.event.event_id), "post.hidden", payload
    )
    realtime.broadcast_on_commit(realtime.board_group(thread.board.slug), "post.hidden", payload)
    if board_in_feed(thread.board):  # open home pages drop it (and a thread, its replies)
        realtime.broadcast_on_commit(realtime.PUBLIC_FEED_GROUP, "post.hidden", payload)


def _broadcast_thread_updated(thread: Thread) -> None:
    """The same `thread.updated` message the core sends when a reply arrives (fresh counters)."""
    from forum.ingest.publish import thread_updated_payload

    fresh = Thread.objects.select_related("event", "board").get(pk=thread.pk)
    payload = thread_updated_payload(fresh)
    versions_bump(board=fresh.board.slug, thread=fresh.event.event_id)  # hide, lock, pin
    for group in (
        realtime.thread_group(fresh.event.event_id),
        realtime.board_group(fresh.board.slug),
    ):
        realtime.broadcast_on_commit(group, "thread.updated", payload)


def _set_post_hidden(
    *, actor: AbstractBaseUser | None, post: Post, hidden: bool, reason: str
) -> bool:
    with transaction.atomic():
        locked = (
            Post.objects.select_for_update(of=("self",))
            .select_related("event", "thread__event", "thread__board")
            .get(pk=post.pk)
        )
        if locked.is_hidden == hidden:
            return False
        locked.is_hidden = hidden
        locked.save(update_fields=["is_hidden"])
        delta = -1 if hidden else 1
        thread = locked.thread
        _bump(Thread, thread.pk, reply_count=delta)
        _bump(Author, locked.author_id, reply_count=delta)
        threads_hot_refresh([thread.pk])  # a reply fewer (or more) moves its Hot rank
        # A reply in a hidden thread is already off the board's count.
        thread_hidden = Thread.objects.filter(pk=thread.pk).values_list("is_hidden", flat=True)[0]
        if not thread_hidden:
            _bump(Board, thread.board_id, post_count=delta)
        audit_record(
            actor=actor,
            action="post.hide" if hidden else "post.unhide",
            target_type="post",
            target_id=locked.event.event_id,
            reason=reason,
            details={
                "thread": thread.event.event_id,
                "number": locked.number,
                "board": thread.board.slug,
                "pubkey": locked.event.pubkey,
            },
        )
        if hidden:
            _broadcast_post_hidden(
                thread=thread, event_id=locked.event.event_id, number=locked.number
            )
        _broadcast_thread_updated(thread)
        post.is_hidden = hidden
        return True


def post_hide(*, actor: AbstractBaseUser | None, post: Post, reason: str = "") -> bool:
    """Hide one reply. Returns False if it was already hidden."""
    return _set_post_hidden(actor=actor, post=post, hidden=True, reason=reason)


def post_unhide(*, actor: AbstractBaseUser | None, post: Post, reason: str = "") -> bool:
    """Show a hidden reply again. Returns False if it was visible."""
    return _set_post_hidden(actor=actor, post=post, hidden=False, reason=reason)


def _set_thread_hidden(
    *, actor: AbstractBaseUser | None, thread: Thread, hidden: bool, reason: str
) -> bool:
    with transaction.atomic():
        locked = (
            Thread.objects.select_for_update(of=("self",))
            .select_related("event", "board")
            .get(pk=thread.pk)
        )
        if locked.is_hidden == hidden:
            return False
        locked.is_hidden = hidden
        locked.save(update_fields=["is_hidden"])
        delta = -1 if hidden else 1
        # The opening post plus its visible replies leave (or rejoin) the board's count.
        _bump(
            Board,
            locked.board_id,
            thread_count=delta,
            post_count=delta * (1 + locked.reply_count),
        )
        _bump(Author, locked.author_id, thread_count=delta)
        audit_record(
            actor=actor,
            action="thread.hide" if hidden else "thread.unhide",
            target_type="thread",
            target_id=locked.event.event_id,
            reason=reason,
            details={
                "title": locked.title,
                "board": locked.board.slug,
                "pubkey": locked.event.pubkey,
            },
        )
        if hidden:
            # Number 0 is the opening post: an open thread page removes it and its replies.
            _broadcast_post_hidden(thread=locked, event_id=locked.event.event_id, number=0)
        _broadcast_thread_updated(locked)
        thread.is_hidden = hidden
        return True


def thread_hide(*, actor: AbstractBaseUser | None, thread: Thread, reason: str = "") -> bool:
    """Hide a thread (its opening post and, with it, the thread page). False if already hidden."""
    return _set_thread_hidden(actor=actor, thread=thread, hidden=True, reason=reason)


def thread_unhide(*, actor: AbstractBaseUser | None, thread: Thread, reason: str = "") -> bool:
    """Show a hidden thread again. Returns False if it was visible."""
    return _set_thread_hidden(actor=actor, thread=thread, hidden=False, reason=reason)


def author_hide_all(*, actor: AbstractBaseUser | None, pubkey: str, reason: str = "") -> int:
    """Hide every visible thread and reply by `pubkey`; one audit row per item. Returns how many.

    Each item goes through `thread_hide`/`post_hide`, so counters and broadcasts are the same as
    hiding them one by one, and a second run hides nothing.
    """
    hidden = 0
    threads = Thread.objects.filter(event__pubkey=pubkey, is_hidden=False).select_related("event")
    for thread in threads:
        hidden += thread_hide(actor=actor, thread=thread, reason=reason)
    posts = Post.objects.filter(event__pubkey=pubkey, is_hidden=False).select_related("event")
    for post in posts:
        hidden += post_hide(actor=actor, post=post, reason=reason)
    return hidden
