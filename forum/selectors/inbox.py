"""The inbox of a pubkey: replies to its threads and replies, mentions, tips it received.

Rows are written by the batch that publishes their cause (`forum.ingest.publish`), never for a
private room; reading shows only what the public pages show (a hidden or deleted thread or
reply, a destroyed board: gone from the inbox on the next request). There are no accounts, so
any pubkey's inbox is public, like its author page: an Atom feed per npub and a page; a
browser keeps its own "read up to" mark.

`inbox()` costs two queries (the rows with their threads, posts and boards; the actors' author
rows for their names), `unread_count()` one (pinned in tests/forum/inbox/test_inbox.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from forum.models import Author, Notification, Post, Thread
from forum.selectors.pages import short_npub

INBOX_ITEMS = 30
UNREAD_CAP = 99  # the bell says "99+" beyond it


@dataclass(frozen=True)
class InboxItem:
    id: int
    reason: str
    created_at: datetime
    amount_msat: int
    actor: Author | None  # who replied or mentioned (None for a tip: tips are anonymous)
    thread: Thread
    post: Post | None  # the reply (that replied, mentioned or was tipped); None: the thread

    @property
    def event_id(self) -> str:
        return (self.post or self.thread).event.event_id

    @property
    def content(self) -> str:
        return (self.post or self.thread).content

    @property
    def actor_name(self) -> str:
        if self.actor is None:
            return "someone"
        return self.actor.alias or self.actor.profile_name or short_npub(self.actor.pubkey)

    @property
    def title(self) -> str:
        """One line for people: who did what, where."""
        where = f"“{self.thread.title}”"
        if self.post is not None:
            where = f"#{self.post.number} in {where}"
        if self.reason == Notification.Reason.TIP:
            sats = self.amount_msat / 1000
            amount = f"{sats:,.0f}" if self.amount_msat % 1000 == 0 else f"{sats:,.3f}"
            noun = "sat" if self.amount_msat == 1000 else "sats"
            return f"A tip of {amount} {noun} for your post {where}"
        if self.reason == Notification.Reason.REPLY:
            return f"{self.actor_name} replied: {where}"
        return f"{self.actor_name} mentioned you: {where}"


def visible(pubkey: str) -> QuerySet[Notification]:
    """The pubkey's notifications whose thread and reply the public pages show, newest first."""
    return (
        Notification.objects.filter(
            recipient=pubkey,
            thread__is_hidden=False,
            thread__board__password_verifier="",
            thread__board__destroyed_at__isnull=True,
        )
        .filter(Q(post__isnull=True) | Q(post__is_hidden=False))
        .order_by("-id")
    )


def inbox(pubkey: str, *, limit: int = INBOX_ITEMS) -> list[InboxItem]:
    """The newest `limit` visible notifications of `pubkey` (two queries)."""
    rows = list(
        visible(pubkey).select_related(
            "thread", "thread__event", "thread__board", "post", "post__event"
        )[:limit]
    )
    actors = {row.actor for row in rows if row.actor}
    authors = {a.pubkey: a for a in Author.objects.filter(pubkey__in=actors)} if actors else {}
    return [
        InboxItem(
            id=row.pk,
            reason=row.reason,
            created_at=row.created_at,
            amount_msat=row.amount_msat,
            actor=authors.get(row.actor),
            thread=row.thread,
            post=row.post,
        )
        for row in rows
    ]


def unread_count(pubkey: str, *, after: int) -> int:
    """How many visible notifications are newer than id `after`, at most UNREAD_CAP + 1."""
    ids = visible(pubkey).filter(id__gt=after).values("id")[: UNREAD_CAP + 1]
    return Notification.objects.filter(id__in=ids).count()
