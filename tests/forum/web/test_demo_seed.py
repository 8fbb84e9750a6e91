"""The demo seed: a living forum on first look, every post and tip paid by keysend over simnet."""

from __future__ import annotations

import time

import pytest

from forum.models import Board, LedgerEntry, Post, Rejection, Thread
from forum.services import demo

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_makes_boards_threads_replies_tips_and_a_pinned_welcome(settings, running_listener):
    settings.DEMO_MODE = True
    assert demo.demo_seed(timeout=30) is True

    boards = Board.objects.listed()
    assert boards.count() == len(demo.DEMO_BOARDS) >= 5
    assert Thread.objects.count() == len(demo.DEMO_THREADS)
    assert Post.objects.count() == len(demo.DEMO_REPLIES)
    # Every board has something to read, most threads have replies.
    assert all(Thread.objects.filter(board=board).exists() for board in boards)
    with_replies = Thread.objects.filter(posts__isnull=False).distinct().count()
    assert with_replies >= len(demo.DEMO_THREADS) - 1
    (pinned,) = Thread.objects.filter(is_pinned=True)
    assert pinned.title.startswith("Welcome") and pinned.board.slug == "general"
    # Replies to replies, so threads read like conversations.
    assert Post.objects.exclude(parent=None).exists()
    # Tips arrive by keysend too and raise what a post shows.
    tips = LedgerEntry.objects.filter(purpose=LedgerEntry.Purpose.TIP)
    deadline = time.monotonic() + 15
    while tips.filter(reconcile_state=LedgerEntry.ReconcileState.DONE).count() < len(
        demo.DEMO_TIPS
    ):
        assert time.monotonic() < deadline, "tips not reconciled"
        time.sleep(0.1)
    assert tips.count() == len(demo.DEMO_TIPS)
    welcome_tip = next(t for t in demo.DEMO_TIPS if t.thread == "welcome").sats * 1000
    pinned.refresh_from_db()
    assert pinned.sats_msat >= pinned.board.thread_price_msat + welcome_tip
    # Nothing refused, nothing paid twice: the seed is what a newcomer's post would be.
    assert not Rejection.objects.exists()
    assert demo.demo_seed() is False  # once only
