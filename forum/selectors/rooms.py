"""Reads behind the private room pages (`forum.views.rooms`): the room, its threads and posts.

The public selectors (`forum.selectors.pages`) never return a room's content; these do, and
only the room views call them, after checking that the browser session unlocked the room.
Like the public ones, each page costs a fixed number of queries.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from forum.models import Board, Event, Post, Thread
from forum.selectors.pages import BOARD_SORTS, POSTS_PER_PAGE, THREADS_PER_PAGE


def room_get(slug: str) -> Board:
    """A room by slug, live or destroyed (its tombstone); 404 for anything else."""
    board = Board.objects.filter(slug=slug, expires_at__isnull=False).first()
    if board is None:
        raise Http404("no such room")
    return board


def _threads(board: Board) -> QuerySet[Thread]:
    return Thread.objects.filter(board=board, is_hidden=False)


def room_threads_page(board: Board, *, sort: str = "latest", page: int | str = 1) -> Page:
    ordering = BOARD_SORTS.get(sort, BOARD_SORTS["latest"])
    threads = _threads(board).select_related("author", "event").order_by(*ordering)
    return Paginator(threads, THREADS_PER_PAGE).get_page(page)


def room_thread_get(board: Board, event_id: str) -> Thread:
    try:
        return (
            _threads(board).select_related("board", "author", "event").get(event__event_id=event_id)
        )
    except Thread.DoesNotExist:
        raise Http404("no such thread in this room") from None


def _posts(board: Board) -> QuerySet[Post]:
    return Post.objects.filter(board=board, is_hidden=False, thread__is_hidden=False)


def room_posts_page(thread: Thread, *, page: int | str = 1) -> Page:
    posts = (
        _posts(thread.board)
        .filter(thread=thread)
        .select_related("author", "event", "parent", "parent__author", "parent__event")
        .order_by("number")
    )
    return Paginator(posts, POSTS_PER_PAGE).get_page(page)


def room_post_locate(board: Board, event_id: str) -> tuple[Thread, Post | None]:
    """The thread, or the reply and its thread, for an event id in this room."""
    thread = _threads(board).select_related("event").filter(event__event_id=event_id).first()
    if thread is not None:
        return thread, None
    post = (
        _posts(board).select_related("thread", "thread__event").filter(event__event_id=event_id)
    ).first()
    if post is None:
        raise Http404("no such post in this room")
    return post.thread, post


def room_post_page_number(post: Post) -> int:
    before = _posts(post.board).filter(thread_id=post.thread_id, number__lt=post.number).count()
    return before // POSTS_PER_PAGE + 1


def room_event_raw(board: Board, event_id: str) -> str:
    room_post_locate(board, event_id)  # hidden posts stay hidden here too
    raw = (
        Event.objects.filter(event_id=event_id, board=board, state=Event.State.PUBLISHED)
        .values_list("raw_json", flat=True)
        .first()
    )
    if raw is None:
        raise Http404("no such event in this room")
    return raw


def room_of_event(event_id: str) -> Board | None:
    """The live room a published event belongs to, if it is in one."""
    event = (
        Event.objects.filter(
            event_id=event_id,
            state=Event.State.PUBLISHED,
            board__destroyed_at__isnull=True,
            board__expires_at__isnull=False,
        )
        .select_related("board")
        .first()
    )
    return event.board if event is not None else None


def live_follow_allowed(*, scope: str, key: str, unlocked: dict[str, str]) -> bool:
    """May a websocket follow this board or thread? Rooms only with the session's unlock.

    `unlocked` is the session's {slug: fingerprint} (see `forum.views.rooms`). Public boards
    and threads are open to all, as their pages are.
    """
    if scope == "board":
        board = Board.objects.filter(slug=key).first()
    elif scope == "thread":
        thread = Thread.objects.select_related("board").filter(event__event_id=key).first()
        board = thread.board if thread is not None else None
    else:
        return True
    if board is None or board.expires_at is None:
        return True
    return fingerprint_matches(board, unlocked)


def room_fingerprint(board: Board) -> str:
    # Bound to the verifier, not only the slug: a session never unlocks anything else.
    return hashlib.sha256(board.password_verifier.encode()).hexdigest()[:16]


def fingerprint_matches(board: Board, unlocked: dict[str, str]) -> bool:
    """Does a session's {slug: fingerprint} unlock this (live) room?"""
    if not board.password_verifier or room_expired(board):
        return False
    return unlocked.get(board.slug) == room_fingerprint(board)


def room_expired(board: Board, *, now: datetime | None = None) -> bool:
    if board.destroyed_at is not None:
        return True
    return board.expires_at is not None and board.expires_at <= (now or timezone.now())
