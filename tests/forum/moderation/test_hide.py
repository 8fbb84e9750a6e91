"""Hiding posts and threads: idempotent, audited, counters right, broadcast after commit."""

from __future__ import annotations

import pytest

from forum import realtime
from forum.models import Author, Board, Event, LedgerEntry, ModerationAction, Post, Thread
from forum.services import moderation
from tests.forum.moderation.conftest import make_reply, make_thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, str, dict]]:
    calls: list[tuple[str, str, dict]] = []
    monkeypatch.setattr(realtime, "broadcast_now", lambda g, t, p: calls.append((g, t, p)))
    return calls


def counters(forum) -> dict[str, int]:
    board = Board.objects.get(pk=forum.board.pk)
    thread = Thread.objects.get(pk=forum.thread.pk)
    alice = Author.objects.get(pk=forum.alice.pk)
    bob = Author.objects.get(pk=forum.bob.pk)
    return {
        "board.threads": board.thread_count,
        "board.posts": board.post_count,
        "thread.replies": thread.reply_count,
        "alice.threads": alice.thread_count,
        "bob.replies": bob.reply_count,
    }


def test_post_hide_is_idempotent_audited_and_counted(
    forum, moderator, sent, django_capture_on_commit_callbacks
):
    post = forum.replies[0]
    before = counters(forum)
    with django_capture_on_commit_callbacks(execute=True):
        assert moderation.post_hide(actor=moderator, post=post, reason="spam") is True
    assert moderation.post_hide(actor=moderator, post=post, reason="spam") is False

    post.refresh_from_db()
    assert post.is_hidden
    after = counters(forum)
    assert after == {**before, "board.posts": 3, "thread.replies": 2, "bob.replies": 2}
    action = ModerationAction.objects.get()
    assert (action.action, action.target_id, action.reason, action.actor_name) == (
        "post.hide",
        post.event.event_id,
        "spam",
        "mod",
    )
    # The money and the signed event stay.
    assert Event.objects.filter(pk=post.event_id).exists()
    assert LedgerEntry.objects.filter(event_id=post.event.event_id).exists()
    payload = {"event_id": post.event.event_id, "thread": forum.thread.event.event_id, "number": 1}
    assert (realtime.thread_group(forum.thread.event.event_id), "post.hidden", payload) in sent


def test_post_unhide_restores_counters(forum, moderator, sent):
    post = forum.replies[1]
    before = counters(forum)
    assert moderation.post_unhide(actor=moderator, post=post) is False
    assert moderation.post_hide(actor=moderator, post=post) is True
    assert moderation.post_unhide(actor=moderator, post=post) is True
    assert moderation.post_unhide(actor=moderator, post=post) is False
    assert counters(forum) == before
    assert list(ModerationAction.objects.values_list("action", flat=True)) == [
        "post.unhide",
        "post.hide",
    ]


def test_no_broadcast_when_the_transaction_rolls_back(forum, moderator, sent):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        moderation.post_hide(actor=moderator, post=forum.replies[0])
        raise RuntimeError("rollback")
    assert sent == []
    assert not Post.objects.get(pk=forum.replies[0].pk).is_hidden
    assert not ModerationAction.objects.exists()


def test_thread_hide_takes_its_replies_off_the_board(forum, moderator, sent):
    before = counters(forum)
    assert moderation.thread_hide(actor=moderator, thread=forum.thread, reason="off topic")
    assert not moderation.thread_hide(actor=moderator, thread=forum.thread)
    assert counters(forum) == {
        **before,
        "board.threads": 0,
        "board.posts": 0,
        "alice.threads": 0,
    }
    # A reply hidden inside a hidden thread is already off the board.
    assert moderation.post_hide(actor=moderator, post=forum.replies[0])
    assert counters(forum)["board.posts"] == 0
    assert moderation.thread_unhide(actor=moderator, thread=forum.thread)
    assert counters(forum) == {**before, "board.posts": 3, "thread.replies": 2, "bob.replies": 2}
    assert ModerationAction.objects.filter(action__startswith="thread.").count() == 2


def test_author_hide_all_hides_threads_and_replies_once(forum, moderator, sent):
    make_thread(author=forum.bob, board=forum.board, title="spam")
    bob_thread = Thread.objects.get(author=forum.bob)
    make_reply(author=forum.bob, thread=bob_thread)
    assert moderation.author_hide_all(actor=moderator, pubkey=forum.bob.pubkey, reason="spam") == 5
    assert moderation.author_hide_all(actor=moderator, pubkey=forum.bob.pubkey) == 0
    assert not Post.objects.filter(author=forum.bob, is_hidden=False).exists()
    bob = Author.objects.get(pk=forum.bob.pk)
    assert (bob.thread_count, bob.reply_count) == (0, 0)
    board = Board.objects.get(pk=forum.board.pk)
    # Alice's thread stays; Bob's replies in it are hidden.
    assert (board.thread_count, board.post_count) == (1, 1)
    assert ModerationAction.objects.count() == 5


def test_hide_never_goes_below_zero(forum, moderator):
    Thread.objects.filter(pk=forum.thread.pk).update(reply_count=0)
    assert moderation.post_hide(actor=moderator, post=forum.replies[0])
    assert Thread.objects.get(pk=forum.thread.pk).reply_count == 0


def test_deltas_agree_with_a_full_recount(forum, moderator, sent):
    """After any mix of hides and unhides, the counters equal the core's exact recount."""
    import random

    from forum.services.counters import counters_recompute

    other = make_thread(author=forum.bob, board=forum.board, title="second")
    replies = [*forum.replies, make_reply(author=forum.alice, thread=other)]
    threads = [forum.thread, other]
    rng = random.Random(7)
    for _ in range(40):
        if rng.random() < 0.6:
            post = rng.choice(replies)
            verb = rng.choice([moderation.post_hide, moderation.post_unhide])
            verb(actor=moderator, post=post)
        else:
            thread = rng.choice(threads)
            verb = rng.choice([moderation.thread_hide, moderation.thread_unhide])
            verb(actor=moderator, thread=thread)

    def snapshot():
        return (
            list(Board.objects.values_list("thread_count", "post_count")),
            list(Thread.objects.order_by("pk").values_list("reply_count", flat=True)),
            list(Author.objects.order_by("pk").values_list("thread_count", "reply_count")),
        )

    by_deltas = snapshot()
    counters_recompute()
    assert snapshot() == by_deltas
