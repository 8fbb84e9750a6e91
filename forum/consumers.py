"""Websocket consumers and the per-process hub that fans group messages out to them.

A thread page with a thousand readers is a thousand sockets on the same group. Joining each
socket to the channel layer's group made every message cost one Redis delivery, one
deserialisation and one JSON encoding *per socket* (and one Redis connection per concurrent
join). Instead each process (each event loop) runs one `GroupHub`: the first local socket on a
group joins the channel layer's group once, the hub receives each message once, encodes it
once into one websocket frame and writes the same bytes to every local socket
(`forum/wsframes.py`). The HTML browsers need (a reply's card, a board row, a feed item) comes
rendered in the message from the worker that published it, or is rendered here once per
process (`forum/views/live.py`). With several daphne processes the channel layer delivers one
copy per process. Sockets hold no channel-layer channel of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from forum import realtime
from forum.views import live
from forum.wsframes import FrameWriter, text_frame, writer_for

log = logging.getLogger(__name__)

# Messages the browser is sent (channel-layer message type -> what it is told).
_RELAYED = {
    "post.published",
    "post.hidden",
    "post.edited",  # an author's kind 1010 edit (forum.ingest.kinds_publish)
    "message.status",
    "thread.updated",
    "inbox.new",
}

# The home page's "latest" feed follows every published event (the relay's group) and keeps
# only what a public, listed board shows; the hub filters once per process, not per socket.
FEED_GROUP = "home.latest"
_SOURCE_GROUP = {FEED_GROUP: realtime.PUBLIC_FEED_GROUP}

MAX_STATUS_FOLLOWS = 50
MAX_BATCH = 50  # messages in one frame, at most
READ_MANY = 200  # messages taken from Redis in one round trip, at most

# Channel layers forget a group member after `group_expiry` (a day by default); a process whose
# readers stay on a page longer must say again that it is there.
GROUP_REFRESH_SECONDS = 3600


# HTML for a message that arrives without it (`forum/views/live.py`), once per process, on the
# consumers' database thread, like their connect checks (which are asked once per public key
# and process, so a crowd connecting does not queue in front of a message).
_render_fragments = database_sync_to_async(live.fragments)


class GroupHub:
    """Local members of channel-layer groups, for the consumers of one event loop."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.members: dict[str, set[LiveConsumer]] = {}
        self._joined: dict[str, asyncio.Future] = {}  # group -> its subscription (channel name)
        self._readers: dict[str, asyncio.Task] = {}
        self._refresher: asyncio.Task | None = None
        # With Redis, the hub's channels share one Redis key of their own, read by one task
        # (`_read_redis`) that takes every waiting message in one round trip.
        self._redis = isinstance(layer, RedisChannelLayer)
        self._local = f"specific.hub{uuid.uuid4().hex}!"
        self._channel_group: dict[str, str] = {}
        self._pending: dict[str, asyncio.Queue] = {}
        self._redis_reader: asyncio.Task | None = None

    async def join(self, group: str, consumer: LiveConsumer) -> None:
        self.members.setdefault(group, set()).add(consumer)
        joined = self._joined.get(group)
        if joined is None:
            joined = self._joined[group] = asyncio.ensure_future(self._subscribe(group))
        await asyncio.shield(joined)  # messages sent after this reach the socket

    async def leave(self, group: str, consumer: LiveConsumer) -> None:
        members = self.members.get(group)
        if members is None:
            return
        members.discard(consumer)
        if members:
            return
        del self.members[group]
        joined = self._joined.pop(group, None)
        reader = self._readers.pop(group, None)
        if reader is not None:
            reader.cancel()
        self._pending.pop(group, None)
        if joined is not None:
            try:
                channel = await joined
                self._channel_group.pop(channel, None)
                await self.layer.group_discard(_SOURCE_GROUP.get(group, group), channel)
            except Exception:
                log.debug("leaving %s failed", group, exc_info=True)

    async def _subscribe(self, group: str) -> str:
        if self._redis:
            channel = self._local + uuid.uuid4().hex
            pending = self._pending[group] = asyncio.Queue()
            self._channel_group[channel] = group
            self._readers[group] = asyncio.ensure_future(self._send(group, pending))
            if self._redis_reader is None or self._redis_reader.done():
                self._redis_reader = asyncio.ensure_future(self._read_redis())
        else:
            channel = await self.layer.new_channel()
            self._readers[group] = asyncio.ensure_future(self._read(group, channel))
        await self.layer.group_add(_SOURCE_GROUP.get(group, group), channel)
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(self._refresh())
        return channel

    async def _refresh(self) -> None:
        while self._joined:
            await asyncio.sleep(GROUP_REFRESH_SECONDS)
            for group, joined in list(self._joined.items()):
                if joined.done() and not joined.cancelled() and joined.exception() is None:
                    try:
                        await self.layer.group_add(_SOURCE_GROUP.get(group, group), joined.result())
                    except Exception:
                        log.warning("refreshing group %s failed", group, exc_info=True)

    async def _read(self, group: str, channel: str) -> None:
        # Receiving and sending are separate tasks so that messages arriving while a fan-out is
        # under way queue here and leave together (see `_send`).
        pending: asyncio.Queue = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(group, pending))
        try:
            while True:
                try:
                    message = await self.layer.receive(channel)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a dropped Redis connection: keep the page live
                    log.exception("receiving live messages for %s failed; retrying", group)
                    await asyncio.sleep(1)
                    continue
                pending.put_nowait(message)
        finally:
            sender.cancel()

    async def _read_redis(self) -> None:
        """Every message for this hub's channels, in order, as many per Redis round trip as
        are waiting, handed to each group's sender.

        channels_redis's `receive` costs four round trips per message (a clean-up script, a
        blocking pop, a backup copy and its removal, which guard against losing a message
        when a receiver is cancelled; a hub's reader is cancelled only when nobody reads) and
        takes one message at a time, so a burst reached the sockets one frame per message.
        The keys, scores and serialisation are channels_redis 4.3's (pinned).
        """
        layer = self.layer
        key = layer.prefix + self._local
        failures = 0
        while self._channel_group:
            try:
                connection = layer.connection(layer.consistent_hash(self._local))
                items = await connection.zpopmin(key, READ_MANY)
                if not items:
                    popped = await connection.bzpopmin(key, timeout=layer.brpop_timeout)
                    items = [(popped[1], popped[2])] if popped else []
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # a dropped Redis connection, a read timed out under load
                failures += 1
                log.warning("receiving live messages failed; retrying", exc_info=True)
                if failures > 1:  # at once the first time: the messages wait in Redis
                    await asyncio.sleep(1)
                continue
            for raw, _score in items:
                try:
                    message = layer.deserialize(raw)
                except Exception:
                    log.exception("an unreadable live message was dropped")
                    continue
                channels = message.pop("__asgi_channel__", None)
                for channel in channels if isinstance(channels, list) else [channels]:
                    pending = self._pending.get(self._channel_group.get(channel, ""))
                    if pending is not None:
                        pending.put_nowait(message)

    async def _send(self, group: str, pending: asyncio.Queue) -> None:
        """Write each message to every local socket; under load, several in one frame.

        A socket write costs the same for one message or ten, so when messages wait (a reply
        and its `thread.updated`, a burst of replies), a page's socket gets them as one
        `{"type": "batch", "messages": [...]}` frame (live.js unpacks it). Status sockets (the
        composer's) always get single messages.
        """
        batchable = not group.startswith("status.")
        while True:
            items = []
            message = await pending.get()
            while True:
                try:
                    item = await self._prepare(group, message)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("live message for %s not delivered", group)
                    item = None
                if item is not None:
                    items.append(item)
                if not batchable or pending.empty() or len(items) >= MAX_BATCH:
                    break
                message = pending.get_nowait()
            if not items or not self.members.get(group):
                continue
            frame = items[0] if len(items) == 1 else {"type": "batch", "messages": items}
            text = json.dumps(frame)
            # Encoded once for all: daphne's sockets get the same frame bytes on their transport
            # (`forum/wsframes.py`); any other socket one shared ASGI message.
            wire = text_frame(text)
            asgi_message = {"type": "websocket.send", "text": text}
            for consumer in list(self.members.get(group, ())):
                try:
                    writer = consumer.frame_writer
                    if writer is None or not writer.write(wire):
                        await consumer.base_send(asgi_message)
                except Exception:  # one broken socket must not starve the others
                    log.debug("send to a live socket failed", exc_info=True)

    async def _prepare(self, group: str, message: dict[str, Any]) -> dict[str, Any] | None:
        """What the browser is told about one channel-layer message, or None (not for it)."""
        kind = message.get("type")
        if kind not in _RELAYED or not self.members.get(group):
            return None
        extras: dict[str, str] | None = {}
        if group == FEED_GROUP or group.startswith(("thread.", "board.")):
            if live.FRAGMENTS in message:  # rendered by the sender, once for every process
                extras = message[live.FRAGMENTS]
            else:
                extras = await _render_fragments(_SOURCE_GROUP.get(group, group), message)
            if extras is None:
                return None
        return {"type": kind, **(message.get("payload") or {}), **extras}


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupHub] = weakref.WeakKeyDictionary()


