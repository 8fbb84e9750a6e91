"""Hold mode and the side kinds: a profile, deletion or edit the one verdict refuses is cancelled
on the node (nothing charged, the attempt on record with its reason); a valid one settles."""

from __future__ import annotations

import json

import pytest

from forum import nostr, protocol
from forum.models import Author, Board, Event, Post, SiteSettings
from forum.services.moderation.boards import board_update
from tests.forum.hold.conftest import Hold, wait_for
from tests.forum.hold.test_single import assert_cancelled

pytestmark = pytest.mark.django_db(transaction=True)

PROFILE_MSAT = SiteSettings().profile_price_msat
DELETION_MSAT = SiteSettings().deletion_price_msat


def published(event_id: str) -> bool:
    return Event.objects.filter(event_id=event_id, state="published").exists()


@pytest.fixture
def reply(listening: Hold, board, bob_key) -> nostr.Event:
    thread = nostr.thread_event(bob_key, board="general", title="root", content="c")
    assert listening.result(listening.post(thread, 100_000, sender="bob")).succeeded
    wait_for(lambda: published(thread.id), what="the thread")
    reply = nostr.reply_event(bob_key, board="general", root=thread, content="mine")
    assert listening.result(listening.post(reply, 100_000, sender="bob")).succeeded
    wait_for(lambda: published(reply.id), what="the reply")
    return reply


def test_unreadable_profile_is_cancelled_uncharged(listening: Hold, board, alice_key):
    bad = nostr.sign_event(alice_key, kind=0, tags=[], content="[1, 2]")
    rejection = assert_cancelled(listening, protocol.encode_event(bad), PROFILE_MSAT, "malformed")
    assert "JSON object" in rejection.message
    good = nostr.sign_event(alice_key, kind=0, tags=[], content=json.dumps({"name": "Al"}))
    assert listening.result(listening.post(good, PROFILE_MSAT)).succeeded
    wait_for(lambda: Author.objects.filter(pubkey=good.pubkey, profile_name="Al").exists())


def test_deleting_someone_elses_post_is_cancelled_uncharged(listening: Hold, reply, alice_key):
    attempt = nostr.sign_event(alice_key, kind=5, tags=[["e", reply.id]], content="")
    records = protocol.encode_event(attempt)
    rejection = assert_cancelled(listening, records, DELETION_MSAT, "not_author")
    assert "only its author may delete it" in rejection.message
    assert not Post.objects.get(event__event_id=reply.id).is_hidden


def test_deletion_on_a_board_that_forbids_it_is_cancelled_uncharged(
    listening: Hold, reply, bob_key
):
    board_update(actor=None, board=Board.objects.get(slug="general"), allow_deletions=False)
    attempt = nostr.sign_event(bob_key, kind=5, tags=[["e", reply.id]], content="")
    records = protocol.encode_event(attempt)
    assert_cancelled(listening, records, DELETION_MSAT, "deletions_off", sender="bob")
    assert not Post.objects.get(event__event_id=reply.id).is_hidden


def test_own_deletion_settles_and_hides_the_post(listening: Hold, reply, bob_key):
    deletion = nostr.sign_event(bob_key, kind=5, tags=[["e", reply.id]], content="")
    assert listening.result(listening.post(deletion, DELETION_MSAT, sender="bob")).succeeded
    wait_for(lambda: Post.objects.get(event__event_id=reply.id).is_hidden, what="the deletion")
