"""Live updates: group names and broadcasts. The only module that calls `group_send`.

Broadcasts are queued with `transaction.on_commit`, so a browser never hears of a row that a
rollback later erased.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import transaction

log = logging.getLogger(__name__)

_GROUP_SAFE = re.compile(r"[^0-9A-Za-z_.-]")


def group_name(scope: str, key: str | int) -> str:
    """Channels group names allow only ASCII alphanumerics, hyphens, underscores and periods."""
    return f"{scope}.{_GROUP_SAFE.sub('_', str(key))}"[:99]


def board_group(slug: str) -> str:
    return group_name("board", slug)


def thread_group(thread_event_id: str) -> str:
    return group_name("thread", thread_event_id)


def inbox_group(pubkey: str) -> str:
    """A pubkey's new notifications (`forum.selectors.inbox`), for its browser's bell."""
    return group_name("inbox", pubkey)


def payment_group(key: str) -> str:
    """Status of one message (by event id or payment hash) for the composer that sent it."""
    return group_name("status", key)


# Every published event also goes to this group (the Nostr relay's live subscriptions follow it).
PUBLIC_FEED_GROUP = "feed.public"


# The in-memory layer (embedded default, no Redis) keeps plain asyncio queues that belong to the
# event loop serving the websockets. A broadcast from another thread (the listener, a sync view)
# must run on that loop, or the waiting consumers are not woken. Consumers note their loop here.
_consumer_loop: asyncio.AbstractEventLoop | None = None


def note_consumer_loop() -> None:
    """Called by consumers on connect, from inside the loop that serves them."""
    global _consumer_loop
    _consumer_loop = asyncio.get_running_loop()


def _send_on_consumer_loop(layer: InMemoryChannelLayer, group: str, message: dict) -> bool:
    loop = _consumer_loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return False
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(layer.group_send(group, message))
    else:
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=5)
    return True


# Batching: a task that broadcasts a handful of messages sends them in one trip to the layer.
_batch = threading.local()
_background: ThreadPoolExecutor | None = None
_background_lock = threading.Lock()


@contextmanager
def batch(*, background: bool = False) -> Iterator[None]:
    """Collect the broadcasts made inside (on commit, as usual) and send them together on exit.

    `background=True` hands the sending to one helper thread (order kept), so a latency-bound
    loop such as the listener does not wait for the channel layer. Nested batches join the
    outermost one.
    """
    if getattr(_batch, "messages", None) is not None:
        yield
        return
    _batch.messages = []
    try:
        yield
    finally:
        messages, _batch.messages = _batch.messages, None
        if messages:
            if background:
                _background_executor().submit(_send_many, messages)
            else:
                _send_many(messages)


def _background_executor() -> ThreadPoolExecutor:
    global _background
    with _background_lock:
        if _background is None:
            _background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broadcast")
        return _background


# A network channel layer (Redis) keeps its connections per event loop. `async_to_sync` from a
# plain thread makes a new loop (and a new thread) per call, so every broadcast paid for a loop,
# a Redis connection and its teardown (~6 ms, measured). Instead, each process runs one loop on
# a daemon thread for its sends and keeps that loop's connection. Sends wait for the result, so
# order and "after commit" are unchanged.
_SEND_TIMEOUT_SECONDS = 10.0
_sender: tuple[int, asyncio.AbstractEventLoop] | None = None
_sender_lock = threading.Lock()
_sender_layer: Any = None  # the layer whose connection the sender loop holds


def _sender_loop() -> asyncio.AbstractEventLoop:
    global _sender
    with _sender_lock:
        # Keyed by pid: a forked child (Celery prefork) must not use its parent's thread.
        if _sender is None or _sender[0] != os.getpid() or _sender[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="channel-layer-sender", daemon=True
            ).start()
            _sender = (os.getpid(), loop)
        return _sender[1]


async def _release_layer(layer: Any) -> None:
    """Close the sender loop's connection of a layer that was replaced (tests make one each)."""
    loop_layers = getattr(layer, "_layers", None)
    if isinstance(loop_layers, dict):
        loop_layer = loop_layers.pop(asyncio.get_running_loop(), None)
        if loop_layer is not None:
            await loop_layer.flush()


