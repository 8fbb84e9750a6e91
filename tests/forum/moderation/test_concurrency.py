"""Two moderators pressing the same button at the same moment (PostgreSQL row locks).

SQLite serializes whole transactions instead, which the other tests already exercise. Two
refunds at once run over simnet, with a real keysend: `test_refund_races.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections

from forum.models import ModerationAction, Post, Thread
from forum.services import moderation
from tests.conftest import need

pytestmark = pytest.mark.django_db(transaction=True)


def race(fn: Callable[[], object], n: int = 2) -> list[object]:
    """Run `fn` in `n` threads released together; their results (or exceptions)."""
    barrier = threading.Barrier(n)
    results: list[object] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(fn())
        except Exception as exc:  # reported to the test as a value
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.fixture(autouse=True)
def _postgres_only():
    need(connection.vendor == "postgresql", "row-lock races need PostgreSQL (DATABASE_URL)")


def test_two_hides_at_once_count_once(forum, moderator):
    post = forum.replies[0]
    results = race(lambda: moderation.post_hide(actor=moderator, post=Post.objects.get(pk=post.pk)))
    assert sorted(results) == [False, True]
    assert Thread.objects.get(pk=forum.thread.pk).reply_count == 2
    assert ModerationAction.objects.count() == 1
