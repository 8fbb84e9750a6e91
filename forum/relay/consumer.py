"""`RelayConsumer`: the NIP-01 websocket at ``/relay`` for any Nostr client.

Read-only: ``REQ`` runs stored queries (one per filter) then follows the public feed group for
live events; ``CLOSE`` ends a subscription; an ``EVENT`` from a client is answered ``OK false``
with a ``blocked:`` message saying how to publish by keysend and at what price. Like every
consumer here it only relays: reads go through ``forum.relay.selectors``.

Every database read of the relay runs on its own few threads (`relay_read`), not through
Channels' ``database_sync_to_async``: that one runs every consumer's database calls on a
single shared thread, so relay queries queued there held up every websocket handshake of the
site (the session and user lookups of ``/ws/...`` wait on that thread too). A flood of REQs
now queues only behind other relay reads.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import close_old_connections

from forum import nostr, realtime
from forum.relay import selectors, writes
from forum.relay.filters import (
    Filter,
    FilterError,
    effective_limit,
    matches_any,
    parse_filter,
)
from forum.relay.info import HOW_TO_POST_PATH, RelayLimits

log = logging.getLogger(__name__)

# The id of an EVENT too large to read: its answer is an OK false the client waits for.
_HUGE_EVENT_ID = re.compile(r'\s*\[\s*"EVENT"\s*,\s*\{\s*"id"\s*:\s*"([0-9a-f]{64})"')

# How long an EVENT answer may wait for the node's pubkey before it is sent without it.
NODE_LOOKUP_TIMEOUT_SECONDS = 2.0
# A client's filters are logged (when their query fails) up to this many characters.
LOGGED_FILTER_CHARS = 300

_T = TypeVar("_T")
_relay_threads = ThreadPoolExecutor(
    max_workers=int(getattr(settings, "RELAY_QUERY_THREADS", 2)),
    thread_name_prefix="relay-read",
)


def _with_connection(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    # What database_sync_to_async does around each call: drop connections that are broken
    # or past CONN_MAX_AGE, before and after.
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def relay_read(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run a (sync) database read on the relay's own threads."""
    call = functools.partial(_with_connection, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_relay_threads, call)


