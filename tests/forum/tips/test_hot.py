"""The Hot rank is kept by the publishing batch: a reply or a tip moves it at once (no periodic
recomputation, no per-request ranking)."""

from __future__ import annotations

import pytest

from forum import nostr
from forum.models import Thread
from forum.ranking import hot_score

pytestmark = pytest.mark.django_db(transaction=True)


def hot_now(event_id: str) -> tuple[float, float]:
    """(stored Hot, Hot from the thread's totals now)."""
    row = Thread.objects.get(event__event_id=event_id)
    return row.hot, hot_score(sats_msat=row.sats_msat, replies=row.reply_count, at=row.settled_at)


def test_replies_and_tips_move_the_hot_rank_as_they_land(client, tipper, board, author_key):
    first = nostr.thread_event(author_key, board="tips", title="First", content="c")
    tipper.post(first, 10_000)
    second = nostr.thread_event(
        nostr.generate_secret_key(), board="tips", title="Second", content="c"
    )
    tipper.post(second, 10_000)
    stored, computed = hot_now(first.id)
    assert stored == pytest.approx(computed) and stored > 0
    html = client.get("/b/tips/?sort=hot").content.decode()
    assert html.index("Second") < html.index("First")  # as heavy and newer

    tipper.tip(first.id, 200_000)
    stored, computed = hot_now(first.id)
    assert stored == pytest.approx(computed)
    html = client.get("/hot/").content.decode()
    assert html.index("First") < html.index("Second")

    reply = nostr.reply_event(nostr.generate_secret_key(), board="tips", root=second, content="r")
    tipper.post(reply, 2_000)
    stored, computed = hot_now(second.id)
    assert stored == pytest.approx(computed)
    assert Thread.objects.get(event__event_id=second.id).reply_count == 1
