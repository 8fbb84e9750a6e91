"""RelayConsumer through the real ASGI app with Channels' WebsocketCommunicator: every
answer the relay gives, limits included, message by message."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from config.asgi import application
from forum import nostr, realtime
from forum.relay import selectors
from tests.forum.relay.factories import (
    ALICE,
    feed_payload,
    make_board,
    publish_via_core,
    reply,
    store,
    thread,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

NODE = "02" + "ab" * 32


async def connect(headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/relay", headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def send(communicator: WebsocketCommunicator, message: Any) -> None:
    await communicator.send_to(text_data=json.dumps(message))


async def receive(communicator: WebsocketCommunicator) -> list[Any]:
    return json.loads(await communicator.receive_from(timeout=3))


async def receive_until_eose(communicator: WebsocketCommunicator, subid: str) -> list[list[Any]]:
    messages = []
    while True:
        message = await receive(communicator)
        if message == ["EOSE", subid]:
            return messages
        messages.append(message)


async def publish_on_feed(payload: dict[str, Any]) -> None:
    await get_channel_layer().group_send(
        realtime.PUBLIC_FEED_GROUP, {"type": "post.published", "payload": payload}
    )


@database_sync_to_async
def seed_forum() -> dict[str, Any]:
    board = make_board(thread_price_msat=10_000, reply_price_msat=2_000)
    make_board("deep", position=5, thread_price_msat=50_000, reply_price_msat=5_000)
    root = thread(created_at=1_000)
    store(root, board)
    return {"board": board, "root": root}


async def test_any_origin_or_none_may_connect():
    for headers in ([], [(b"origin", b"https://some-nostr-client.example")]):
        communicator = await connect(headers)
        await send(communicator, ["REQ", "s", {"limit": 0}])
        assert await receive(communicator) == ["EOSE", "s"]
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not valid JSON"),
        ('{"REQ": 1}', "JSON array"),
        ("[]", "JSON array"),
        ('["HELLO"]', "unsupported: message type 'HELLO'"),
        ('["AUTH", "x"]', "unsupported"),
        ('["REQ"]', "non-empty string subscription id"),
        ('["REQ", ""]', "non-empty string subscription id"),
        ('["REQ", 7, {}]', "non-empty string subscription id"),
        ('["CLOSE"]', "CLOSE needs a subscription id"),
        ('["EVENT"]', "EVENT needs an event object"),
        ('["EVENT", {"kind": 1}]', "EVENT needs an event object"),
    ],
)
async def test_malformed_messages_get_a_notice(text, fragment):
    communicator = await connect()
    await communicator.send_to(text_data=text)
    verb, message = await receive(communicator)
    assert verb == "NOTICE"
    assert fragment in message
    assert message.split(":")[0] in ("invalid", "unsupported")
    await communicator.disconnect()


async def test_binary_frames_and_oversized_messages_get_a_notice(settings):
    settings.NOSTR_RELAY_LIMITS = {"max_message_length": 200}
    communicator = await connect()
    await communicator.send_to(bytes_data=b"[]")
    assert (await receive(communicator))[1].startswith("invalid: binary")
    big = json.dumps(["REQ", "big", {"#t": ["é" * 150]}], ensure_ascii=False)
    await communicator.send_to(text_data=big)
    # Bytes, not characters: each é is two bytes of UTF-8.
    assert await receive(communicator) == [
        "NOTICE",
        f"invalid: message is {len(big) + 150} bytes, the limit is 200",
    ]
    # The connection stays usable.
    await send(communicator, ["REQ", "small", {"limit": 0}])
    assert await receive(communicator) == ["EOSE", "small"]
    await communicator.disconnect()


async def test_subscription_limits_close_with_prefixes(settings):
    settings.NOSTR_RELAY_LIMITS = {"max_subscriptions": 2, "max_filters": 2}
    communicator = await connect()
    await send(communicator, ["REQ", "a", {"limit": 0}])
    await send(communicator, ["REQ", "b", {"limit": 0}])
    assert await receive(communicator) == ["EOSE", "a"]
    assert await receive(communicator) == ["EOSE", "b"]

    await send(communicator, ["REQ", "c", {"limit": 0}])
    verb, subid, message = await receive(communicator)
    assert (verb, subid) == ("CLOSED", "c")
    assert message.startswith("rate-limited: 2 subscriptions are open")

    # Re-using an open id replaces that subscription, so it is not refused.
    await send(communicator, ["REQ", "b", {"limit": 0}])
    assert await receive(communicator) == ["EOSE", "b"]
    # After a CLOSE there is room again.
    await send(communicator, ["CLOSE", "a"])
    await send(communicator, ["REQ", "c", {"limit": 0}])
    assert await receive(communicator) == ["EOSE", "c"]

    await send(communicator, ["REQ", "d", {}, {}, {}])
    verb, subid, message = await receive(communicator)
    assert (verb, subid) == ("CLOSED", "d")
    assert message == "invalid: 3 filters in one REQ, the limit is 2"

    await send(communicator, ["REQ", "x" * 65, {}])
    verb, _, message = await receive(communicator)
    assert verb == "CLOSED"
    assert message == "invalid: subscription id longer than 64 characters"

    await send(communicator, ["REQ", "e"])
    assert await receive(communicator) == ["CLOSED", "e", "invalid: REQ needs at least one filter"]
    await communicator.disconnect()


async def test_bad_filters_close_the_subscription():
    communicator = await connect()
    await send(communicator, ["REQ", "q", {"search": ""}])
    assert await receive(communicator) == [
        "CLOSED",
        "q",
        "invalid: search needs at least one word to look for",
    ]
    await send(communicator, ["REQ", "q", {"ids": ["abc"]}])
    assert await receive(communicator) == [
        "CLOSED",
        "q",
        "invalid: ids values must be 64-character lowercase hex",
    ]
    await send(communicator, ["COUNT", "n", {"nope": "bitcoin"}])
    assert await receive(communicator) == [
        "CLOSED",
        "n",
        "unsupported: filter field 'nope' is not supported",
    ]
    await send(communicator, ["COUNT", "n", {}])
    assert await receive(communicator) == ["COUNT", "n", {"count": 0}]
    await communicator.disconnect()


async def test_req_sends_stored_events_verbatim_then_eose():
    forum = await seed_forum()
    root = forum["root"]
    communicator = await connect()
    await send(communicator, ["REQ", "all", {"kinds": [11]}, {"ids": [root.id]}])
    raw = await communicator.receive_from(timeout=3)
    # Byte for byte what the author signed (the forum's canonical JSON).
    assert raw == f'["EVENT","all",{root.to_json()}]'
    assert await receive(communicator) == ["EOSE", "all"]
    await communicator.disconnect()


async def test_live_events_follow_the_feed_until_close():
    forum = await seed_forum()
    board, root = forum["board"], forum["root"]
    communicator = await connect()
    await send(communicator, ["REQ", "thread", {"#E": [root.id]}])
    await send(communicator, ["REQ", "other", {"#E": ["f" * 64]}])
    assert await receive_until_eose(communicator, "thread") == []
    assert await receive_until_eose(communicator, "other") == []

    one = reply(root, content="one", created_at=1_001)
    row = await database_sync_to_async(store)(one, board)
    await publish_on_feed(feed_payload(row))
    assert await receive(communicator) == ["EVENT", "thread", one.to_dict()]

    # A broadcast that carries only the id: the relay reads the event itself.
    two = reply(root, content="two", created_at=1_002)
    row = await database_sync_to_async(store)(two, board)
    await publish_on_feed(feed_payload(row, with_raw=False))
    assert await receive(communicator) == ["EVENT", "thread", two.to_dict()]

    await send(communicator, ["CLOSE", "thread"])
    three = reply(root, content="three", created_at=1_003)
    row = await database_sync_to_async(store)(three, board)
    await publish_on_feed(feed_payload(row))
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_live_events_from_private_or_hidden_posts_are_not_sent():
    forum = await seed_forum()
    board, root = forum["board"], forum["root"]
    room = await database_sync_to_async(make_board)("room", is_listed=False)
    communicator = await connect()
    await send(communicator, ["REQ", "everything", {}])
    await receive_until_eose(communicator, "everything")

    private = thread("room", title="secret", created_at=2_000)
    row = await database_sync_to_async(store)(private, room)
    await publish_on_feed(feed_payload(row))
    hidden = reply(root, content="hidden at once", created_at=2_001)
    row = await database_sync_to_async(store)(hidden, board, hidden=True)
    await publish_on_feed(feed_payload(row))
    await publish_on_feed({"event_id": "e" * 64, "kind": 11, "board": "general"})
    # Message types the relay does not handle must not break the socket.
    await get_channel_layer().group_send(
        realtime.PUBLIC_FEED_GROUP, {"type": "thread.updated", "payload": {}}
    )
    assert await communicator.receive_nothing(timeout=0.5)

    await send(communicator, ["REQ", "still-alive", {"limit": 0}])
    assert await receive(communicator) == ["EOSE", "still-alive"]
    await communicator.disconnect()


async def test_a_publish_racing_the_stored_query_is_sent_once():
    forum = await seed_forum()
    board, root = forum["board"], forum["root"]
    one = reply(root, created_at=1_001)
    row = await database_sync_to_async(store)(one, board)
    communicator = await connect()
    # The broadcast is queued before the REQ is handled, as when a publish commits mid-query.
    await send(communicator, ["REQ", "r", {"kinds": [1111]}])
    await publish_on_feed(feed_payload(row))
    assert await receive_until_eose(communicator, "r") == [["EVENT", "r", one.to_dict()]]
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_client_events_are_refused_with_how_to_publish(monkeypatch):
    await seed_forum()
    monkeypatch.setattr(selectors, "forum_node_pubkey", lambda: NODE)
    communicator = await connect([(b"host", b"forum.example")])

    on_board = nostr.thread_event(ALICE, board="general", title="t", content="c")
    await send(communicator, ["EVENT", on_board.to_dict()])
    verb, event_id, accepted, message = await receive(communicator)
    assert (verb, event_id, accepted) == ("OK", on_board.id, False)
    # No balance: what it costs, what there is, and how to fund it (docs/relay.md).
    assert message.startswith("blocked: ")
    assert "balance 0 msat, this costs 10000 msat" in message
    assert f"node {NODE}" in message
    assert "credit record (4151831)" in message
    assert "http://forum.example/how-to-post/" in message
    assert f"http://forum.example/api/balance?pubkey={on_board.pubkey}" in message

    unknown = nostr.thread_event(ALICE, board="nowhere", title="t", content="c")
    root = forum_root = nostr.thread_event(ALICE, board="deep", title="t", content="c")
    a_reply = nostr.reply_event(ALICE, board="deep", root=forum_root, content="r")
    await send(communicator, ["EVENT", unknown.to_dict()])
    message = (await receive(communicator))[3]
    assert message.startswith("invalid: there is no board 'nowhere'")
    assert message.endswith("Nothing was charged.")
    await send(communicator, ["EVENT", a_reply.to_dict()])
    message = (await receive(communicator))[3]
    assert "balance 0 msat, this costs 5000 msat" in message
    assert root.kind == 11

    note = nostr.sign_event(ALICE, kind=1, tags=[], content="a kind 1 note")
    await send(communicator, ["EVENT", note.to_dict()])
    message = (await receive(communicator))[3]
    assert message.startswith("invalid: kind 1 is not accepted here")
    await communicator.disconnect()


async def test_client_event_answer_survives_a_dead_node(monkeypatch):
    await seed_forum()

    def node_down() -> None:
        return None

    monkeypatch.setattr(selectors, "forum_node_pubkey", node_down)
    communicator = await connect()
    event = nostr.thread_event(ALICE, board="general", title="t", content="c")
    await send(communicator, ["EVENT", event.to_dict()])
    verb, _, accepted, message = await receive(communicator)
    assert (verb, accepted) == ("OK", False)
    assert "to the forum's Lightning node" in message
    await communicator.disconnect()


async def test_forged_events_are_answered_invalid():
    communicator = await connect()
    event = nostr.thread_event(ALICE, board="general", title="t", content="c").to_dict()
    event["content"] = "changed after signing"
    await send(communicator, ["EVENT", event])
    verb, event_id, accepted, message = await receive(communicator)
    assert (verb, event_id, accepted) == ("OK", event["id"], False)
    assert message.startswith("invalid: ")
    await communicator.disconnect()


async def test_the_cores_publish_broadcast_reaches_matching_subscriptions():
    forum = await seed_forum()
    board, root = forum["board"], forum["root"]
    communicator = await connect()
    await send(communicator, ["REQ", "board", {"#h": ["general"], "kinds": [1111]}])
    assert await receive_until_eose(communicator, "board") == []
    one = reply(root, content="through the core", created_at=1_010)
    # The core's publish service: rows, counters, and `post.published` on commit.
    await database_sync_to_async(publish_via_core)(one, board)
    assert await receive(communicator) == ["EVENT", "board", one.to_dict()]
    await communicator.disconnect()


async def test_a_hanging_node_lookup_does_not_hold_the_answer(monkeypatch):
    await seed_forum()
    from forum.relay import consumer

    def node_hangs() -> str:
        time.sleep(1.0)
        return NODE

    monkeypatch.setattr(selectors, "forum_node_pubkey", node_hangs)
    monkeypatch.setattr(consumer, "NODE_LOOKUP_TIMEOUT_SECONDS", 0.1)
    communicator = await connect()
    event = nostr.thread_event(ALICE, board="general", title="t", content="c")
    started = time.monotonic()
    await send(communicator, ["EVENT", event.to_dict()])
    message = (await receive(communicator))[3]
    assert time.monotonic() - started < 0.9
    assert "to the forum's Lightning node" in message
    # Database reads of other messages are not queued behind the lookup.
    await send(communicator, ["REQ", "after", {"kinds": [11]}])
    assert len(await receive_until_eose(communicator, "after")) == 1
    assert time.monotonic() - started < 0.9
    await communicator.disconnect()
