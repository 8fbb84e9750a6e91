"""Two moderators pressing the same button at the same moment (PostgreSQL row locks).

SQLite serializes whole transactions instead, which the other tests already exercise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, connections

from forum.models import LedgerEntry, ModerationAction, Post, Rejection, Thread
from forum.services import moderation, node
from tests.conftest import need
from tests.forum.moderation.conftest import make_rejection, node_pubkey
from tests.forum.moderation.test_refund import FakeClient

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


def test_two_refunds_at_once_pay_once(moderator, monkeypatch):
    client = FakeClient()
    original = client.keysend

    def slow_keysend(*args, **kwargs):
        time.sleep(0.5)  # the second press arrives while the first payment is in flight
        return original(*args, **kwargs)

    client.keysend = slow_keysend
    monkeypatch.setattr(node, "client", lambda name=None: client)
    from tests.forum.moderation.conftest import make_board

    rejection = make_rejection(board=make_board(), pubkey="ab" * 32, ln_node=node_pubkey())
    results = race(lambda: moderation.rejection_refund(actor=moderator, rejection=rejection))
    assert sorted(results) == [False, True]
    assert len(client.sent) == 1
    assert LedgerEntry.objects.filter(direction="out").count() == 1
    assert Rejection.objects.get(pk=rejection.pk).refund_entry is not None


def test_two_hides_at_once_count_once(forum, moderator):
    post = forum.replies[0]
    results = race(lambda: moderation.post_hide(actor=moderator, post=Post.objects.get(pk=post.pk)))
    assert sorted(results) == [False, True]
    assert Thread.objects.get(pk=forum.thread.pk).reply_count == 2
    assert ModerationAction.objects.count() == 1
