"""Console pages render for moderators and change state only through POST."""

from __future__ import annotations

import pytest
from django.urls import reverse

from forum.models import Ban, Board, ModerationAction, Post, Thread
from tests.forum.moderation.conftest import make_rejection, node_pubkey

pytestmark = pytest.mark.django_db


@pytest.fixture
def mod_client(client, moderator):
    client.force_login(moderator)
    return client


def test_pages_render(mod_client, forum):
    rejection = make_rejection(board=forum.board, pubkey=forum.bob.pubkey, ln_node=node_pubkey())
    pages = [
        reverse("mod:home"),
        reverse("mod:home") + f"?board=general&author={forum.bob.pubkey[:8]}&q=reply",
        reverse("mod:thread", args=[forum.thread.pk]),
        reverse("mod:author", args=[forum.bob.pubkey]),
        reverse("mod:bans"),
        reverse("mod:boards"),
        reverse("mod:board-create"),
        reverse("mod:board-edit", args=["general"]),
        reverse("mod:rejections"),
        reverse("mod:rejections") + "?refundable=1&reason=banned",
        reverse("mod:revenue"),
        reverse("mod:revenue") + "?start=2026-01-01&end=2026-01-31&board=general",
        reverse("mod:audit"),
    ]
    for url in pages:
        response = mod_client.get(url)
        assert response.status_code == 200, url
    body = mod_client.get(reverse("mod:rejections")).content.decode()
    assert reverse("mod:rejection-refund", args=[rejection.pk]) in body


def test_queue_search_by_text_and_author(mod_client, forum):
    url = reverse("mod:home")
    body = mod_client.get(url, {"q": "reply 2"}).content.decode()
    assert "reply 2" in body and "reply 1" not in body
    body = mod_client.get(url, {"author": forum.alice.pubkey}).content.decode()
    assert "reply 0" not in body and forum.thread.title in body


def test_hide_by_post_redirects_back(mod_client, forum):
    post = forum.replies[0]
    back = reverse("mod:home") + "?q=reply"
    response = mod_client.post(
        reverse("mod:post-hide", args=[post.pk]), {"reason": "spam", "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    assert Post.objects.get(pk=post.pk).is_hidden
    # An outside `next` is ignored.
    response = mod_client.post(
        reverse("mod:post-unhide", args=[post.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("mod:thread", args=[forum.thread.pk])


def test_get_never_changes_state(mod_client, forum):
    for name in ("mod:thread-hide", "mod:thread-lock", "mod:thread-pin"):
        assert mod_client.get(reverse(name, args=[forum.thread.pk])).status_code == 405
    assert mod_client.get(reverse("mod:author-ban", args=[forum.bob.pubkey])).status_code == 405
    thread = Thread.objects.get(pk=forum.thread.pk)
    assert not (thread.is_hidden or thread.is_locked or thread.is_pinned)
    assert not Ban.objects.exists() and not ModerationAction.objects.exists()


def test_thread_buttons(mod_client, forum):
    for verb in ("lock", "pin", "hide"):
        mod_client.post(reverse(f"mod:thread-{verb}", args=[forum.thread.pk]))
    thread = Thread.objects.get(pk=forum.thread.pk)
    assert thread.is_locked and thread.is_pinned and thread.is_hidden
    assert ModerationAction.objects.count() == 3


def test_board_form_in_sats(mod_client, forum):
    url = reverse("mod:board-edit", args=["general"])
    form = mod_client.get(url).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(thread_price_msat="25.5", reply_price_msat="2", reason="spam wave")
    data["is_listed"] = "on"
    response = mod_client.post(url, data)
    assert response.status_code == 302, response.context and response.context["form"].errors
    board = Board.objects.get(slug="general")
    assert (board.thread_price_msat, board.reply_price_msat) == (25_500, 2_000)
    assert ModerationAction.objects.get().reason == "spam wave"


def test_board_create_form(mod_client):
    data = {
        "slug": "market",
        "title": "Market",
        "description": "",
        "thread_price_msat": "10",
        "reply_price_msat": "1",
        "escalation_window_seconds": "600",
        "escalation_factor": "2",
        "max_content_length": "5000",
        "position": "0",
        "is_listed": "on",
    }
    assert mod_client.post(reverse("mod:board-create"), data).status_code == 302
    assert Board.objects.get(slug="market").thread_price_msat == 10_000
    response = mod_client.post(reverse("mod:board-create"), data)
    assert response.status_code == 200 and "exists" in response.content.decode()


def test_revenue_csv(mod_client, forum):
    response = mod_client.get(reverse("mod:revenue-csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("group,key,received_msat")
    assert lines[-1].startswith("total,total,")
    total = int(lines[-1].split(",")[2])
    assert total == 10_000 + 3 * 1_000  # the thread and three replies, all today


def test_revenue_page_has_a_chart(mod_client, forum):
    body = mod_client.get(reverse("mod:revenue")).content.decode()
    assert "<svg" in body and 'class="bar"' in body


def test_audit_details_read_as_changes(mod_client, forum):
    from forum.services import moderation

    moderation.board_update(actor=None, board=forum.board, reply_price_msat=9_000)
    body = mod_client.get(reverse("mod:audit")).content.decode()
    assert "reply_price_msat: 1000 → 9000" in body and "system" in body


def test_revenue_form_shows_the_default_range(mod_client):
    form = mod_client.get(reverse("mod:revenue")).context["form"]
    assert form.initial["start"] and form.initial["end"]


def test_console_pages_are_not_cached(mod_client):
    response = mod_client.get(reverse("mod:home"))
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_queue_finds_an_author_by_npub(mod_client, forum):
    from forum import nostr

    body = mod_client.get(reverse("mod:home"), {"author": nostr.npub_encode(forum.bob.pubkey)})
    text = body.content.decode()
    assert "reply 0" in text and forum.thread.title not in text.split("Newest replies")[0]
    bad = mod_client.get(reverse("mod:home"), {"author": "npub1nonsense"})
    assert bad.status_code == 200 and "does not decode" in bad.content.decode()
