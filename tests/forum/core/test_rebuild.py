"""rebuild_from_node reproduces the forum: same ledger, events, threads, posts, counters,
rejections, with moderation decisions (hide, pin, lock, ban, price change) kept."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.db.models import F

from forum import nostr, protocol
from forum.models import (
    Author,
    Ban,
    Board,
    Event,
    LedgerEntry,
    ModerationAction,
    Post,
    Rejection,
    Thread,
)
from tests.forum.core.conftest import Poster

pytestmark = pytest.mark.django_db(transaction=True)


def forum_state() -> dict:
    return {
        "ledger": sorted(
            LedgerEntry.objects.filter(direction="in").values_list(
                "payment_hash",
                "purpose",
                "amount_msat",
                "pubkey",
                "event_id",
                "settle_index",
                "reconcile_state",
            )
        ),
        "events": sorted(
            Event.objects.values_list(
                "event_id",
                "state",
                "waiting_for",
                "paid_msat",
                "price_msat",
                "board__slug",
                "accepted_settle_index",
                "raw_json",
            )
        ),
        "threads": sorted(
            Thread.objects.values_list(
                "event__event_id",
                "board__slug",
                "title",
                "reply_count",
                "sats_msat",
                "is_hidden",
                "is_locked",
                "is_pinned",
                "last_activity_at",
                "settled_at",
            )
        ),
        "posts": sorted(
            Post.objects.values_list(
                "event__event_id",
                "thread__event__event_id",
                "parent__event__event_id",
                "number",
                "sats_msat",
                "is_hidden",
                "settled_at",
            ),
            key=str,
        ),
        "authors": sorted(
            Author.objects.values_list(
                "pubkey", "thread_count", "reply_count", "spent_msat", "alias"
            )
        ),
        "boards": sorted(
            Board.objects.values_list(
                "slug", "thread_count", "post_count", "last_activity_at", "thread_price_msat"
            )
        ),
        "rejections": sorted(
            Rejection.objects.values_list(
                "reason",
                "event_ref",
                "ledger_entry__payment_hash",
                "amount_msat",
                "message",
                "resolution",
                "pubkey",
            ),
            key=str,
        ),
    }


def next_second() -> None:
    """Settle times are whole seconds: keep moderation actions apart from payments."""
    time.sleep(1.05 - (time.time() % 1))


def test_rebuild_reproduces_the_forum(fresh_forum_node, board, alice_key, bob_key):
    poster = Poster(fresh_forum_node)
    carol_key = nostr.generate_secret_key()
    other = Board.objects.create(slug="other", title="Other", thread_price_msat=5_000)

    root = nostr.thread_event(alice_key, board="general", title="Root", content="hello")
    early = nostr.reply_event(bob_key, board="general", root=root, content="before the thread")
    poster.post(early, 2_000, sender="bob")  # orphan, attached when the thread arrives
    poster.post(root, 10_000)
    second = nostr.thread_event(carol_key, board="other", title="Elsewhere", content="x" * 700)
    for records in protocol.split_event(second, budget=300):  # multipart
        poster.pay(records, 2_000)
    under = nostr.reply_event(carol_key, board="general", root=root, content="cheap")
    poster.post(under, 500)  # underpaid ...
    poster.topup(under.id, 1_500)  # ... then completed
    poster.post(root, 10_000)  # duplicate
    poster.pay({}, 7_000)  # donation
    poster.post(nostr.thread_event(bob_key, board="nope", title="t", content="c"), 10_000)
    escalated = nostr.reply_event(alice_key, board="general", root=root, content="again")
    poster.post(escalated, 2_000)  # alice already posted the thread: underpaid (4 sats)

    next_second()
    Board.objects.filter(slug="general").update(thread_price_msat=30_000)
    ModerationAction.objects.create(
        actor_name="mod",
        action="board.update",
        target_type="board",
        target_id="general",
        details={"before": {"thread_price_msat": 10_000}, "after": {"thread_price_msat": 30_000}},
    )
    thread = Thread.objects.get(event__event_id=root.id)
    Thread.objects.filter(pk=thread.pk).update(is_locked=True)
    ModerationAction.objects.create(
        actor_name="mod", action="thread.lock", target_type="thread", target_id=root.id
    )
    Ban.objects.create(pubkey=nostr.public_key(bob_key), reason="spam")
    next_second()

    poster.post(nostr.reply_event(carol_key, board="general", root=root, content="locked"), 4_000)
    poster.post(nostr.thread_event(bob_key, board="general", title="b", content="b"), 30_000)
    dave = nostr.generate_secret_key()
    poster.post(nostr.thread_event(dave, board="general", title="d", content="d"), 10_000)
    poster.post(nostr.thread_event(dave, board="other", title="ok", content="ok"), 5_000)

    # Moderation flags that do not change verdicts: re-applied by event id.
    Post.objects.filter(event__event_id=early.id).update(is_hidden=True)
    Thread.objects.filter(pk=thread.pk).update(reply_count=F("reply_count") - 1, is_pinned=True)
    Board.objects.filter(slug="general").update(post_count=F("post_count") - 1)
    Thread.objects.filter(event__event_id=second.id).update(is_hidden=True)
    Board.objects.filter(pk=other.pk).update(
        thread_count=F("thread_count") - 1, post_count=F("post_count") - 1
    )
    Author.objects.filter(pubkey=nostr.public_key(carol_key)).update(
        alias="carol", thread_count=F("thread_count") - 1
    )
    Author.objects.filter(pubkey=nostr.public_key(bob_key)).update(reply_count=F("reply_count") - 1)

    before = forum_state()
    assert {e[1] for e in before["events"]} == {"published", "rejected", "pending"}
    assert {r[0] for r in before["rejections"]} >= {
        "duplicate",
        "unknown_board",
        "underpaid",
        "thread_locked",
        "banned",
    }
    call_command("rebuild_from_node", "--yes", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = forum_state()
    for key in before:
        assert after[key] == before[key], key
