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
