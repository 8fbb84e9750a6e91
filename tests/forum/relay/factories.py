"""Forum rows for relay tests, made through the ORM the way the forum core leaves them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from forum import nostr
from forum.models import Author, Board, Event, Post, Thread
from forum.relay.index import event_tags_index

# Fixed keys so failures are reproducible (any 32-byte value below the curve order works).
ALICE = "01" * 32
BOB = "02" * 32


def make_board(slug: str = "general", **fields: Any) -> Board:
    return Board.objects.create(slug=slug, title=slug.title(), **fields)


def _event_row(event: nostr.Event, board: Board, **fields: Any) -> Event:
    return Event.objects.create(
        event_id=event.id,
        pubkey=event.pubkey,
        kind=event.kind,
        created_at=event.created_at,
        raw_json=event.to_json(),
        board=board,
        **fields,
    )


def store(
    event: nostr.Event,
    board: Board,
    *,
    hidden: bool = False,
    state: str = Event.State.PUBLISHED,
) -> Event:
    """Persist ``event`` the way the forum core does once its payment reconciled."""
    author, _ = Author.objects.get_or_create(pubkey=event.pubkey)
    row = _event_row(event, board, state=state)
    if state != Event.State.PUBLISHED:
        return row
    now = timezone.now()
    event_tags_index(row, event.tags)
    if event.kind == nostr.KIND_THREAD:
        Thread.objects.create(
            event=row,
            board=board,
            author=author,
            title=event.tag_value("title") or "",
            content=event.content,
            settled_at=now,
            last_activity_at=now,
            is_hidden=hidden,
        )
    else:
        thread = Thread.objects.get(event__event_id=event.tag_value("E"))
        Post.objects.create(
            event=row,
            thread=thread,
            author=author,
            board=board,
            content=event.content,
            number=thread.posts.count() + 1,
            settled_at=now,
            is_hidden=hidden,
        )
    return row


def thread(board: str = "general", *, secret: str = ALICE, **kwargs: Any) -> nostr.Event:
    kwargs.setdefault("title", "A thread")
    kwargs.setdefault("content", "Hello relay")
    return nostr.thread_event(secret, board=board, **kwargs)


def reply(root: nostr.Event, *, secret: str = BOB, **kwargs: Any) -> nostr.Event:
    kwargs.setdefault("content", "A reply")
    return nostr.reply_event(secret, board=root.tag_value("h") or "general", root=root, **kwargs)


def feed_payload(row: Event, *, with_raw: bool = True) -> dict[str, Any]:
    """What the core broadcasts to the public feed after a publish commits."""
    payload: dict[str, Any] = {
        "event_id": row.event_id,
        "kind": row.kind,
        "board": row.board.slug if row.board else "",
    }
    if with_raw:
        payload["raw"] = row.raw_json
    return payload


def publish_via_core(event: nostr.Event, board: Board) -> Event:
    """Publish ``event`` through the core's own pipeline, as after a payment: a ledger row as
    the listener writes it, then a reconcile batch (rows, counters and the ``post.published``
    broadcasts, sent after commit by the task's handler)."""
    import secrets

    from forum import protocol, tasks
    from forum.ingest import ledger
    from forum.models import LedgerEntry

    last = LedgerEntry.objects.filter(settle_index__isnull=False).order_by("-settle_index")
    last = last.values_list("settle_index", flat=True)
    LedgerEntry.objects.create(
        payment_hash=secrets.token_hex(32),
        node_pubkey="02" + "00" * 32,
        purpose=LedgerEntry.Purpose.MESSAGE,
        amount_msat=10**9,  # more than any price: this factory is about publishing
        settle_index=(last.first() or 0) + 1,
        # Paid when it was signed: relay tests date their events freely.
        settled_at=datetime.fromtimestamp(event.created_at, tz=UTC),
        is_keysend=True,
        custom_records=ledger.records_to_json(protocol.encode_event(event)),
        pubkey=event.pubkey,
        event_id=event.id,
    )
    tasks.reconcile_batch()
    row = Event.objects.get(event_id=event.id)
    assert row.state == Event.State.PUBLISHED, row.rejections.values_list("message", flat=True)
    return row
