"""Published boards, threads and replies made directly in the database, with real signed
events, for page tests that do not need the Lightning path."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

from django.db import transaction
from django.utils import timezone

from forum import nostr
from forum.models import Author, Board, Event, Post, Thread
from forum.services.versions import versions_bump

_settle = count(1)


def board(slug: str = "general", **fields) -> Board:
    defaults = {"title": slug.title(), "description": f"About {slug}."}
    return Board.objects.create(slug=slug, **{**defaults, **fields})


def author(secret: str | None = None, **fields) -> tuple[Author, str]:
    secret = secret or nostr.generate_secret_key()
    pubkey = nostr.public_key(secret)
    person, _ = Author.objects.get_or_create(pubkey=pubkey, defaults=fields)
    return person, secret


def _event_row(event: nostr.Event, on: Board, at) -> Event:
    return Event.objects.create(
        event_id=event.id,
        pubkey=event.pubkey,
        kind=event.kind,
        created_at=event.created_at,
        raw_json=event.to_json(),
        board=on,
        state=Event.State.PUBLISHED,
        paid_msat=on.thread_price_msat,
        price_msat=on.thread_price_msat,
        settled_at=at,
        settle_index=next(_settle),
    )


def thread(
    on: Board,
    *,
    title: str = "Hello",
    content: str = "First post",
    secret: str | None = None,
    at=None,
    **fields,
) -> tuple[Thread, nostr.Event]:
    person, secret = author(secret)
    at = at or timezone.now()
    signed = nostr.thread_event(secret, board=on.slug, title=title, content=content)
    row = Thread.objects.create(
        event=_event_row(signed, on, at),
        board=on,
        author=person,
        title=title,
        content=content,
        settled_at=at,
        last_activity_at=at,
        sats_msat=on.thread_price_msat,
        **fields,
    )
    person.thread_count += 1
    person.save(update_fields=["thread_count"])
    on.thread_count += 1
    on.post_count += 1
    on.last_activity_at = at
    on.save(update_fields=["thread_count", "post_count", "last_activity_at"])
    versions_bump(board=on.slug, thread=signed.id)  # as publishing does
    return row, signed


def replies(
    root: Thread,
    root_event: nostr.Event,
    n: int,
    *,
    parent: tuple[Post, nostr.Event] | None = None,
    secret: str | None = None,
    content: str = "Reply {i}",
) -> list[tuple[Post, nostr.Event]]:
    """`n` published replies (one signer), numbered after the thread's existing ones."""
    person, secret = author(secret)
    on = root.board
    start = root.posts.count()
    base = timezone.now()
    made = []
    with transaction.atomic():
        for i in range(n):
            at = base + timedelta(milliseconds=i)
            signed = nostr.reply_event(
                secret,
                board=on.slug,
                root=root_event,
                parent=parent[1] if parent else None,
                content=content.format(i=start + i + 1),
            )
            post = Post.objects.create(
                event=_event_row(signed, on, at),
                thread=root,
                parent=parent[0] if parent else None,
                author=person,
                board=on,
                content=signed.content,
                number=start + i + 1,
                settled_at=at,
                sats_msat=on.reply_price_msat,
            )
            made.append((post, signed))
        Thread.objects.filter(pk=root.pk).update(
            reply_count=start + n,
            last_activity_at=base,
            sats_msat=root.sats_msat + n * on.reply_price_msat,
        )
        person.reply_count += n
        person.save(update_fields=["reply_count"])
        versions_bump(board=on.slug, thread=root_event.id)
    root.refresh_from_db()
    return made
