"""Hold mode refuses, uncharged, what could never be published or may not be now: replies whose
root is a reply or whose parent is in another thread, replies and tips to hidden threads and
posts, events dated far from now, an unknown protocol version. A reply whose thread or parent
is not known yet is held while it may still arrive, and cancelled (not charged) before the
node's hold time runs out if it does not."""

from __future__ import annotations

import time

import pytest

from forum import nostr, protocol
from forum.models import Event, LedgerEntry, Post, Rejection, Thread
from forum.services.moderation.hide import post_hide, thread_hide
from tests.forum.hold.conftest import Hold, wait_for
from tests.forum.hold.test_single import assert_cancelled

pytestmark = pytest.mark.django_db(transaction=True)

R = protocol.RECORD_TYPES
CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def published(event_id: str) -> bool:
    return Event.objects.filter(event_id=event_id, state="published").exists()


def post_thread(hold: Hold, key: str, title: str = "root") -> nostr.Event:
    thread = nostr.thread_event(key, board="general", title=title, content="c")
    # Paid generously: the same author's later posts cost more (escalation), not the point here.
    assert hold.result(hold.post(thread, 100_000, sender="bob")).succeeded
    wait_for(lambda: published(thread.id), what="the thread")
    return thread


def post_reply(hold: Hold, key: str, root: nostr.Event, **kw) -> nostr.Event:
    reply = nostr.reply_event(key, board="general", root=root, content="r", **kw)
    assert hold.result(hold.post(reply, 100_000, sender="bob")).succeeded
    wait_for(lambda: published(reply.id), what="the reply")
    return reply


def reply_with_refs(key: str, *, root_id: str, parent_id: str, parent_kind: int) -> nostr.Event:
    """A kind 1111 event whose tags claim any root and parent (its tags are well formed)."""
    tags = [
        ["E", root_id, "", ""],
        ["K", "11"],
        ["e", parent_id, "", ""],
        ["k", str(parent_kind)],
        ["h", "general"],
    ]
    return nostr.sign_event(key, kind=nostr.KIND_REPLY, tags=tags, content="never valid")


# --- replies that can never be published -------------------------------------------------


def test_reply_whose_root_is_a_reply_is_cancelled(listening: Hold, board, alice_key, bob_key):
    root = post_thread(listening, bob_key)
    reply = post_reply(listening, bob_key, root)
    bad = reply_with_refs(alice_key, root_id=reply.id, parent_id=reply.id, parent_kind=11)
    rejection = assert_cancelled(listening, protocol.encode_event(bad), 2_000, "malformed")
    assert "not a thread" in rejection.message


def test_reply_whose_parent_is_in_another_thread_is_cancelled(
    listening: Hold, board, alice_key, bob_key
):
    first, second = post_thread(listening, bob_key, "one"), post_thread(listening, bob_key, "two")
    elsewhere = post_reply(listening, bob_key, second)
    bad = reply_with_refs(alice_key, root_id=first.id, parent_id=elsewhere.id, parent_kind=1111)
    rejection = assert_cancelled(listening, protocol.encode_event(bad), 2_000, "malformed")
    assert "another thread" in rejection.message


def test_reply_whose_parent_is_another_thread_is_cancelled(
    listening: Hold, board, alice_key, bob_key
):
    first, second = post_thread(listening, bob_key, "one"), post_thread(listening, bob_key, "two")
    bad = reply_with_refs(alice_key, root_id=first.id, parent_id=second.id, parent_kind=1111)
    rejection = assert_cancelled(listening, protocol.encode_event(bad), 2_000, "malformed")
    assert "not a reply" in rejection.message


# --- replies whose thread or parent is unknown ----------------------------------------------


def test_reply_to_an_unknown_thread_is_held_then_cancelled_uncharged(
    hold: Hold, board, alice_key, bob_key
):
    hold.set_hold_seconds(4)  # the forum gives up ~1.3 s before the node would
    hold.start_listener()
    missing = nostr.thread_event(bob_key, board="general", title="never sent", content="c")
    reply = nostr.reply_event(alice_key, board="general", root=missing, content="hello?")
    started = time.monotonic()
    rejection = assert_cancelled(hold, protocol.encode_event(reply), 2_000, "orphan_timeout")
    # Held a while (the forum gives up at hold time - margin after the node's accept time, which
    # is whole seconds, so up to a second earlier than our clock), cancelled by the forum
    # before the node's own 4 s.
    assert 1 < time.monotonic() - started < 4
    assert "did not arrive while the payment was held" in rejection.message
    assert not Event.objects.filter(event_id=reply.id).exists()


