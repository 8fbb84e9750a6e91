"""Reads the relay needs: stored events for a filter, one event's visibility, board prices.

Everything the relay serves goes through :func:`servable_events`, the one definition of
"a client may see this": published, materialised as a visible thread or reply, on a board
that is listed and not destroyed (private rooms are unlisted boards, so they never leak).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Max, Q, QuerySet

from forum.models import Board, Event
from forum.nostr import KIND_REPLY, KIND_THREAD
from forum.relay.filters import Filter, matches, newest_first_key, tag_needle


def servable_events() -> QuerySet[Event]:
    """Published, visible forum events on listed boards; a reply in a hidden thread is hidden."""
    return Event.objects.filter(
        Q(kind=KIND_THREAD, thread__is_hidden=False)
        | Q(kind=KIND_REPLY, post__is_hidden=False, post__thread__is_hidden=False),
        state=Event.State.PUBLISHED,
        board__is_listed=True,
        board__destroyed_at__isnull=True,
        board__password_verifier="",  # a private room, even if a moderator ticked "listed"
    )


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored (``raw`` is sent verbatim) plus its parsed form for matching."""

    raw: str
    data: dict[str, Any]


def events_for_filter(flt: Filter, *, limit: int) -> list[StoredEvent]:
    """Stored events matching ``flt``, newest first, ties by lowest id: exactly one query.

    Tag conditions run in SQL (``h`` as the board's slug, other letters as an exact substring
    of the canonical JSON, see ``tag_needle``) so that LIMIT counts only real matches. Rows are
    re-checked with the pure matcher, because SQLite's LIKE ignores ASCII case.
    """
    if limit <= 0 or not flt.can_match:
        return []
    qs = servable_events()
    if flt.ids is not None:
        qs = qs.filter(event_id__in=flt.ids)
    if flt.authors is not None:
        qs = qs.filter(pubkey__in=flt.authors)
    if flt.kinds is not None:
        qs = qs.filter(kind__in=flt.kinds)
    if flt.since is not None:
        qs = qs.filter(created_at__gte=flt.since)
    if flt.until is not None:
        qs = qs.filter(created_at__lte=flt.until)
    for letter, values in flt.tags:
        if letter == "h":
            # The board tag: the core files each event under the board its `h` tag names.
            qs = qs.filter(board__slug__in=values)
            continue
        any_value = Q()
        for value in sorted(values):
            any_value |= Q(raw_json__contains=tag_needle(letter, value))
        qs = qs.filter(any_value)
    rows = qs.order_by("-created_at", "event_id").values_list("raw_json", flat=True)[:limit]
    stored = [StoredEvent(raw, json.loads(raw)) for raw in rows]
    return [event for event in stored if matches(flt, event.data)]


def events_for_filters(filters: list[tuple[Filter, int]]) -> list[StoredEvent]:
    """Union of several filters (OR), each with its own limit; one query per filter."""
    seen: dict[str, StoredEvent] = {}
    for flt, limit in filters:
        for event in events_for_filter(flt, limit=limit):
            seen.setdefault(event.data["id"], event)
    return sorted(seen.values(), key=lambda event: newest_first_key(event.data))


def servable_event_raw(event_id: str) -> str | None:
    """The stored JSON of one event if a client may see it now, else None (one query)."""
    return servable_events().filter(event_id=event_id).values_list("raw_json", flat=True).first()


# --- prices and limits for NIP-11 and the "how to publish" answer ----------------------------


@dataclass(frozen=True)
class BoardPrice:
    slug: str
    thread_price_msat: int
    reply_price_msat: int
    escalation_window_seconds: int
    escalation_factor: int


def listed_board_prices() -> list[BoardPrice]:
    """Every listed board's prices, default board (lowest position) first. One query."""
    rows = Board.objects.listed().values_list(
        "slug",
        "thread_price_msat",
        "reply_price_msat",
        "escalation_window_seconds",
        "escalation_factor",
    )
    return [BoardPrice(*row) for row in rows]


def max_content_length() -> int | None:
    """The largest content any listed board accepts (NIP-11 limits are relay-wide)."""
    return Board.objects.listed().aggregate(longest=Max("max_content_length"))["longest"]


# --- the forum's node ------------------------------------------------------------------------

_NODE_PUBKEY_TTL_SECONDS = 60.0
_node_pubkey_cache: tuple[float, str | None] | None = None
# One lookup at a time, off the caller's thread, so that a caller can stop waiting for it.
_node_lookup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-node-lookup")


def _node_pubkey_cached() -> tuple[bool, str | None]:
    cached = _node_pubkey_cache
    if cached is not None and time.monotonic() - cached[0] < _NODE_PUBKEY_TTL_SECONDS:
        return True, cached[1]
    return False, None


def _node_pubkey_lookup() -> str | None:
    global _node_pubkey_cache
    # Callers that queued behind a slow lookup find its result here.
    found, pubkey = _node_pubkey_cached()
    if found:
        return pubkey
    from forum.services import node

    try:
        if settings.SIMNET_ENABLED and not (settings.LND_GRPC_HOST or settings.LND_CONNECT):
            pubkey = node.simnet_nodes().get(settings.LND_NODE_NAME, {}).get("pubkey") or None
        else:
            pubkey = node.client().get_info().identity_pubkey or None
    except Exception:  # not configured, unreachable, bad credentials: answers omit it
        pubkey = None
    _node_pubkey_cache = (time.monotonic(), pubkey)
    return pubkey


def forum_node_pubkey(*, wait_seconds: float = 2.0) -> str | None:
    """The pubkey keysends go to, or None when the node cannot tell us right now.

    Cached for a minute, failures too, and never waited on for more than ``wait_seconds``: a
    relay answer or the NIP-11 document must not hang on a dead node (lnd RPCs time out only
    after 15 s). With simnet the pubkey is in the simulator's nodes file, so no RPC at all.
    """
    found, pubkey = _node_pubkey_cached()
    if found:
        return pubkey
    try:
        return _node_lookup.submit(_node_pubkey_lookup).result(timeout=wait_seconds)
    except FuturesTimeout:
        return None


def reset_node_pubkey_cache() -> None:
    global _node_pubkey_cache
    _node_pubkey_cache = None
