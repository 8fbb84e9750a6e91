"""`rebuild_from_node` reproduces what profiles, deletions and edits did (they are paid events
in the node's history) and keeps the names a moderator gave keys under the forum's domain."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from forum import nostr
from forum.models import Author, Board, Event, Post, SiteSettings, Thread
from forum.services.nip05 import author_nip05_assign
from tests.forum.core.conftest import Poster
from tests.forum.kinds.test_kinds import deletion_event, edit_event

pytestmark = pytest.mark.django_db(transaction=True)


def state() -> dict:
    return {
        "authors": sorted(
            Author.objects.values_list(
                "pubkey", "profile_name", "profile_ref", "reply_count", "thread_count",
                "nip05_local",
            )
        ),
        "posts": sorted(
            Post.objects.values_list("event__event_id", "content", "is_hidden", "edited_ref")
        ),
        "threads": sorted(Thread.objects.values_list("event__event_id", "reply_count", "title")),
        "boards": sorted(Board.objects.values_list("slug", "thread_count", "post_count")),
        "deleted": sorted(
            Event.objects.exclude(deleted_by_ref="").values_list("event_id", "deleted_by_ref")
        ),
    }  # fmt: skip


def test_rebuild_reproduces_profiles_deletions_and_edits(fresh_forum_node, board, alice_key):
    poster = Poster(fresh_forum_node)
    site = SiteSettings()
    profile = nostr.sign_event(alice_key, kind=0, tags=[], content=json.dumps({"name": "A"}))
    poster.post(profile, site.profile_price_msat)
    root = nostr.thread_event(alice_key, board="general", title="T", content="c")
    poster.post(root, 10_000)
    first = nostr.reply_event(alice_key, board="general", root=root, content="one")
    second = nostr.reply_event(alice_key, board="general", root=root, content="two")
    poster.post(first, 100_000)
    poster.post(second, 100_000)
    poster.post(edit_event(alice_key, first.id, "one, edited"), site.edit_price_msat)
    poster.post(deletion_event(alice_key, second.id), site.deletion_price_msat)
    author_nip05_assign(actor=None, pubkey=nostr.public_key(alice_key), name="alice")

    before = state()
    assert before["deleted"] and before["authors"][0][1] == "A"
    call_command("rebuild_from_node", "--yes", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert state() == before
