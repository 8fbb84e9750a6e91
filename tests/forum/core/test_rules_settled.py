"""The posting rules on the settle-then-reconcile path (no hold mode): what hold mode refuses
uncharged is a rejection here, with a reason, kept on record and refundable; never a post that
waits forever or a tip to something nobody can see."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest

from forum import nostr, protocol
from forum.models import Event, LedgerEntry, Post, Thread
from forum.services.moderation.hide import post_hide, thread_hide
from tests.conftest import record_invoice
from tests.forum.core.test_rejections import assert_rejected

pytestmark = pytest.mark.django_db(transaction=True)

R = protocol.RECORD_TYPES


def published(event_id: str) -> bool:
    return Event.objects.filter(event_id=event_id, state="published").exists()


@pytest.fixture
def root(poster, board, bob_key) -> nostr.Event:
    thread = nostr.thread_event(bob_key, board="general", title="root", content="c")
    poster.post(thread, 10_000, sender="bob")
    assert published(thread.id)
    return thread


def reply_with_refs(key: str, *, root_id: str, parent_id: str, parent_kind: int) -> nostr.Event:
    tags = [
        ["E", root_id, "", ""],
        ["K", "11"],
        ["e", parent_id, "", ""],
        ["k", str(parent_kind)],
        ["h", "general"],
    ]
    return nostr.sign_event(key, kind=nostr.KIND_REPLY, tags=tags, content="never valid")


def test_reply_whose_root_is_a_reply_is_rejected_not_left_waiting(poster, root, alice_key, bob_key):
    reply = nostr.reply_event(bob_key, board="general", root=root, content="r")
    poster.post(reply, 10_000, sender="bob")
    bad = reply_with_refs(alice_key, root_id=reply.id, parent_id=reply.id, parent_kind=11)
    rejection = assert_rejected(poster.post(bad, 2_000), "malformed", "invalid")
    assert "not a thread" in rejection.message
    assert Event.objects.get(event_id=bad.id).state == "rejected"


def test_reply_whose_parent_is_in_another_thread_is_rejected(poster, root, board, alice_key):
    other = nostr.thread_event(alice_key, board="general", title="other", content="c")
    poster.post(other, 10_000)
    elsewhere = nostr.reply_event(alice_key, board="general", root=other, content="r")
    poster.post(elsewhere, 100_000)
    assert published(elsewhere.id)
    bad = reply_with_refs(alice_key, root_id=root.id, parent_id=elsewhere.id, parent_kind=1111)
    rejection = assert_rejected(poster.post(bad, 100_000), "malformed", "invalid")
    assert "another thread" in rejection.message


def test_reply_to_a_hidden_thread_is_rejected(poster, root, alice_key):
    thread_hide(actor=None, thread=Thread.objects.get(event__event_id=root.id))
    reply = nostr.reply_event(alice_key, board="general", root=root, content="psst")
    rejection = assert_rejected(poster.post(reply, 2_000), "target_hidden", "blocked")
    assert "the thread is hidden by a moderator" in rejection.message
    assert not Post.objects.filter(event__event_id=reply.id).exists()


def test_reply_to_a_hidden_post_is_rejected(poster, root, alice_key, bob_key):
    parent = nostr.reply_event(bob_key, board="general", root=root, content="r")
    poster.post(parent, 10_000, sender="bob")
    post_hide(actor=None, post=Post.objects.get(event__event_id=parent.id))
    reply = nostr.reply_event(alice_key, board="general", root=root, parent=parent, content="x")
    assert_rejected(poster.post(reply, 2_000), "target_hidden", "blocked")


def test_tips_to_hidden_threads_and_posts_are_rejected(poster, root, bob_key):
    parent = nostr.reply_event(bob_key, board="general", root=root, content="r")
    poster.post(parent, 10_000, sender="bob")
    post_hide(actor=None, post=Post.objects.get(event__event_id=parent.id))
    hidden_post_tip = poster.pay(protocol.encode_tip(parent.id), 5_000)
    assert_rejected(hidden_post_tip, "target_hidden", "blocked")
    # A visible thread takes tips; once hidden, neither it nor its replies do.
    assert not poster.pay(protocol.encode_tip(root.id), 5_000).rejections.exists()
    thread = Thread.objects.get(event__event_id=root.id)
    thread_hide(actor=None, thread=thread)
    assert_rejected(poster.pay(protocol.encode_tip(root.id), 5_000), "target_hidden", "blocked")
    assert Thread.objects.get(pk=thread.pk).sats_msat == thread.sats_msat  # the tip not added


@pytest.mark.parametrize("ahead", [None, 16 * 60], ids=["max-uint32", "16-minutes"])
def test_created_at_ahead_of_the_settle_time_is_rejected(poster, board, alice_key, ahead):
    created_at = 4294967295 if ahead is None else int(time.time()) + ahead
    event = nostr.thread_event(
        alice_key, board="general", title="t", content="c", created_at=created_at
    )
    rejection = assert_rejected(poster.post(event, 10_000), "bad_created_at", "invalid")
    assert "ahead of the payment" in rejection.message
    assert not published(event.id)


def test_created_at_a_day_behind_the_settle_time_is_rejected(poster, board, alice_key):
    event = nostr.thread_event(
        alice_key, board="general", title="t", content="c", created_at=int(time.time()) - 90_000
    )
    rejection = assert_rejected(poster.post(event, 10_000), "bad_created_at", "invalid")
    assert "25 hours behind" in rejection.message


def test_created_at_is_judged_at_the_settle_time_not_when_reconciled(
    poster, forum_node, board, alice_key
):
    """A payment settled two days ago for an event signed just before it is reconciled now
    (a backlog, a rebuild): accepted, as it was when it settled."""
    settled = int(time.time()) - 2 * 86400
    event = nostr.thread_event(
        alice_key, board="general", title="t", content="c", created_at=settled - 60
    )
    invoice = poster.pay(protocol.encode_event(event), 10_000, record=False)
    then = dataclasses.replace(invoice, settle_date=settled)
    entry, _ = record_invoice(then, node_pubkey=forum_node.pubkey)
    entry.refresh_from_db()
    assert entry.settled_at == datetime.fromtimestamp(settled, tz=UTC)
    assert published(event.id)


def test_unknown_protocol_version_is_unsupported_version(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    entry = poster.pay(protocol.encode_event(event) | {R["version"]: b"2"}, 10_000)
    rejection = assert_rejected(entry, "unsupported_version", "invalid")
    assert "version 2 is not supported" in rejection.message
    assert entry.status == LedgerEntry.Status.SETTLED  # charged, refundable like any rejection
