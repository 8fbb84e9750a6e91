"""Counts read as English: "1 reply", "1 sat", "1 rejection today", never "0 replies" above
"No replies yet"."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from forum.permissions import MODERATOR_GROUP
from tests.forum.moderation.conftest import (
    make_author,
    make_board,
    make_rejection,
    make_reply,
    make_thread,
)
from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


def _text(html: str) -> str:
    """What a reader sees: tags, hidden elements and runs of whitespace gone."""
    html = re.sub(r"<(\w+)[^>]*\shidden[\s>][\s\S]*?</\1>", " ", html)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def test_a_thread_without_replies_says_so_once(client):
    _, root = f.thread(f.board("general"), title="Quiet")
    text = _text(client.get(reverse("thread", args=[root.id])).content.decode())
    assert "No replies yet." in text
    assert "0 replies" not in text


def test_one_reply_is_a_reply(client):
    thread, root = f.thread(f.board("general"), title="One")
    f.replies(thread, root, 1)
    text = _text(client.get(reverse("thread", args=[root.id])).content.decode())
    assert "1 reply" in text and "1 replies" not in text
    assert "No replies yet" not in text
    f.replies(thread, root, 1)
    text = _text(client.get(reverse("thread", args=[root.id])).content.decode())
    assert "2 replies" in text


@pytest.fixture
def moderator_client(client):
    user = User.objects.create_user("mod", password="correct horse battery")
    user.groups.add(Group.objects.get_or_create(name=MODERATOR_GROUP)[0])
    client.force_login(user)
    return client


def test_the_console_counts_one_as_one(moderator_client):
    board = make_board(thread_price_msat=1_000, reply_price_msat=1_000)
    author = make_author()
    thread = make_thread(author=author, board=board)
    make_reply(author=author, thread=thread)
    make_rejection(board=board, pubkey=author.pubkey, amount_msat=1_000)

    home = _text(moderator_client.get(reverse("mod:home")).content.decode())
    assert "1 rejection kept today" in home and "1 rejections" not in home
    boards = _text(moderator_client.get(reverse("mod:boards")).content.decode())
    assert "1 sat" in boards and "1 sats" not in boards
    person = _text(
        moderator_client.get(reverse("mod:author", args=[author.pubkey])).content.decode()
    )
    assert "1 visible thread," in person and "1 visible reply" in person
    assert "1 visible replies" not in person
    assert re.search(r"\b3 sats paid\b", person)  # thread + reply + rejected payment
    page = _text(moderator_client.get(reverse("mod:thread", args=[thread.pk])).content.decode())
    assert "1 visible reply" in page and "1 sats" not in page
