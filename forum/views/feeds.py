"""Atom feeds: the whole forum, a board, a thread, an author (`forum.feeds` builds the XML).

Each feed shows what its public page shows, so it depends on the same page versions
(`forum.services.versions`): a hide or a new post changes the feed's ETag at once, and a feed
reader polling an unchanged feed gets a 304 after one cache read. The rendered feed is kept in
the `pages` cache under that ETag, which also names the host (entry ids are absolute URLs).
Private rooms have no feed: the rows come from the public selectors only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_GET

from forum import feeds
from forum.selectors import pages as sel
from forum.services.versions import Versions, page_cache, versions_read
from forum.views.page_cache import CACHE_CONTROL, PAGE_SECONDS, _quietly, code_fingerprint


def _feed_response(
    request: HttpRequest, versions: Versions, build: Callable[[], bytes]
) -> HttpResponseBase:
    raw = f"{code_fingerprint()}|{versions.tag}|{request.get_host()}|{request.get_full_path()}"
    etag = 'W/"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'
    not_modified = get_conditional_response(request, etag=etag)
    if not_modified is not None:
        not_modified["ETag"] = etag
        not_modified["Cache-Control"] = CACHE_CONTROL
        return not_modified
    cache = page_cache()
    key = "feed:" + etag[3:-1]
    body = _quietly(lambda: cache.get(key), None)
    if body is None:
        body = build()
        _quietly(lambda: cache.set(key, body, timeout=PAGE_SECONDS), None)
    response = HttpResponse(body, content_type=feeds.ATOM_CONTENT_TYPE)
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    return response


def _meta(request: HttpRequest, feed_path: str, page_path: str, title: str, subtitle: str = ""):
    return feeds.FeedMeta(
        feed_url=request.build_absolute_uri(feed_path),
        page_url=request.build_absolute_uri(page_path),
        title=title,
        subtitle=subtitle,
    )


# An empty feed still needs an <updated>; any fixed past instant will do.
_EMPTY_UPDATED = datetime(2020, 1, 1, tzinfo=UTC)


@require_GET
def forum_feed(request: HttpRequest) -> HttpResponseBase:
    """New threads and replies across the listed public boards."""

    def build() -> bytes:
        items = sel.latest_feed(page=1).items
        entries = [feeds.Entry(item.thread, item.post, item.board) for item in items]
        meta = _meta(
            request,
            reverse("feed"),
            reverse("home"),
            "Lightning Forum",
            "New threads and replies across the forum",
        )
        return feeds.atom_feed(
            meta, entries, absolute=request.build_absolute_uri, updated=_updated(entries)
        )

    return _feed_response(request, versions_read(), build)


@require_GET
def board_feed(request: HttpRequest, slug: str) -> HttpResponseBase:
    """New threads and replies on one public board."""

    def build() -> bytes:
        board = sel.board_get(slug)
        threads = (
            sel.visible_threads()
            .filter(board=board)
            .select_related("board", "author", "event")
            .order_by("-id")[: feeds.ENTRIES]
        )
        posts = (
            sel.visible_posts()
            .filter(board=board)
            .select_related("board", "author", "event", "thread")
            .order_by("-id")[: feeds.ENTRIES]
        )
        entries = feeds.entries_merge(threads, posts, feeds.ENTRIES)
        meta = _meta(
            request,
            reverse("board-feed", args=[board.slug]),
            reverse("board", args=[board.slug]),
            f"{board.title} · Lightning Forum",
            board.description,
        )
        return feeds.atom_feed(
            meta, entries, absolute=request.build_absolute_uri, updated=_updated(entries)
        )

    # Versions are read before any row (as the pages do); a 404 raised in build() is not stored.
    return _feed_response(request, versions_read(board=slug), build)


@require_GET
def thread_feed(request: HttpRequest, event_id: str) -> HttpResponseBase:
    """A thread's opening post and its latest replies."""
    key = event_id.lower()

    def build() -> bytes:
        thread = sel.thread_get(key)  # 404 for hidden threads and private rooms
        posts = (
            sel.visible_posts()
            .filter(thread=thread)
            .select_related("board", "author", "event", "thread")
            .order_by("-number")[: feeds.ENTRIES]
        )
        entries = feeds.entries_merge([thread], posts, feeds.ENTRIES)
        meta = _meta(
            request,
            reverse("thread-feed", args=[key]),
            reverse("thread", args=[key]),
            f"{thread.title} · {thread.board.title}",
        )
        return feeds.atom_feed(
            meta, entries, absolute=request.build_absolute_uri, updated=_updated(entries)
        )

    return _feed_response(request, versions_read(thread=key), build)


@require_GET
def author_feed(request: HttpRequest, key: str) -> HttpResponseBase:
    """An author's latest public threads and replies."""
    person = sel.author_get(key)

    def build() -> bytes:
        threads = (
            sel.visible_threads()
            .filter(author=person)
            .select_related("board", "author", "event")
            .order_by("-id")[: feeds.ENTRIES]
        )
        posts = (
            sel.visible_posts()
            .filter(author=person)
            .select_related("board", "author", "event", "thread")
            .order_by("-id")[: feeds.ENTRIES]
        )
        entries = feeds.entries_merge(threads, posts, feeds.ENTRIES)
        npub = sel.npub(person.pubkey)
        meta = _meta(
            request,
            reverse("author-feed", args=[npub]),
            reverse("author", args=[npub]),
            f"{feeds.author_name(person)} · Lightning Forum",
            f"Threads and replies by {npub}",
        )
        return feeds.atom_feed(
            meta, entries, absolute=request.build_absolute_uri, updated=_updated(entries)
        )

    # Any post by anyone can change the home versions; an author's posts are among them.
    return _feed_response(request, versions_read(), build)


def _updated(entries: list[feeds.Entry]) -> datetime:
    return entries[0].settled_at if entries else _EMPTY_UPDATED