def _run_on_sender_loop(layer: Any, messages: list[tuple[str, dict]]) -> None:
    async def send_all() -> None:
        global _sender_layer
        if _sender_layer is not None and _sender_layer is not layer:
            previous, _sender_layer = _sender_layer, None
            try:
                await _release_layer(previous)
            except Exception:
                log.debug("closing a replaced channel layer's connection failed", exc_info=True)
        _sender_layer = layer
        if len(messages) > 1 and isinstance(layer, RedisChannelLayer):
            try:
                await _redis_group_send_many(layer, messages)
            except Exception:
                # As below: the kept connection may have died while idle. Once more, fresh.
                log.warning("channel layer send failed; reconnecting", exc_info=True)
                await _release_layer(layer)
                await _redis_group_send_many(layer, messages)
            return
        retried = False
        for group, message in messages:  # in order: "paid" before "published"
            try:
                await layer.group_send(group, message)
            except Exception:
                # The kept connection may have died while idle (Redis restarted, or closed
                # idle clients): the fresh-connection-per-send this replaced never saw that.
                # Drop it and try once more on a new one; a second failure is reported.
                if retried:
                    raise
                retried = True
                log.warning("channel layer send failed; reconnecting", exc_info=True)
                try:
                    await _release_layer(layer)  # forgets the connection even if closing fails
                except Exception:
                    log.debug("closing the failed connection failed", exc_info=True)
                await layer.group_send(group, message)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from inside a running loop: blocking on another loop would stall it
        async_to_sync(send_all)()
        return
    future = asyncio.run_coroutine_threadsafe(send_all(), _sender_loop())
    try:
        future.result(timeout=_SEND_TIMEOUT_SECONDS)
    except BaseException:
        future.cancel()
        raise


