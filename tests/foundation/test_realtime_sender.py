"""Broadcasts to a Redis channel layer share one kept connection per process, and survive it dying."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from forum import realtime

PREFIX = "test-realtime-sender"


@pytest.fixture
def sender_name(redis_url, monkeypatch) -> str:
    """The broadcasts go through a layer whose connections carry this client name."""
    from channels_redis.core import RedisChannelLayer

    name = f"realtime-sender-{uuid.uuid4().hex[:12]}"
    layer = RedisChannelLayer(hosts=[{"address": redis_url, "client_name": name}], prefix=PREFIX)
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)
    return name


@pytest.fixture
def inspector(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _sender_ids(inspector, name: str) -> set[int]:
    # By name: the Redis server is shared with other test runs opening their own clients.
    return {int(c["id"]) for c in inspector.client_list() if c.get("name") == name}


def _receive(redis_url: str, group: str, send) -> list[dict]:
    """Join `group` on a separate layer, run the (blocking) `send` in a thread, return what came."""
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[redis_url], prefix=PREFIX)

    async def run() -> list[dict]:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        count = await asyncio.to_thread(send)
        got = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]
        await layer.group_discard(group, channel)
        await layer.close_pools()
        return got

    return asyncio.run(run())


@pytest.mark.redis
def test_sends_reuse_one_connection(sender_name, inspector, redis_url):
    def send() -> int:
        for n in range(6):
            realtime._send_many([("status.a", {"type": "x", "payload": n})])
        assert len(_sender_ids(inspector, sender_name)) == 1  # not one per send
        return 6

    got = _receive(redis_url, "status.a", send)
    assert [m["payload"] for m in got] == [0, 1, 2, 3, 4, 5]


@pytest.mark.redis
def test_a_dead_kept_connection_is_replaced(sender_name, inspector, redis_url):
    def send() -> int:
        realtime._send_many([("status.b", {"type": "x", "payload": 1})])
        (kept,) = _sender_ids(inspector, sender_name)
        inspector.client_kill_filter(_id=kept)  # as if Redis restarted or dropped an idle client
        realtime._send_many([("status.b", {"type": "x", "payload": 2})])
        return 2

    got = _receive(redis_url, "status.b", send)
    assert [m["payload"] for m in got] == [1, 2]


@pytest.mark.redis
def test_a_batch_reaches_every_member_in_order_and_skips_empty_groups(redis_url, monkeypatch):
    """A reconcile batch's messages go to Redis in one pipelined trip (not three round trips
    per message): a socket in two of the groups gets its messages in send order, with the
    channel names channels_redis expects, and a group nobody is in costs nothing."""
    from channels_redis.core import RedisChannelLayer

    sender = RedisChannelLayer(hosts=[redis_url], prefix=PREFIX)
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: sender)
    receiver = RedisChannelLayer(hosts=[redis_url], prefix=PREFIX)
    board, thread = f"board.{uuid.uuid4().hex[:8]}", f"thread.{uuid.uuid4().hex[:8]}"
    messages = [
        (board, {"type": "post.published", "payload": {"n": 1}}),
        (f"status.nobody-{uuid.uuid4().hex[:8]}", {"type": "message.status", "payload": {}}),
        (thread, {"type": "post.published", "payload": {"n": 2}}),
        (board, {"type": "thread.updated", "payload": {"n": 3}}),
    ]

    async def run() -> list[dict]:
        channel = await receiver.new_channel()
        await receiver.group_add(board, channel)
        await receiver.group_add(thread, channel)
        await asyncio.to_thread(realtime.send_batch, messages)
        got = [await asyncio.wait_for(receiver.receive(channel), 5) for _ in range(3)]
        with pytest.raises(asyncio.TimeoutError):  # nothing else arrives
            await asyncio.wait_for(receiver.receive(channel), 0.5)
        await receiver.close_pools()
        return got

    got = asyncio.run(run())
    assert [(m["type"], m["payload"]["n"]) for m in got] == [
        ("post.published", 1),
        ("post.published", 2),
        ("thread.updated", 3),
    ]
