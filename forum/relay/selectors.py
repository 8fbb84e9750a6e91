"""Reads the relay needs: stored events for a filter, one event's visibility, board prices.

Everything the relay serves goes through :func:`servable_events`, the one definition of
"a client may see this": published, materialised as a visible thread or reply, on a board
that is listed and not destroyed (private rooms are unlisted boards, so they never leak).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from forum.models import Author, Board, Event, EventTag, SiteSettings
from forum.nostr import KIND_DELETION, KIND_EDIT, KIND_PROFILE, KIND_REPLY, KIND_THREAD
from forum.relay.filters import Filter
from forum.relay.index import tag_key
from forum.relay.zaps import zap_receipts_for_filter
from forum.selectors.search import search_event_ids


def _posts_q() -> Q:
    """A visible thread or reply on a listed board (a reply in a hidden thread is hidden)."""
    return Q(
        Q(kind=KIND_THREAD, thread__is_hidden=False)
        | Q(kind=KIND_REPLY, post__is_hidden=False, post__thread__is_hidden=False),
        board__is_listed=True,
        board__destroyed_at__isnull=True,
        board__password_verifier="",  # a private room, even if a moderator ticked "listed"
    )


def _side_q(kinds: frozenset[int]) -> Q:
    """Profiles, deletions and edits (`forum.ingest.kinds`): an author's current kind 0; a
    kind 5 that retracted posts on listed boards; a kind 1010 whose post is served."""
    q = Q(pk__in=[])
    if KIND_PROFILE in kinds:
        current = Author.objects.filter(profile_ref=OuterRef("event_id"))
        q |= Q(Exists(current), kind=KIND_PROFILE)  # one index probe per kind 0 row
    if KIND_DELETION in kinds:
        retracted = Event.objects.filter(
            deleted_by_ref=OuterRef("event_id"),
            board__is_listed=True,
            board__password_verifier="",
            board__destroyed_at__isnull=True,
        )
        q |= Q(Exists(retracted), kind=KIND_DELETION)
    if KIND_EDIT in kinds:
        # Correlated (one probe of the unique event id per edit row), never a list of every
        # visible post built for each query.
        served = Event.objects.filter(
            _posts_q(), state=Event.State.PUBLISHED, event_id=OuterRef("target_ref")
        )
        q |= Q(Exists(served), kind=KIND_EDIT)
    return q


SIDE_KINDS = frozenset({KIND_PROFILE, KIND_DELETION, KIND_EDIT})


def servable_events(kinds: frozenset[int] | None = None) -> QuerySet[Event]:
    """Published, visible forum events on listed boards; a reply in a hidden thread is hidden;
    and the side kinds that go with them (only those of `kinds` when given)."""
    side = SIDE_KINDS if kinds is None else SIDE_KINDS & kinds
    visible = _posts_q() | _side_q(side) if side else _posts_q()
    return Event.objects.filter(visible, state=Event.State.PUBLISHED)


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: ``raw`` is sent verbatim; ``id`` and ``created_at`` order it."""

    raw: str
    id: str
    created_at: int

    @cached_property
    def data(self) -> dict[str, Any]:
        """The parsed event (for a caller that needs more than the id and the time)."""
        return json.loads(self.raw)


# The kinds this relay serves: a filter for others matches nothing, with no query at all.
SERVED_KINDS = frozenset({KIND_THREAD, KIND_REPLY}) | SIDE_KINDS


def _tagged(keys: list[str]) -> RawSQL:
    """Ids of the events with any of these tag keys: one index lookup per key.

    The keys travel as one parameter (a PostgreSQL array, a JSON array that SQLite's
    json_each unpacks) rather than one parameter each: building and binding a 1,000-item IN
    list cost the ORM more Python time than the lookup itself, time the relay's threads
    would hold the GIL for while the site's event loop waits.
    """
    q = connection.ops.quote_name
    select = f"SELECT {q('event_id')} FROM {q(EventTag._meta.db_table)} WHERE {q('key')}"
    if connection.vendor == "postgresql":
        return RawSQL(f"{select} = ANY(%s)", [keys])
    if connection.vendor == "sqlite":
        return RawSQL(f"{select} IN (SELECT value FROM json_each(%s))", [json.dumps(keys)])
    return RawSQL(f"{select} IN ({', '.join(['%s'] * len(keys))})", keys)  # anything else


def events_for_filter(flt: Filter, *, limit: int) -> list[StoredEvent]:
    """Stored events matching ``flt``, newest first, ties by lowest id: exactly one query.

    Every condition is exact in SQL, so LIMIT counts only real matches and nothing is parsed
    or re-checked in Python: ``ids``/``authors``/``kinds`` and the time bounds are column
    conditions, ``#h`` is the board's slug, and any other tag letter is a set-membership
    lookup in the tag index (``forum.relay.index``), one ``key IN (...)`` per letter. Its
    cost grows with the number of values and of matching rows, never with the size of the
    stored JSON or the length of a value.
    """
    if limit <= 0:
        return []
    searched = search_event_ids(flt.search) if flt.search is not None else None
    qs = filter_queryset(flt, searched=searched)
    if qs is None:
        return []
    if searched is not None:
        return _best_first(qs, searched, limit=limit)
    rows = qs.order_by("-created_at", "event_id").values_list("raw_json", "event_id", "created_at")
    return [StoredEvent(*row) for row in rows[:limit]]


