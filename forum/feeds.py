"""Atom feeds of the public forum, built with feedgen (no hand-written XML).

One builder, `atom_feed()`, turns public threads and replies into an Atom document. The views
in `forum.views.feeds` choose the rows (through the public selectors, so hidden posts, hidden
threads and private rooms never reach a feed) and the feed's identity.

Entry ids are the posts' permalinks (`/e/<event id>`), which never change; content is the
post's Markdown rendered by `forum.markdown` (sanitised), as on the pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from feedgen.feed import FeedGenerator

from forum.markdown import render_markdown
from forum.models import Author, Board, Post, Thread
from forum.selectors.inbox import InboxItem
from forum.selectors.pages import npub, short_npub

ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
ENTRIES = 30


@dataclass(frozen=True)
class FeedMeta:
    """Who the feed is: its id and self link (absolute), its page, title and subtitle."""

    feed_url: str
    page_url: str
    title: str
    subtitle: str = ""


def author_name(author: Author) -> str:
    # The same precedence as the pages' `author_name` filter: alias, profile name, npub.
    return author.alias or author.profile_name or short_npub(author.pubkey)


@dataclass(frozen=True)
class Entry:
    """One published, public thread (post is None) or reply, and its board."""

    thread: Thread
    post: Post | None
    board: Board

    @property
    def row(self):
        return self.post if self.post is not None else self.thread

    @property
    def event_id(self) -> str:
        return self.row.event.event_id

    @property
    def settled_at(self) -> datetime:
        return self.row.settled_at

    @property
    def title(self) -> str:
        if self.post is None:
            return self.thread.title
        return f"Re: {self.thread.title} (#{self.post.number})"


def entries_merge(threads: Iterable[Thread], posts: Iterable[Post], limit: int) -> list[Entry]:
    """Threads and replies as entries, newest first, at most `limit`."""
    entries = [Entry(t, None, t.board) for t in threads] + [
        Entry(p.thread, p, p.board) for p in posts
    ]
    entries.sort(key=lambda entry: (entry.settled_at, entry.event_id), reverse=True)
    return entries[:limit]


def _feed_head(meta: FeedMeta, updated: datetime) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(meta.feed_url)
    feed.title(meta.title)
    if meta.subtitle:
        feed.subtitle(meta.subtitle)
    feed.link(href=meta.page_url, rel="alternate", type="text/html")
    feed.link(href=meta.feed_url, rel="self", type="application/atom+xml")
    feed.generator("Lightning Forum")
    feed.updated(updated)
    return feed


def atom_feed(
    meta: FeedMeta, entries: list[Entry], *, absolute: Callable[[str], str], updated: datetime
) -> bytes:
    """The Atom XML for `entries` (newest first). `absolute` makes a path an absolute URL."""
    from django.urls import reverse

    feed = _feed_head(meta, max([updated, *(e.settled_at for e in entries)]))
    # feedgen prepends entries (add_entry inserts at the front): add oldest first.
    for entry in reversed(entries):
        item = feed.add_entry(order="prepend")
        permalink = absolute(reverse("event", args=[entry.event_id]))
        item.id(permalink)
        item.title(entry.title)
        item.link(href=permalink, rel="alternate", type="text/html")
        author = entry.row.author
        item.author(
            name=author_name(author),
            uri=absolute(reverse("author", args=[npub(author.pubkey)])),
        )
        item.published(entry.settled_at)
        item.updated(entry.settled_at)
        item.category(term=entry.board.slug, label=entry.board.title)
        item.content(str(render_markdown(entry.row.content)), type="html")
    return feed.atom_str(pretty=False)


def inbox_feed(
    meta: FeedMeta, items: list[InboxItem], *, absolute: Callable[[str], str], updated: datetime
) -> bytes:
    """A pubkey's inbox (newest first) as Atom: each entry links to the reply, mention or
    tipped post; its id is the inbox address with the notification's number (a post tipped
    twice is two entries)."""
    from django.urls import reverse

    feed = _feed_head(meta, max([updated, *(item.created_at for item in items)]))
    for item in reversed(items):
        entry = feed.add_entry(order="prepend")
        permalink = absolute(reverse("event", args=[item.event_id]))
        entry.id(f"{meta.page_url}#n{item.id}")
        entry.title(item.title)
        entry.link(href=permalink, rel="alternate", type="text/html")
        if item.actor is not None:
            entry.author(
                name=author_name(item.actor),
                uri=absolute(reverse("author", args=[npub(item.actor.pubkey)])),
            )
        else:
            entry.author(name="Lightning Forum")
        entry.published(item.created_at)
        entry.updated(item.created_at)
        entry.category(term=item.reason)
        entry.content(str(render_markdown(item.content)), type="html")
    return feed.atom_str(pretty=False)