def excerpt(value: Any, limit: int = LOGGED_FILTER_CHARS) -> str:
    """A client payload for a log line: its first `limit` characters and its full size."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


@dataclass
class Subscription:
    filters: list[Filter]
    # Ids already sent as stored events: a publish that raced the stored query is queued for
    # us while the query runs and must not arrive a second time as a live event.
    sent: set[str] = field(default_factory=set)


def _dumps(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate a client sent as a JSON escape (in a subscription or event id) cannot
        # go out raw in a UTF-8 text frame; escaped, it echoes back exactly as it came in.
        return json.dumps(value, separators=(",", ":"))
    return text


class RelayConsumer(AsyncWebsocketConsumer):
    """One Nostr client connection; subscriptions live only as long as the socket."""

    groups = [realtime.PUBLIC_FEED_GROUP]

    async def connect(self) -> None:
        realtime.note_consumer_loop()
        self.limits = RelayLimits.from_settings()
        self.subscriptions: dict[str, Subscription] = {}
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # EVENTs still waiting for their verdict: the charge stands and is judged anyway.
        for task in list(getattr(self, "_waits", ())):
            task.cancel()

    # --- sending -----------------------------------------------------------------------------

    async def send_message(self, *parts: Any) -> None:
        await self.send(text_data=_dumps(list(parts)))

    async def send_event(self, subid: str, raw: str) -> None:
        # The stored JSON goes out verbatim: it is what the author signed, byte for byte.
        await self.send(text_data=f'["EVENT",{_dumps(subid)},{raw}]')

    async def notice(self, text: str) -> None:
        await self.send_message("NOTICE", text)

    async def closed(self, subid: str, text: str) -> None:
        await self.send_message("CLOSED", subid, text)

    # --- receiving ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.notice("invalid: binary messages are not supported, send JSON text")
            return
        size = len(text_data.encode("utf-8"))
        if size > self.limits.max_message_length:
            huge = _HUGE_EVENT_ID.match(text_data[:300])
            if huge is not None:  # an EVENT: the client waits for an OK on its id
                await self.send_message(
                    "OK",
                    huge.group(1),
                    False,
                    f"invalid: event message is {size} bytes, the limit is"
                    f" {self.limits.max_message_length}",
                )
                return
            await self.notice(
                f"invalid: message is {size} bytes, the limit is {self.limits.max_message_length}"
            )
            return
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.notice("invalid: message is not valid JSON")
            return
        if not isinstance(message, list) or not message or not isinstance(message[0], str):
            await self.notice("invalid: a message is a JSON array starting with its type")
            return
        verb = message[0]
        if verb == "REQ":
            await self.handle_req(message)
        elif verb == "CLOSE":
            await self.handle_close(message)
        elif verb == "EVENT":
            await self.handle_event(message)
        elif verb == "COUNT":
            await self.handle_count(message)
        else:
            await self.notice(f"unsupported: message type {verb[:20]!r} is not supported")

    async def _subid(self, message: list[Any]) -> str | None:
        """The subscription id of a REQ or COUNT, or None once the client is told why not."""
        verb = message[0]
        if len(message) < 2 or not isinstance(message[1], str) or not message[1]:
            await self.notice(f"invalid: {verb} needs a non-empty string subscription id")
            return None
        subid: str = message[1]
        limit = self.limits.max_subid_length
        if len(subid) > limit:
            await self.closed(subid, f"invalid: subscription id longer than {limit} characters")
            return None
        return subid

    async def _raw_filters(self, subid: str, message: list[Any]) -> list[Any] | None:
        """The filters of a REQ or COUNT, at least one and at most the limit, or None once
        the client is told why not."""
        verb = message[0]
        raw_filters = message[2:]
        if not raw_filters:
            await self.closed(subid, f"invalid: {verb} needs at least one filter")
            return None
        max_filters = self.limits.max_filters
        if len(raw_filters) > max_filters:
            await self.closed(
                subid,
                f"invalid: {len(raw_filters)} filters in one {verb}, the limit is {max_filters}",
            )
            return None
        return raw_filters

    async def _parse_filters(self, subid: str, raw_filters: list[Any]) -> list[Filter] | None:
        """The parsed filters, or None once the client is told which one is wrong."""
        max_values = self.limits.max_filter_values
        try:
            return [parse_filter(raw, max_values=max_values) for raw in raw_filters]
        except FilterError as exc:
            await self.closed(subid, str(exc))
            return None

    async def handle_req(self, message: list[Any]) -> None:
        limits = self.limits
        subid = await self._subid(message)
        if subid is None:
            return
        # A REQ with an id already in use replaces that subscription (NIP-01), so it does not
        # count against the limit; if the new one is refused the old one is gone as well.
        previous = self.subscriptions.pop(subid, None)
        raw_filters = await self._raw_filters(subid, message)
        if raw_filters is None:
            return
        if previous is None and len(self.subscriptions) >= limits.max_subscriptions:
            await self.closed(
                subid,
                f"rate-limited: {limits.max_subscriptions} subscriptions are open on this"
                " connection; CLOSE one first",
            )
            return
        filters = await self._parse_filters(subid, raw_filters)
        if filters is None:
            return

        subscription = Subscription(filters)
        self.subscriptions[subid] = subscription
        plan = [
            (
                flt,
                effective_limit(
                    flt, default_limit=limits.default_limit, max_limit=limits.max_limit
                ),
            )
            for flt in filters
        ]
        try:
            stored = await relay_read(
                selectors.events_for_filters, plan, time_limit=limits.query_seconds
            )
        except selectors.QueryTooSlow:
            log.warning(
                "relay query stopped after %s s: %s", limits.query_seconds, excerpt(raw_filters)
            )
            self.subscriptions.pop(subid, None)
            await self.closed(
                subid,
                f"error: the stored query took over {limits.query_seconds:g} s and was stopped;"
                " ask for fewer events or narrower filters",
            )
            return
        except Exception:
            log.exception("relay query failed for %s", excerpt(raw_filters))
            self.subscriptions.pop(subid, None)
            await self.closed(subid, "error: the stored query failed, try again later")
            return
        for event in stored:
            subscription.sent.add(event.id)
            await self.send_event(subid, event.raw)
        await self.send_message("EOSE", subid)

    async def handle_close(self, message: list[Any]) -> None:
        if len(message) < 2 or not isinstance(message[1], str):
            await self.notice("invalid: CLOSE needs a subscription id")
            return
        # NIP-01 defines no answer to CLOSE; closing an unknown id is not an error.
        self.subscriptions.pop(message[1], None)

    async def handle_count(self, message: list[Any]) -> None:
        """NIP-45: ``["COUNT", id, filter…]`` -> ``["COUNT", id, {"count": n}]``, over the
        filters a REQ takes (the same parsing and limits), every matching event counted once."""
        limits = self.limits
        subid = await self._subid(message)
        if subid is None:
            return
        raw_filters = await self._raw_filters(subid, message)
        if raw_filters is None:
            return
        filters = await self._parse_filters(subid, raw_filters)
        if filters is None:
            return
        try:
            count = await relay_read(
                selectors.count_for_filters, filters, time_limit=limits.query_seconds
            )
        except selectors.QueryTooSlow:
            await self.closed(
                subid,
                f"error: the count took over {limits.query_seconds:g} s and was stopped;"
                " ask with narrower filters",
            )
            return
        except Exception:
            log.exception("relay count failed for %s", excerpt(raw_filters))
            await self.closed(subid, "error: the count failed, try again later")
            return
        await self.send_message("COUNT", subid, {"count": count})

    async def handle_event(self, message: list[Any]) -> None:
        """An EVENT paid from its author's balance (``forum.relay.writes``): refused at once
        with a reason, or charged, judged in settle order, and answered once judged."""
        obj = message[1] if len(message) > 1 else None
        event_id = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(event_id, str) or not event_id:
            await self.notice("invalid: EVENT needs an event object with an id")
            return
        limits = self.limits
        # Before any signature check: a flood costs this connection a clock read per EVENT.
        if not self._bucket().take():
            await self.send_message(
                "OK",
                event_id,
                False,
                f"rate-limited: over {limits.events_per_second:g} EVENTs a second on this"
                " connection; slow down",
            )
            return
        waits = self._wait_tasks()
        if len(waits) >= limits.max_pending_writes:
            await self.send_message(
                "OK",
                event_id,
                False,
                f"rate-limited: {len(waits)} EVENTs of this connection are still being judged;"
                " wait for their OK first",
            )
            return
        try:
            event = nostr.parse_event(obj, verify=True)
        except nostr.EventError as exc:
            await self.send_message("OK", event_id, False, f"invalid: {exc.message}")
            return
        if event.id in self._in_flight():
            await self.send_message(
                "OK", event.id, False, "duplicate: this event is already being judged"
            )
            return
        node_pubkey = await self._node_pubkey()
        try:
            answer = await relay_read(
                writes.event_submit, event, node_pubkey=node_pubkey, base_url=self.base_url()
            )
        except Exception:
            log.exception("relay write failed for %s", event.id)
            await self.send_message("OK", event.id, False, "error: could not take the event now")
            return
        if not answer.payment_hash:
            await self.send_message("OK", event.id, answer.accepted, answer.message)
            return
        # Charged: its verdict comes from the reconciler, in settle order. The socket keeps
        # reading meanwhile; the OK follows when the verdict is in.
        self._in_flight().add(event.id)
        task = asyncio.ensure_future(self._answer_when_judged(event.id, answer.payment_hash))
        waits.add(task)
        task.add_done_callback(waits.discard)

    async def _answer_when_judged(self, event_id: str, payment_hash: str) -> None:
        try:
            await relay_read(_reconcile_queue, payment_hash)
            deadline = asyncio.get_running_loop().time() + self.limits.write_wait_seconds
            pause = 0.02
            while True:
                answer = await relay_read(writes.spend_outcome, payment_hash)
                if answer is not None:
                    await self.send_message("OK", event_id, answer.accepted, answer.message)
                    return
                if asyncio.get_running_loop().time() >= deadline:
                    await self.send_message(
                        "OK",
                        event_id,
                        False,
                        f"error: charged and still being judged after"
                        f" {self.limits.write_wait_seconds:g} s; if it is refused nothing is"
                        f" taken; its status: {self.base_url()}/api/status/{event_id}",
                    )
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.25)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("waiting for the verdict on %s failed", event_id)
            await self.send_message(
                "OK", event_id, False, "error: the verdict could not be read; check its status"
            )
        finally:
            self._in_flight().discard(event_id)

    def _bucket(self) -> writes.EventBucket:
        bucket = getattr(self, "_event_bucket", None)
        if bucket is None:
            bucket = writes.EventBucket(
                rate=self.limits.events_per_second, burst=self.limits.event_burst
            )
            self._event_bucket = bucket
        return bucket

    def _wait_tasks(self) -> set[asyncio.Future[None]]:
        if not hasattr(self, "_waits"):
            self._waits: set[asyncio.Future[None]] = set()
        return self._waits

    def _in_flight(self) -> set[str]:
        if not hasattr(self, "_judging"):
            self._judging: set[str] = set()
        return self._judging

    async def _node_pubkey(self) -> str | None:
        try:
            # Not on the shared thread-sensitive worker: a hung RPC to lnd there would stall
            # every consumer's database reads behind it. This lookup touches no database.
            return await asyncio.wait_for(
                sync_to_async(selectors.forum_node_pubkey, thread_sensitive=False)(),
                timeout=NODE_LOOKUP_TIMEOUT_SECONDS,
            )
        except TimeoutError:
            return None

    def base_url(self) -> str:
        return self.how_to_url().removesuffix(HOW_TO_POST_PATH)

    def how_to_url(self) -> str:
        headers = dict(self.scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if not host:
            return HOW_TO_POST_PATH
        scheme = "https" if self.scope.get("scheme") == "wss" else "http"
        return f"{scheme}://{host}{HOW_TO_POST_PATH}"

    # --- channel layer -----------------------------------------------------------------------

    async def post_published(self, message: dict[str, Any]) -> None:
        """A publish on the public feed: deliver it to each open subscription it matches."""
        if not self.subscriptions:
            return
        payload = message.get("payload") or {}
        event_id = payload.get("event_id") or payload.get("id")
        if not isinstance(event_id, str):
            return
        data = _event_from_payload(payload)
        raw: str | None = None
        if data is None:
            # The broadcast did not carry the event: read it (and its visibility) once.
            raw = await relay_read(selectors.servable_event_raw, event_id)
            if raw is None:
                return
            data = json.loads(raw)
        targets = [
            subid
            for subid, sub in self.subscriptions.items()
            if event_id not in sub.sent and matches_any(sub.filters, data)
        ]
        if not targets:
            return
        if raw is None:
            # Never trust the broadcast alone for visibility: an unlisted board (private room)
            # or a post hidden in the meantime must not reach a relay client. One query, and
            # only for events some subscription on this socket actually wants.
            raw = await relay_read(selectors.servable_event_raw, event_id)
            if raw is None:
                return
        for subid in targets:
            subscription = self.subscriptions.get(subid)
            if subscription is not None:
                await self.send_event(subid, raw)

    async def zap_receipt(self, message: dict[str, Any]) -> None:
        """A new NIP-57 zap receipt (signed by the relay's key): to each subscription it matches."""
        if not self.subscriptions:
            return
        raw = (message.get("payload") or {}).get("raw")
        if not isinstance(raw, str):
            return
        try:
            data = json.loads(raw)
        except ValueError:
            return
        for subid, sub in list(self.subscriptions.items()):
            if data.get("id") not in sub.sent and matches_any(sub.filters, data):
                sub.sent.add(data["id"])
                await self.send_event(subid, raw)

    async def relay_event(self, message: dict[str, Any]) -> None:
        """A profile, deletion or edit published (`forum.ingest.kinds_publish`): delivered like
        a post, after the same visibility re-check."""
        await self.post_published(message)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # The feed group may carry message types the relay has no use for (now or later);
        # Channels would raise on a type without a handler and drop the client's socket.
        if hasattr(self, get_handler_name(message)):
            await super().dispatch(message)


def _reconcile_queue(payment_hash: str) -> None:
    """Queue a reconcile batch for a charge, as the listener's caller does for a payment
    (eager without a broker: the batch runs here, on the relay's thread)."""
    from forum import tasks
    from forum.ingest.outcome import Recorded

    tasks.recorded_handle(Recorded(payment_hashes=(payment_hash,)))


def _event_from_payload(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The event object if the broadcast carries it (as JSON text or object), else None."""
    for key in ("raw_json", "raw", "event"):
        value = payload.get(key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if isinstance(value, dict):
            try:
                return nostr.parse_event(value).to_dict()
            except nostr.EventError:
                return None
    return None
