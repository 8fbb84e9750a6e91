"""End to end: a signed post paid by keysend over simnet's gRPC becomes a visible thread/post."""

from __future__ import annotations

import threading
import time

import pytest

from forum import nostr
from forum.ingest.listener import Listener
from forum.models import Event, LedgerEntry, Post, Thread
from forum.tasks import recorded_handle

pytestmark = pytest.mark.django_db(transaction=True)


def test_thread_and_reply_through_the_listener(forum_node, board, alice_key, bob_key):
    from forum import protocol

    forum_node.cursor_to_now()
    # Something settled before the listener starts: caught up by ListInvoices, not the stream.
    donation = forum_node.keysend({}, 1_000)
    listener = Listener(
        client=forum_node.client,
        node_pubkey=forum_node.pubkey,
        on_recorded=recorded_handle,
        lease_seconds=5,
    )
    stop = threading.Event()
    runner = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    runner.start()
    try:
        thread_ev = nostr.thread_event(alice_key, board="general", title="Hello", content="first!")
        forum_node.keysend(protocol.encode_event(thread_ev), 10_000)
        reply_ev = nostr.reply_event(bob_key, board="general", root=thread_ev, content="welcome")
        forum_node.keysend(protocol.encode_event(reply_ev), 2_000, sender="bob")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not Post.objects.exists():
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(timeout=10)
    thread = Thread.objects.get(event__event_id=thread_ev.id)
    assert thread.title == "Hello" and thread.reply_count == 1
    post = Post.objects.get(event__event_id=reply_ev.id)
    assert post.thread == thread and post.number == 1 and post.content == "welcome"
    assert Event.objects.filter(state=Event.State.PUBLISHED).count() == 2
    assert LedgerEntry.objects.filter(reconcile_state="done").count() == 3
    assert LedgerEntry.objects.get(payment_hash=donation.payment_hash).purpose == "other"
    board.refresh_from_db()
    assert (board.thread_count, board.post_count) == (1, 2)
