"""Profiles (kind 0), deletions (kind 5, NIP-09) and edits (kind 1010) paid by keysend: what a
reader sees on the pages and what a Nostr client gets from /relay."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from django.db.models import F

from forum import nostr
from forum.models import Author, Board, Event, ModerationAction, Post, SiteSettings, Thread
from forum.relay import selectors
from forum.relay.filters import parse_filter
from forum.templatetags.forum_tags import thread_url
from tests.forum.core.test_rejections import assert_rejected

pytestmark = pytest.mark.django_db(transaction=True)

PROFILE_MSAT = SiteSettings().profile_price_msat
DELETION_MSAT = SiteSettings().deletion_price_msat
EDIT_MSAT = SiteSettings().edit_price_msat


def profile_event(key: str, created_at: int | None = None, **fields: str) -> nostr.Event:
    return nostr.sign_event(
        key, kind=nostr.KIND_PROFILE, tags=[], content=json.dumps(fields), created_at=created_at
    )


def deletion_event(key: str, *targets: str) -> nostr.Event:
    tags = [["e", t] for t in targets] + [["k", "1111"]]
    return nostr.sign_event(key, kind=nostr.KIND_DELETION, tags=tags, content="oops")


def edit_event(key: str, target: str, content: str, *, created_at: int | None = None, **extra):
    tags = [["e", target]] + [[name, value] for name, value in extra.items()]
    return nostr.sign_event(
        key, kind=nostr.KIND_EDIT, tags=tags, content=content, created_at=created_at
    )


def relay_ids(**flt) -> list[str]:
    return [e.id for e in selectors.events_for_filters([(parse_filter(flt), 100)])]


@pytest.fixture
def thread(poster, board, alice_key) -> nostr.Event:
    event = nostr.thread_event(alice_key, board="general", title="Hello", content="first words")
    poster.post(event, 10_000)
    return event


@pytest.fixture
def reply(poster, thread, alice_key) -> nostr.Event:
    event = nostr.reply_event(alice_key, board="general", root=thread, content="a reply to delete")
    poster.post(event, 10_000)  # a second post on the board: the escalated price
    assert Post.objects.filter(event__event_id=event.id).exists()
    return event


# --- kind 0 ---------------------------------------------------------------------------------


def test_profile_paid_by_keysend_names_the_author_on_pages_and_relay(
    client, poster, thread, alice_key
):
    pubkey = nostr.public_key(alice_key)
    profile = profile_event(
        alice_key, name="Alice", about="I write here", picture="https://img.example/a.png"
    )
    poster.post(profile, PROFILE_MSAT)
    assert Event.objects.get(event_id=profile.id).state == "published"

    page = client.get(thread_url(thread.id)).content.decode()
    assert ">Alice</a>" in page  # the byline, with the npub as its title
    assert f'title="{nostr.npub_encode(pubkey)}"' in page
    board_page = client.get("/b/general/").content.decode()
    assert "Alice" in board_page
    author_page = client.get(f"/a/{pubkey}/").content.decode()
    assert "I write here" in author_page
    assert 'href="https://img.example/a.png"' in author_page
    assert '<img src="https://img.example' not in author_page  # never hot-linked
    assert relay_ids(kinds=[0], authors=[pubkey]) == [profile.id]
    assert json.loads(client.get(f"/e/{profile.id}.json").content)["id"] == profile.id


def test_newest_profile_wins_whatever_the_payment_order(poster, board, alice_key):
    pubkey = nostr.public_key(alice_key)
    now = int(time.time())
    newer = profile_event(alice_key, created_at=now, name="New")
    older = profile_event(alice_key, created_at=now - 60, name="Old")
    poster.post(newer, PROFILE_MSAT)
    poster.post(older, PROFILE_MSAT)  # paid later, signed earlier
    author = Author.objects.get(pubkey=pubkey)
    assert author.profile_name == "New"
    assert relay_ids(kinds=[0]) == [newer.id]  # a replaceable event: only the newest is served


def test_alias_set_by_a_moderator_comes_before_the_profile_name(client, poster, thread, alice_key):
    pubkey = nostr.public_key(alice_key)
    poster.post(profile_event(alice_key, name="Alice"), PROFILE_MSAT)
    Author.objects.filter(pubkey=pubkey).update(alias="Moderated")
    from forum.services.versions import versions_reset_now

    versions_reset_now()
    page = client.get(thread_url(thread.id)).content.decode()
    assert ">Moderated</a>" in page


def test_unreadable_profile_is_rejected_with_a_reason(poster, board, alice_key):
    bad = nostr.sign_event(alice_key, kind=0, tags=[], content="not json")
    rejection = assert_rejected(poster.post(bad, PROFILE_MSAT), "malformed", "invalid")
    assert "JSON object" in rejection.message
    script = profile_event(alice_key, name="x", picture="javascript:alert(1)")
    assert_rejected(poster.post(script, PROFILE_MSAT), "malformed", "invalid")
    assert Author.objects.get(pubkey=bad.pubkey).profile_name == ""


def test_underpaid_profile_waits_for_a_top_up(poster, board, alice_key):
    profile = profile_event(alice_key, name="Cheap")
    assert_rejected(poster.post(profile, PROFILE_MSAT - 1000), "underpaid", "rate-limited")
    poster.topup(profile.id, 1000)
    assert Author.objects.get(pubkey=profile.pubkey).profile_name == "Cheap"


# --- kind 5 ---------------------------------------------------------------------------------


def test_deletion_retracts_a_reply_from_the_page_and_the_relay(
    client, poster, thread, reply, alice_key
):
    assert reply.id in relay_ids(kinds=[1111])
    deletion = deletion_event(alice_key, reply.id)
    poster.post(deletion, DELETION_MSAT)

    page = client.get(thread_url(thread.id)).content.decode()
    assert "a reply to delete" not in page
    assert reply.id not in relay_ids(kinds=[1111])
    assert relay_ids(kinds=[5]) == [deletion.id]  # served, so other clients retract it too
    assert relay_ids(**{"kinds": [5], "#e": [reply.id]}) == [deletion.id]
    target = Event.objects.get(event_id=reply.id)
    assert target.deleted_by_ref == deletion.id and target.deleted_at is not None
    assert Thread.objects.get(event__event_id=thread.id).reply_count == 0
    assert Board.objects.get(slug="general").post_count == 1


def test_deleting_a_thread_hides_it_and_its_replies(client, poster, thread, reply, alice_key):
    poster.post(deletion_event(alice_key, thread.id), DELETION_MSAT)
    gone = client.get(thread_url(thread.id))
    assert gone.status_code == 404 and "its author deleted it" in gone.content.decode()
    assert relay_ids(kinds=[11, 1111]) == []
    board = Board.objects.get(slug="general")
    assert (board.thread_count, board.post_count) == (0, 0)


def test_deleting_someone_elses_post_is_refused_and_changes_nothing(
    client, poster, thread, reply, bob_key
):
    attempt = deletion_event(bob_key, reply.id)
    rejection = assert_rejected(poster.post(attempt, DELETION_MSAT), "not_author", "blocked")
    assert "only its author may delete it" in rejection.message
    assert "a reply to delete" in client.get(thread_url(thread.id)).content.decode()
    assert reply.id in relay_ids(kinds=[1111])
    assert attempt.id not in relay_ids(kinds=[5])


def test_board_that_forbids_deletions_refuses_them(poster, thread, reply, alice_key):
    from forum.services.moderation.boards import board_update

    board_update(actor=None, board=Board.objects.get(slug="general"), allow_deletions=False)
    # Settle times are whole seconds: date the change clearly before the payment.
    ModerationAction.objects.filter(action="board.update").update(
        created_at=F("created_at") - timedelta(seconds=2)
    )
    attempt = deletion_event(alice_key, reply.id)
    rejection = assert_rejected(poster.post(attempt, DELETION_MSAT), "deletions_off", "blocked")
    assert "'general' does not let authors delete" in rejection.message
    assert not Post.objects.get(event__event_id=reply.id).is_hidden


# --- kind 1010 ------------------------------------------------------------------------------


def test_edit_shows_the_new_text_with_the_history_one_click_away(
    client, poster, thread, reply, alice_key
):
    page = client.get(thread_url(thread.id)).content.decode()  # caches the reply's card
    assert "a reply to delete" in page
    edit = edit_event(alice_key, reply.id, "a reply, corrected")
    poster.post(edit, EDIT_MSAT)

    page = client.get(thread_url(thread.id)).content.decode()
    assert "a reply, corrected" in page and "a reply to delete" not in page
    history_url = f"/e/{reply.id}/history"
    assert f'href="{history_url}"' in page
    history = client.get(history_url).content.decode()
    assert history.index("a reply, corrected") < history.index("a reply to delete")
    assert re.search(r'signed <time datetime="[^"]+">20\d\d-\d\d-\d\d', history)  # a date
    assert relay_ids(**{"kinds": [1010], "#e": [reply.id]}) == [edit.id]
    assert client.get(f"/e/{reply.id}.json").json()["content"] == "a reply to delete"  # signed


def test_thread_edit_changes_title_and_text(client, poster, thread, alice_key):
    poster.post(edit_event(alice_key, thread.id, "better words", title="Hello again"), EDIT_MSAT)
    page = client.get(thread_url(thread.id)).content.decode()
    assert "Hello again" in page and "better words" in page
    assert "Hello again" in client.get("/b/general/").content.decode()


def test_older_edit_paid_later_does_not_replace_a_newer_one(client, poster, reply, alice_key):
    now = int(time.time())
    poster.post(edit_event(alice_key, reply.id, "second", created_at=now), EDIT_MSAT)
    poster.post(edit_event(alice_key, reply.id, "first", created_at=now - 30), EDIT_MSAT)
    assert Post.objects.get(event__event_id=reply.id).content == "second"


def test_editing_someone_elses_post_is_refused(poster, reply, bob_key):
    attempt = edit_event(bob_key, reply.id, "hijacked")
    assert_rejected(poster.post(attempt, EDIT_MSAT), "not_author", "blocked")
    assert Post.objects.get(event__event_id=reply.id).content == "a reply to delete"


def test_profile_name_is_the_authors_name_in_feeds(client, poster, thread, alice_key):
    poster.post(profile_event(alice_key, name="Feedname"), PROFILE_MSAT)
    feed = client.get("/feed.atom").content.decode()
    assert "<name>Feedname</name>" in feed
