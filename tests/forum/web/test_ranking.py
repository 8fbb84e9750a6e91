"""Hot and Top, per board and across the forum: the stored Hot rank follows replies, tips and
moderation; Top keeps to its period; private rooms, unlisted boards and hidden threads stay out;
a page costs the same queries however many threads it ranks."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forum import nostr
from forum.models import Thread
from forum.ranking import HALF_LIFE_SECONDS, hot_score, threads_hot_refresh
from forum.services.moderation.hide import post_hide
from tests.forum.web import factories as f


def titles(html: str) -> list[str]:
    return re.findall(
        r'<div class="thread-title">(?:<span[^>]*>[^<]*</span>)*<a href="[^"]*">([^<]*)</a>', html
    )


def test_hot_weighs_sats_and_replies_and_halves_with_age():
    now = timezone.now()
    base = hot_score(sats_msat=9_000, replies=0, at=now)
    assert hot_score(sats_msat=0, replies=1, at=now) > hot_score(sats_msat=0, replies=0, at=now)
    assert hot_score(sats_msat=19_000, replies=0, at=now) > base  # more sats, hotter
    # Twice the weight (1 + 19 = 2 x (1 + 9)) makes up for HALF_LIFE of age, exactly.
    older = now - timedelta(seconds=HALF_LIFE_SECONDS)
    assert hot_score(sats_msat=19_000, replies=0, at=older) == pytest.approx(base)


@pytest.mark.django_db
def test_top_keeps_to_its_period_on_a_board_and_across_the_forum(client):
    general, other = f.board("general"), f.board("other")
    unlisted = f.board("quiet", is_listed=False)
    room = f.board("room", password_verifier="pbkdf2$x", is_listed=False)
    now = timezone.now()
    for board, title, days, sats in [
        (general, "Today small", 0, 1_000),
        (general, "Two days big", 2, 50_000),
        (other, "Ten days bigger", 10, 80_000),
        (general, "Forty days biggest", 40, 900_000),
        (general, "Hidden today", 0, 999_000),
        (unlisted, "Unlisted today", 0, 999_000),
        (room, "Room today", 0, 999_000),
    ]:
        row, _ = f.thread(board, title=title, at=now - timedelta(days=days, minutes=1),
                          is_hidden=title.startswith("Hidden"))  # fmt: skip
        Thread.objects.filter(pk=row.pk).update(sats_msat=sats)
    wide = {p: titles(client.get(f"/top/?period={p}").content.decode()) for p in
            ("day", "week", "month", "all")}  # fmt: skip
    assert wide["day"] == ["Today small"]
    assert wide["week"] == ["Two days big", "Today small"]
    assert wide["month"] == ["Ten days bigger", "Two days big", "Today small"]
    assert wide["all"] == ["Forty days biggest", "Ten days bigger", "Two days big", "Today small"]
    board = titles(client.get("/b/general/?sort=top&period=week").content.decode())
    assert board == ["Two days big", "Today small"]
    assert titles(client.get("/b/quiet/?sort=top&period=day").content.decode()) == [
        "Unlisted today"
    ]
    assert client.get("/top/?period=fortnight").status_code == 200  # unknown: a week
    across = client.get("/top/?period=month").content.decode()
    assert '<a class="board-name" href="/b/other/">Other</a>' in across  # which board, forum-wide


@pytest.mark.django_db
def test_hot_lists_the_stored_rank_and_a_hidden_reply_lowers_it(client):
    general = f.board("general")
    now = timezone.now()
    old, old_root = f.thread(general, title="Old busy", at=now - timedelta(hours=30))
    f.thread(general, title="New quiet", at=now)
    replies = f.replies(old, old_root, 40)
    Thread.objects.filter(pk=old.pk).update(sats_msat=400_000)
    threads_hot_refresh(Thread.objects.values_list("pk", flat=True))
    assert titles(client.get("/hot/").content.decode()) == ["Old busy", "New quiet"]
    assert titles(client.get("/b/general/?sort=hot").content.decode()) == ["Old busy", "New quiet"]
    before = Thread.objects.get(pk=old.pk).hot
    assert post_hide(actor=None, post=replies[0][0], reason="spam")
    after = Thread.objects.get(pk=old.pk)
    assert after.hot < before
    assert after.hot == pytest.approx(
        hot_score(sats_msat=after.sats_msat, replies=after.reply_count, at=after.settled_at)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/hot/", "/top/?period=all", "/b/general/?sort=hot"])
def test_ranked_pages_cost_the_same_queries_for_3_or_30_threads(client, url):
    general = f.board("general")

    def queries() -> int:
        from django.core.cache import caches

        caches["default"].clear()
        from forum.services.versions import versions_bump_all

        versions_bump_all()
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    for i in range(3):
        f.thread(general, title=f"t{i}", secret=nostr.generate_secret_key())
    few = queries()
    for i in range(27):
        f.thread(general, title=f"u{i}", secret=nostr.generate_secret_key())
    assert queries() == few
    # (the board,) a count, the rows: the rank is a stored column, read in index order.
    assert few == (3 if url.startswith("/b/") else 2)
