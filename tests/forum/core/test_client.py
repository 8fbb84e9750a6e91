"""The node runner's client: sign, quote, split, keysend through "their" lnd, follow the status."""

from __future__ import annotations

import threading

import pytest

from forum import client as forum_client
from forum import nostr
from forum.ingest.listener import Listener
from forum.models import MessagePart, Post, Thread
from forum.tasks import recorded_handle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def running_listener(forum_node):
    forum_node.cursor_to_now()
    forum_node.keysend({}, 1_000)  # start from a settled index, not 0 (no-backlog)
    listener = Listener(
        client=forum_node.client,
        node_pubkey=forum_node.pubkey,
        on_recorded=recorded_handle,
        lease_seconds=5,
    )
    stop = threading.Event()
    runner = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    runner.start()
    yield listener
    stop.set()
    runner.join(10)


def test_split_amount_covers_the_price():
    assert forum_client.split_amount_msat(10_500, 3) == [4_000, 4_000, 3_000]
    assert sum(forum_client.split_amount_msat(1_000, 4)) == 4_000  # at least 1 sat each


def test_post_thread_multipart_and_reply(
    live_server, simnet, board, running_listener, tmp_path, capsys
):
    key_file = tmp_path / "key"
    assert forum_client.main(["keygen", "--key-file", str(key_file)]) == 0
    node = ["--lndconnect", simnet.nodes["bob"].lndconnect_uri(), "--forum-url", live_server.url]
    long_text = "A long opening post. " * 150  # > one onion on 3 hops
    code = forum_client.main(
        ["post", "--board", "general", "--title", "Big", "--content", long_text,
         "--key-file", str(key_file), "--wait-seconds", "20", *node]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    thread = Thread.objects.get()
    assert thread.content == long_text and "status: published" in out
    assert MessagePart.objects.filter(event_id=thread.event.event_id).count() > 1
    code = forum_client.main(
        ["post", "--board", "general", "--reply-to", thread.event.event_id, "--content", "me too",
         "--key-file", str(key_file), "--wait-seconds", "20", *node]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    post = Post.objects.get()
    assert post.thread == thread and post.content == "me too"
    assert post.event.pubkey == nostr.public_key(key_file.read_text().strip())


def test_underpaid_then_topup(live_server, simnet, board, running_listener, tmp_path, capsys):
    key_file = tmp_path / "key"
    forum_client.main(["keygen", "--key-file", str(key_file)])
    node = ["--lndconnect", simnet.nodes["alice"].lndconnect_uri(), "--forum-url", live_server.url]
    code = forum_client.main(
        ["post", "--board", "general", "--title", "t", "--content", "c", "--amount-sats", "4",
         "--key-file", str(key_file), "--wait-seconds", "20", *node]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 2 and "Top up 6 sats" in out, out
    event_id = out.split("event ")[1].split(":")[0]
    code = forum_client.main(
        ["topup", "--event-id", event_id, "--amount-sats", "6", "--wait-seconds", "20", *node]
    )
    assert code == 0, capsys.readouterr().out
    assert Thread.objects.get().event.event_id == event_id