# channels_redis's group_send costs three round trips per message (expire members, read them,
# deliver), most of them for groups nobody is in (a composer's status group after it left).
# A reconcile batch sends thousands: here they take three round trips in all. The same Redis
# keys, scores and Lua as channels_redis 4.3 (pinned), so its receivers read them unchanged;
# each message gets its own, increasing score, so a channel receives them in order.
_DELIVER_LUA = """
local over_capacity = 0
local expiry = ARGV[#ARGV]
local n = (#ARGV - 1) / 3
for i=1,#KEYS do
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], ARGV[2 * n + i], ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


async def _redis_group_send_many(layer: Any, messages: list[tuple[str, dict]]) -> None:
    now = time.time()
    groups = list(dict.fromkeys(group for group, _ in messages))
    members: dict[str, list[str]] = {}
    by_connection: dict[int, list[str]] = {}
    for group in groups:
        by_connection.setdefault(layer.consistent_hash(group), []).append(group)
    for index, names in by_connection.items():
        pipe = layer.connection(index).pipeline(transaction=False)
        for group in names:
            key = layer._group_key(group)
            pipe.zremrangebyscore(key, min=0, max=int(now) - layer.group_expiry)
            pipe.zrange(key, 0, -1)
        replies = await pipe.execute()
        for group, found in zip(names, replies[1::2], strict=True):
            members[group] = [name.decode("utf8") for name in found]
    # (key, serialized message, capacity, score) per connection, in send order.
    deliveries: dict[int, list[tuple[str, bytes, int, float]]] = {}
    sequence = 0
    for group, message in messages:
        channels = members.get(group) or []
        if not channels:
            continue
        by_key: dict[str, list[str]] = {}
        for channel in channels:
            local = layer.non_local_name(channel) if "!" in channel else channel
            by_key.setdefault(layer.prefix + local, []).append(channel)
        for key, names in by_key.items():
            sequence += 1
            payload = layer.serialize({**message, "__asgi_channel__": names})
            index = layer.consistent_hash(key[len(layer.prefix) :])
            deliveries.setdefault(index, []).append(
                (key, payload, layer.get_capacity(names[0]), now + sequence * 1e-6)
            )
    for index, items in deliveries.items():
        keys = [key for key, *_ in items]
        args = [p for _, p, _, _ in items] + [c for _, _, c, _ in items]
        args += [t for *_, t in items] + [layer.expiry]
        pipe = layer.connection(index).pipeline(transaction=False)
        for key in dict.fromkeys(keys):
            pipe.zremrangebyscore(key, min=0, max=int(now) - int(layer.expiry))
        pipe.eval(_DELIVER_LUA, len(keys), *keys, *args)
        replies = await pipe.execute()
        if replies[-1]:
            log.info("%s messages over capacity in one batch", replies[-1])


def _send_many(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        for group, message in messages:
            _send_one(layer, group, message)
        return
    try:
        _run_on_sender_loop(layer, messages)
    except Exception:
        log.exception("broadcast of %d messages failed", len(messages))


_watch_clients: dict[tuple[int, str], Any] = {}


def groups_watched(groups: Iterable[str]) -> set[str]:
    """The groups that have a member now (an open page in some web process), so a batch
    renders and sends only what someone will receive. One Redis round trip per shard (the
    same membership `group_send` reads); the in-memory layer is asked directly. If Redis
    cannot say, every group counts as watched (a send finds out for itself)."""
    wanted = list(dict.fromkeys(groups))
    layer = get_channel_layer()
    if layer is None or not wanted:
        return set()
    if isinstance(layer, InMemoryChannelLayer):
        return {group for group in wanted if layer.groups.get(group)}
    if not isinstance(layer, RedisChannelLayer):
        return set(wanted)
    try:
        since = int(time.time()) - layer.group_expiry
        by_shard: dict[int, list[str]] = {}
        for group in wanted:
            by_shard.setdefault(layer.consistent_hash(group), []).append(group)
        watched: set[str] = set()
        for index, names in by_shard.items():
            pipe = _watch_client(layer.hosts[index]["address"]).pipeline(transaction=False)
            for group in names:
                pipe.zcount(layer._group_key(group), since, "+inf")
            for group, count in zip(names, pipe.execute(), strict=True):
                if count:
                    watched.add(group)
        return watched
    except Exception:
        log.exception("reading which live groups are watched failed; sending to all")
        return set(wanted)


def _watch_client(address: str) -> Any:
    key = (os.getpid(), address)  # a forked worker opens its own connection
    client = _watch_clients.get(key)
    if client is None:
        import redis

        client = _watch_clients[key] = redis.Redis.from_url(address)
    return client


def send_batch(messages: list[tuple[str, dict]]) -> None:
    """Send ready messages ((group, {"type", "payload"}) pairs, in order) in one trip.

    The pipeline's stages return these in their outcomes; the caller sends them after commit.
    """
    if not messages:
        return
    pending = getattr(_batch, "messages", None)
    if pending is not None:
        pending.extend(messages)
        return
    _send_many(messages)


def broadcast_now(group: str, message_type: str, payload: dict[str, Any]) -> None:
    message = {"type": message_type, "payload": payload}
    pending = getattr(_batch, "messages", None)
    if pending is not None:
        pending.append((group, message))
        return
    layer = get_channel_layer()
    if layer is None:
        return
    _send_one(layer, group, message)


def _send_one(layer: Any, group: str, message: dict) -> None:
    try:
        if isinstance(layer, InMemoryChannelLayer) and _send_on_consumer_loop(
            layer, group, message
        ):
            return
        if isinstance(layer, InMemoryChannelLayer):
            async_to_sync(layer.group_send)(group, message)  # its queues: not for another thread
        else:
            _run_on_sender_loop(layer, [(group, message)])
    except Exception:  # a dead channel layer must never fail the write that triggered it
        log.exception("broadcast to %s failed (thread %s)", group, threading.current_thread().name)


def broadcast_on_commit(group: str, message_type: str, payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: broadcast_now(group, message_type, payload))
