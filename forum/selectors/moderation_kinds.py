"""Reads for the console's side-kind pages: posts their authors deleted (NIP-09)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forum.models import Event, Post, Thread

DELETIONS_SHOWN = 100


@dataclass(frozen=True)
class Deleted:
    event_id: str
    pubkey: str
    kind: int
    board: str
    deleted_at: datetime
    deleted_by: str  # the kind 5 event's id
    title: str
    content: str
    thread_pk: int | None


def deletions_recent(limit: int = DELETIONS_SHOWN) -> list[Deleted]:
    """The newest deleted threads and replies with their text (three queries)."""
    events = list(
        Event.objects.filter(deleted_at__isnull=False)
        .select_related("board")
        .order_by("-deleted_at", "-id")[:limit]
    )
    pks = [e.pk for e in events]
    threads = {t.event_id: t for t in Thread.objects.filter(event_id__in=pks)}
    posts = {p.event_id: p for p in Post.objects.select_related("thread").filter(event_id__in=pks)}
    rows = []
    for event in events:
        thread = threads.get(event.pk)
        post = posts.get(event.pk)
        subject = thread or post
        rows.append(
            Deleted(
                event_id=event.event_id,
                pubkey=event.pubkey,
                kind=event.kind,
                board=event.board.slug if event.board else "",
                deleted_at=event.deleted_at,
                deleted_by=event.deleted_by_ref,
                title=thread.title if thread else (post.thread.title if post else ""),
                content=subject.content if subject else "",
                thread_pk=thread.pk if thread else (post.thread_id if post else None),
            )
        )
    return rows
