"""Console pages run a fixed number of queries however many rows they list (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from forum.services import moderation
from tests.forum.moderation.conftest import (
    make_author,
    make_rejection,
    make_reply,
    make_thread,
    node_pubkey,
)

pytestmark = pytest.mark.django_db

PAGES = ["home", "rejections", "audit", "revenue", "bans", "boards"]


def grow(forum, moderator, n: int) -> None:
    for _ in range(n):
        author = make_author()
        thread = make_thread(author=author, board=forum.board)
        make_reply(author=author, thread=thread)
        make_rejection(board=forum.board, pubkey=author.pubkey, ln_node=node_pubkey())
        moderation.author_ban(actor=moderator, pubkey=author.pubkey, reason="x")
        moderation.thread_pin(actor=moderator, thread=thread)


def counts(client, urls: list[str]) -> dict[str, int]:
    result = {}
    for url in urls:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        result[url] = len(ctx.captured_queries)
    return result


def test_pages_do_not_grow_with_rows(client, moderator, forum):
    client.force_login(moderator)
    urls = [reverse(f"mod:{name}") for name in PAGES]
    urls += [
        reverse("mod:thread", args=[forum.thread.pk]),
        reverse("mod:author", args=[forum.bob.pubkey]),
    ]
    grow(forum, moderator, 2)
    for _ in range(3):
        make_reply(author=forum.bob, thread=forum.thread)
    make_rejection(board=forum.board, pubkey=forum.bob.pubkey, ln_node=node_pubkey())
    before = counts(client, urls)
    grow(forum, moderator, 6)
    for _ in range(5):
        make_reply(author=forum.bob, thread=forum.thread)
    make_rejection(board=forum.board, pubkey=forum.bob.pubkey, ln_node=node_pubkey())
    assert counts(client, urls) == before
    assert max(before.values()) <= 15, before