def _best_first(qs: QuerySet[Event], ranked: list[str], *, limit: int) -> list[StoredEvent]:
    """NIP-50: the filter's matches in the search's order (best first), `limit` of them (two
    queries: which ranked ids pass the filter's other conditions, then their JSON)."""
    position = {event_id: i for i, event_id in enumerate(ranked)}
    passing = sorted(qs.values_list("event_id", flat=True), key=position.__getitem__)[:limit]
    rows = Event.objects.filter(event_id__in=passing).values_list(
        "raw_json", "event_id", "created_at"
    )
    found = {row[1]: StoredEvent(*row) for row in rows}
    return [found[event_id] for event_id in passing if event_id in found]


def filter_queryset(flt: Filter, *, searched: list[str] | None = None) -> QuerySet[Event] | None:
    """The servable events matching ``flt`` (None: nothing can match, so no query at all).

    A NIP-50 ``search`` keeps the events among the best matches of the forum's search
    (``searched`` when the caller already asked it, else asked here)."""
    if not flt.can_match:
        return None
    if flt.kinds is not None and flt.kinds.isdisjoint(SERVED_KINDS):
        return None
    qs = servable_events(None if flt.kinds is None else flt.kinds & SERVED_KINDS)
    if flt.ids is not None:
        qs = qs.filter(event_id__in=flt.ids)
    if flt.authors is not None:
        qs = qs.filter(pubkey__in=flt.authors)
    if flt.kinds is not None:
        qs = qs.filter(kind__in=flt.kinds & SERVED_KINDS)
    if flt.since is not None:
        qs = qs.filter(created_at__gte=flt.since)
    if flt.until is not None:
        qs = qs.filter(created_at__lte=flt.until)
    for letter, values in flt.tags:
        if letter == "h":
            # The board tag: the core files each event under the board its `h` tag names.
            qs = qs.filter(board__slug__in=values)
            continue
        qs = qs.filter(pk__in=_tagged(sorted(tag_key(letter, value) for value in values)))
    if flt.search is not None:
        ids = searched if searched is not None else search_event_ids(flt.search)
        qs = qs.filter(event_id__in=ids)
    return qs


# Zap receipts counted by reading their ids (they are few; a count past this is a floor).
MAX_COUNTED_RECEIPTS = 10_000


def count_for_filters(filters: list[Filter], *, time_limit: float | None = None) -> int:
    """NIP-45: how many servable events match any of ``filters`` (each counted once, limits
    ignored), zap receipts included: one query for the forum's events, one per filter that
    can match a receipt, within `time_limit` seconds (else `QueryTooSlow`)."""
    matching = [qs for qs in (filter_queryset(flt) for flt in filters) if qs is not None]
    either = Q()
    for qs in matching:
        either |= Q(pk__in=qs.values("pk"))
    with _time_limit(time_limit):
        count = Event.objects.filter(either).count() if matching else 0
        receipts = {
            row[1]
            for flt in filters
            for row in zap_receipts_for_filter(flt, limit=MAX_COUNTED_RECEIPTS)
        }
    return count + len(receipts)


class QueryTooSlow(Exception):
    """The stored query ran past its time limit and was stopped by the database."""


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Stop the queries run inside after `seconds`: a backstop for a plan that turns out
    costly (PostgreSQL's statement_timeout; on SQLite a progress handler that interrupts)."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + seconds
    try:
        if connection.vendor == "postgresql":
            with transaction.atomic(), connection.cursor() as cursor:
                milliseconds = str(max(1, int(seconds * 1000)))
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [milliseconds])
                yield
        elif connection.vendor == "sqlite":
            connection.ensure_connection()
            sqlite = connection.connection
            sqlite.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
            try:
                yield
            finally:
                sqlite.set_progress_handler(None, 0)
        else:
            yield
    except DatabaseError as exc:
        if time.monotonic() >= deadline:
            raise QueryTooSlow(f"stopped after {seconds:g} s") from exc
        raise


def events_for_filters(
    filters: list[tuple[Filter, int]], *, time_limit: float | None = None
) -> list[StoredEvent]:
    """Union of several filters (OR), each with its own limit; one query per filter, all
    within `time_limit` seconds (else `QueryTooSlow`)."""
    seen: dict[str, StoredEvent] = {}
    with _time_limit(time_limit):
        for flt, limit in filters:
            for event in events_for_filter(flt, limit=limit):
                seen.setdefault(event.id, event)
            if flt.search is not None:
                continue  # receipts have no text to search
            # NIP-57 zap receipts, signed by the relay's key (forum.relay.zaps).
            for row in zap_receipts_for_filter(flt, limit=limit):
                seen.setdefault(row[1], StoredEvent(*row))
    if any(flt.search is not None for flt, _ in filters):
        return list(seen.values())  # NIP-50: best matches first, as the search ranked them
    return sorted(seen.values(), key=lambda event: (-event.created_at, event.id))


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


def side_prices() -> dict[int, int]:
    """The console's prices now of a profile, a deletion and an edit (kind -> msat), which
    belong to no board. One query."""
    site = SiteSettings.current()
    return {
        KIND_PROFILE: site.profile_price_msat,
        KIND_DELETION: site.deletion_price_msat,
        KIND_EDIT: site.edit_price_msat,
    }


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