def test_multipart_reply_to_an_unknown_parent_is_cancelled_uncharged(
    hold: Hold, board, alice_key, bob_key
):
    hold.set_hold_seconds(4)
    hold.start_listener()
    root = post_thread(hold, bob_key)
    missing = nostr.reply_event(bob_key, board="general", root=root, content="never sent")
    reply = nostr.reply_event(
        alice_key, board="general", root=root, parent=missing, content="word " * 120
    )
    data = protocol.pack_event(reply)
    half = -(-len(data) // 2)
    parts = [protocol.encode_part(reply.id, i, 2, data[i * half : (i + 1) * half]) for i in (0, 1)]
    before = hold.balances_msat("alice")
    payments = [hold.result(f) for f in [hold.pay(p, 1_000) for p in parts]]
    assert all(p.failure_reason == CANCELED for p in payments)
    assert hold.balances_msat("alice") == before
    reasons = Rejection.objects.filter(event_ref=reply.id).values_list("reason", flat=True)
    assert list(reasons) == ["orphan_timeout"] * 2
    assert not LedgerEntry.objects.filter(event_id=reply.id, status="settled").exists()


def test_reply_sent_just_before_its_thread_waits_for_it_and_settles(
    listening: Hold, board, alice_key, bob_key
):
    root = nostr.thread_event(bob_key, board="general", title="late root", content="c")
    reply = nostr.reply_event(alice_key, board="general", root=root, content="first!")
    reply_payment = listening.post(reply, 2_000)
    listening.wait_held(1)
    time.sleep(0.5)  # a few scans: the reply is still held, not cancelled
    assert not reply_payment.done()
    assert listening.result(listening.post(root, 10_000, sender="bob")).succeeded
    assert listening.result(reply_payment).succeeded
    wait_for(lambda: published(reply.id), what="the reply")
    assert not Rejection.objects.exists()


# --- hidden threads and posts ---------------------------------------------------------------


def test_reply_and_tip_to_a_hidden_thread_are_cancelled(listening: Hold, board, alice_key, bob_key):
    root = post_thread(listening, bob_key)
    thread_hide(actor=None, thread=Thread.objects.get(event__event_id=root.id))
    reply = nostr.reply_event(alice_key, board="general", root=root, content="psst")
    rejection = assert_cancelled(listening, protocol.encode_event(reply), 2_000, "target_hidden")
    assert rejection.message.startswith("blocked: the thread is hidden")
    assert_cancelled(listening, protocol.encode_tip(root.id), 5_000, "target_hidden")


def test_reply_and_tip_to_a_hidden_post_are_cancelled(listening: Hold, board, alice_key, bob_key):
    root = post_thread(listening, bob_key)
    hidden = post_reply(listening, bob_key, root)
    post_hide(actor=None, post=Post.objects.get(event__event_id=hidden.id))
    reply = nostr.reply_event(alice_key, board="general", root=root, parent=hidden, content="x")
    assert_cancelled(listening, protocol.encode_event(reply), 2_000, "target_hidden")
    assert_cancelled(listening, protocol.encode_tip(hidden.id), 5_000, "target_hidden")
    # The thread itself is visible: it still takes replies and tips.
    assert listening.result(listening.pay(protocol.encode_tip(root.id), 5_000)).succeeded


# --- dates and versions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "words"),
    [(None, "ahead of"), (16 * 60, "minutes ahead of"), (-25 * 3600, "25 hours behind")],
    ids=["max-uint32", "16-minutes-ahead", "25-hours-behind"],
)
def test_created_at_far_from_now_is_cancelled(listening: Hold, board, alice_key, offset, words):
    created_at = 4294967295 if offset is None else int(time.time()) + offset
    event = nostr.thread_event(
        alice_key, board="general", title="t", content="c", created_at=created_at
    )
    rejection = assert_cancelled(listening, protocol.encode_event(event), 10_000, "bad_created_at")
    assert words in rejection.message


@pytest.mark.parametrize("offset", [14 * 60, -23 * 3600])
def test_created_at_inside_the_window_settles(listening: Hold, board, alice_key, offset):
    event = nostr.thread_event(
        alice_key, board="general", title="t", content="c", created_at=int(time.time()) + offset
    )
    assert listening.result(listening.post(event, 10_000)).succeeded
    wait_for(lambda: published(event.id), what="the thread")


def test_unknown_protocol_version_is_cancelled_as_unsupported_version(
    listening: Hold, board, alice_key
):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    records = protocol.encode_event(event) | {R["version"]: b"2"}
    rejection = assert_cancelled(listening, records, 10_000, "unsupported_version")
    assert "version 2 is not supported" in rejection.message