def hub() -> GroupHub:
    """This event loop's hub (a new one if the channel layer was replaced, as tests do)."""
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    current = _hubs.get(loop)
    if current is None or current.layer is not layer:
        current = _hubs[loop] = GroupHub(layer)
    return current


# Boards and threads known to be public: their answer never changes, so each process asks the
# database once per key instead of once per socket (a thousand readers open at once).
_PUBLIC_FOLLOWS: set[tuple[str, str]] = set()
_PUBLIC_FOLLOWS_MAX = 100_000


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """One socket per page; the URL says which board, thread, feed or payment status it follows."""

    channel_layer_alias = "-"  # not configured: no channel per socket (the hub relays)

    frame_writer: FrameWriter | None = None

    async def connect(self) -> None:
        realtime.note_consumer_loop()
        self.groups_joined: list[str] = []
        self.frame_writer = writer_for(self.scope)
        kwargs = self.scope["url_route"]["kwargs"]
        scope_name = kwargs["scope"]
        key = kwargs["key"]
        if not await self._may_follow(scope_name, key):
            await self.close(code=4403)  # a private room this session has not unlocked
            return
        if scope_name == "board":
            group = realtime.board_group(key)
        elif scope_name == "thread":
            group = realtime.thread_group(key)
        elif scope_name == "feed":
            group = FEED_GROUP
        elif scope_name == "inbox":
            group = realtime.inbox_group(key.lower())
        else:
            group = realtime.payment_group(key)
        await self.accept()
        await self._join(group)
        await self.send_json({"type": "hello", "group": group})

    async def _join(self, group: str) -> None:
        self.groups_joined.append(group)
        await hub().join(group, self)

    async def _may_follow(self, scope_name: str, key: str) -> bool:
        # An inbox is public (its page and feed are), and its messages carry no content.
        if scope_name in ("feed", "status", "inbox") or (scope_name, key) in _PUBLIC_FOLLOWS:
            return True
        return await self._may_follow_db(scope_name, key)

    @database_sync_to_async
    def _may_follow_db(self, scope_name: str, key: str) -> bool:
        from forum.selectors.pages import follow_is_public
        from forum.selectors.rooms import live_follow_allowed
        from forum.views.rooms import SESSION_KEY

        if follow_is_public(scope=scope_name, key=key):
            if len(_PUBLIC_FOLLOWS) >= _PUBLIC_FOLLOWS_MAX:
                _PUBLIC_FOLLOWS.clear()
            _PUBLIC_FOLLOWS.add((scope_name, key))
            return True
        session = self.scope.get("session")
        unlocked = session.get(SESSION_KEY, {}) if session is not None else {}
        return live_follow_allowed(scope=scope_name, key=key, unlocked=unlocked)

    async def disconnect(self, code: int) -> None:
        current = hub()
        for group in getattr(self, "groups_joined", []):
            await current.leave(group, self)

    async def receive_json(self, content: dict, **kwargs) -> None:
        # Following more status keys on one socket (a composer may send several messages).
        if content.get("follow") and isinstance(content["follow"], str):
            group = realtime.payment_group(content["follow"])
            if group not in self.groups_joined and len(self.groups_joined) < MAX_STATUS_FOLLOWS:
                await self._join(group)
