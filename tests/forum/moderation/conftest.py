"""Rows for moderation tests, built directly (the forum core's reconciliation is not needed
to moderate what it has published)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from forum.models import Author, Ban, Board, Event, LedgerEntry, Post, Rejection, Thread
from forum.permissions import MODERATOR_GROUP
from tests.conftest import record_invoice


def hex32() -> str:
    return secrets.token_hex(32)


def node_pubkey() -> str:
    return "02" + secrets.token_hex(32)


@dataclass
class Forum:
    """A tiny published forum, counters as the core would keep them."""

    board: Board
    alice: Author
    bob: Author
    thread: Thread
    replies: list[Post]


def make_board(slug: str = "general", **kw) -> Board:
    return Board.objects.create(slug=slug, title=slug.title(), **kw)


def make_author(pubkey: str | None = None) -> Author:
    return Author.objects.create(pubkey=pubkey or hex32())


def make_payment(
    *, pubkey: str, event_id: str, amount_msat: int, at: dt.datetime | None = None, **kw
) -> LedgerEntry:
    return LedgerEntry.objects.create(
        payment_hash=hex32(),
        node_pubkey="02" + "11" * 32,
        direction=LedgerEntry.Direction.IN,
        purpose=kw.pop("purpose", LedgerEntry.Purpose.MESSAGE),
        amount_msat=amount_msat,
        settled_at=at or timezone.now(),
        is_keysend=True,
        pubkey=pubkey,
        event_id=event_id,
        reconcile_state=LedgerEntry.ReconcileState.DONE,
        **kw,
    )


def make_event(*, author: Author, board: Board, kind: int, **kw) -> Event:
    event_id = kw.pop("event_id", None) or hex32()
    return Event.objects.create(
        event_id=event_id,
        pubkey=author.pubkey,
        kind=kind,
        created_at=int(timezone.now().timestamp()),
        raw_json="{}",
        board=board,
        **kw,
    )


def make_thread(
    *, author: Author, board: Board, title: str = "Hello", content: str = "body"
) -> Thread:
    now = timezone.now()
    event = make_event(author=author, board=board, kind=11, state=Event.State.PUBLISHED)
    make_payment(pubkey=author.pubkey, event_id=event.event_id, amount_msat=board.thread_price_msat)
    thread = Thread.objects.create(
        event=event,
        board=board,
        author=author,
        title=title,
        content=content,
        settled_at=now,
        last_activity_at=now,
        sats_msat=board.thread_price_msat,
    )
    Board.objects.filter(pk=board.pk).update(
        thread_count=board.thread_count + 1, post_count=board.post_count + 1
    )
    Author.objects.filter(pk=author.pk).update(thread_count=author.thread_count + 1)
    board.refresh_from_db()
    author.refresh_from_db()
    return thread


def make_reply(*, author: Author, thread: Thread, content: str = "a reply") -> Post:
    board = thread.board
    now = timezone.now()
    event = make_event(author=author, board=board, kind=1111, state=Event.State.PUBLISHED)
    make_payment(pubkey=author.pubkey, event_id=event.event_id, amount_msat=board.reply_price_msat)
    number = thread.posts.count() + 1
    post = Post.objects.create(
        event=event,
        thread=thread,
        author=author,
        board=board,
        content=content,
        number=number,
        settled_at=now,
        sats_msat=board.reply_price_msat,
    )
    Thread.objects.filter(pk=thread.pk).update(reply_count=thread.reply_count + 1)
    Board.objects.filter(pk=board.pk).update(post_count=board.post_count + 1)
    Author.objects.filter(pk=author.pk).update(reply_count=author.reply_count + 1)
    for row in (thread, board, author):
        row.refresh_from_db()
    return post


def make_rejection(
    *,
    board: Board,
    pubkey: str,
    amount_msat: int = 5_000,
    reason: str = Rejection.Reason.BANNED,
    ln_node: str = "",
    with_event: bool = True,
) -> Rejection:
    event = None
    event_id = hex32()
    if with_event:
        event = Event.objects.create(
            event_id=event_id,
            pubkey=pubkey,
            kind=1111,
            created_at=int(timezone.now().timestamp()),
            raw_json="{}",
            board=board,
            state=Event.State.REJECTED,
            ln_node=ln_node,
            paid_msat=amount_msat,
        )
    entry = make_payment(pubkey=pubkey, event_id=event_id, amount_msat=amount_msat)
    return Rejection.objects.create(
        reason=reason,
        message=f"blocked: {reason}",
        amount_msat=amount_msat,
        ledger_entry=entry,
        event=event,
        event_ref=event_id,
        pubkey=pubkey,
        board=board,
    )


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    # The default hasher costs about a second per user; these tests make many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def forum(db) -> Forum:
    board = make_board()
    alice, bob = make_author(), make_author()
    thread = make_thread(author=alice, board=board)
    replies = [make_reply(author=bob, thread=thread, content=f"reply {i}") for i in range(3)]
    for row in (board, alice, bob, thread):
        row.refresh_from_db()
    return Forum(board=board, alice=alice, bob=bob, thread=thread, replies=replies)


@pytest.fixture
def moderator(db) -> User:
    user = User.objects.create_user("mod", password="correct horse battery")
    user.groups.add(Group.objects.get_or_create(name=MODERATOR_GROUP)[0])
    return user


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("staffer", password="correct horse battery", is_staff=True)


@pytest.fixture
def member(db) -> User:
    return User.objects.create_user("member", password="correct horse battery")


def deliver(forum_node, event, amount_msat: int, *, sender: str = "alice") -> LedgerEntry:
    """Pay `event` to the simnet forum node from `sender`, record and reconcile it (as the
    listener and the Celery task would), and return the ledger row."""
    from forum import protocol, tasks

    invoice = forum_node.keysend(protocol.encode_event(event), amount_msat, sender=sender)
    entry, _ = record_invoice(
        invoice=invoice, node_pubkey=forum_node.pubkey, advance_cursor=False, enqueue=False
    )
    tasks.reconcile_batch()
    entry.refresh_from_db()
    return entry


def local_balance_sat(client) -> int:
    """A node's own view of its spendable sats: the sum of its channels' local balances."""
    return sum(channel.local_balance_sat for channel in client.list_channels())


def backdate_bans(seconds: int = 60) -> None:
    """lnd (and simnet) report settle times in whole seconds: a ban made a moment before a
    payment in the same second would not cover it, so tests move their bans back a little."""
    Ban.objects.update(created_at=timezone.now() - dt.timedelta(seconds=seconds))
