"""One batch's view of the forum and its pending writes: `Lookups` read in bulk, rows in memory.

`BatchState.prime` reads what a batch of decoded messages will ask about in a few queries
(their events, threads, posts, authors, bans, recent acceptances, parts, board changes); the
reconciler then works on those objects in memory, in settle order, so a thread paid at row 3
is there for a reply paid at row 7. `flush` writes everything at the end: bulk inserts in
dependency order (events, threads, posts by depth, parts, rejections) and one UPDATE per
counter table with `Case` deltas, so counters still commute with moderation's own deltas.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Case, DateTimeField, Max, Model, Q, Value, When
from django.utils import timezone

from forum.ingest.lookups import board_settings_at, site_changes_after, site_settings_at
from forum.ingest.rows import NoteRow, rows_insert, rows_update, values_insert
from forum.ingest.tags import indexed_keys
from forum.models import (
    Author,
    Ban,
    Board,
    Event,
    EventTag,
    MessagePart,
    ModerationAction,
    Notification,
    Post,
    Rejection,
    SiteSettings,
    Thread,
)
from forum.ranking import hot_score, threads_hot_refresh

EVENT_FIELDS = (
    "board",
    "state",
    "waiting_for",
    "paid_msat",
    "price_msat",
    "settled_at",
    "settle_index",
    "root_ref",
    "parent_ref",
    "accepted_at",
    "accepted_settle_index",
    "target_ref",
    "deleted_by_ref",
    "deleted_at",
)


@dataclass
class MadeAhead:
    """What publishing needs from each event alone, made by the reconciler's look-ahead
    outside the sequencer, by event id (the batch computes anything missing itself)."""

    index_keys: dict[str, frozenset[str]] = field(default_factory=dict)
    mentions: dict[str, tuple[str, ...]] = field(default_factory=dict)


class BatchState:
    """`Lookups` for one batch, plus the rows and counter deltas it will write."""

    def __init__(self, made: MadeAhead | None = None) -> None:
        self.made = made or MadeAhead()
        self.boards: dict[str, Board] = {b.slug: b for b in Board.objects.all()}
        self._board_pks: dict[int, Board] = {}
        self._board_changes: dict[str, list[ModerationAction]] = defaultdict(list)
        self._changes_since: datetime | None = None
        self._events: dict[str, Event | None] = {}
        self._threads: dict[str, Thread | None] = {}
        self._posts: dict[str, Post | None] = {}
        self._authors: dict[str, Author] = {}
        self._bans: dict[str, list[Ban]] = {}
        self._accepted: dict[tuple[str, int], list[tuple[datetime, int | None]]] = {}
        self._accepted_since: dict[str, datetime] = {}
        self._parts: dict[str, dict[int, MessagePart]] = {}
        self._numbers: dict[object, int] = {}  # thread -> its last post number
        # Pending writes. (bulk_create takes a related object's id once it has one.)
        self.new_events: list[Event] = []
        self.dirty_events: dict[int, Event] = {}
        self.new_threads: list[Thread] = []
        self.new_posts: list[Post] = []
        self.new_parts: list[MessagePart] = []
        self.new_rejections: list[Rejection] = []
        # The relay's tag index of published events (see `forum.relay.index`): (event, key).
        self.new_tags: list[tuple[Event, str]] = []
        self.new_notes: list[NoteRow] = []  # inbox rows (`publish.notifications_build`)
        self._resolutions: list[tuple[list[str], datetime, str, Event | None, str]] = []
        self._deltas: dict[type[Model], dict[int, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self._latest: dict[type[Model], dict[int, dict[str, datetime]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        self.touched_threads: set[int] = set()  # existing threads whose totals moved
        # Kinds 0/5/1010 (`forum.ingest.kinds`): read only when a batch has one.
        self._site: tuple[SiteSettings, list[ModerationAction], datetime] | None = None
        self.profiles_changed: dict[str, Author] = {}
        self.hidden_threads: dict[int, Thread] = {}
        self.hidden_posts: dict[int, Post] = {}
        self.edited_threads: dict[int, Thread] = {}
        self.edited_posts: dict[int, Post] = {}

    # -- priming ------------------------------------------------------------------------------

    def prime(
        self,
        *,
        event_ids: Iterable[str],
        pubkeys: Iterable[str],
        part_ids: Iterable[str],
        reply_threads: Iterable[str],
        earliest: datetime | None,
    ) -> None:
        """Read what the batch will ask about; anything missed is read on demand later."""
        ids = sorted(set(event_ids) - self._events.keys())
        if ids:
            found = {e.event_id: e for e in Event.objects.filter(event_id__any=ids)}
            for event in found.values():
                self._board_attach(event)
            for event_id in ids:
                self._events[event_id] = found.get(event_id)
            self._prime_published(ids, {e.pk: e for e in found.values()})
        locked = sorted(set(reply_threads))
        if locked:
            # The threads that take replies in this batch, locked in id order (moderation's
            # hide and lock take the same row locks, so their counter deltas never interleave).
            list(
                Thread.objects.select_for_update(of=("self",))
                .filter(event__event_id__any=locked)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        self._prime_authors(pubkeys, earliest)
        self._prime_parts(part_ids)
        if earliest is not None:
            self._prime_board_changes(earliest)

    def _prime_published(self, ids: list[str], events: dict[int, Event]) -> None:
        """The threads and posts of `ids`, joined in memory to the event and board objects
        this batch already holds (one row object per row: fewer objects, and a change made
        through one is seen through all)."""
        found_threads: dict[str, Thread] = {}
        by_pk: dict[int, Thread] = {}
        for thread in Thread.objects.filter(event_id__any=list(events)):
            thread.event = events[thread.event_id]
            self._board_attach(thread)
            found_threads[thread.event.event_id] = by_pk[thread.pk] = thread
        posts = list(Post.objects.filter(event_id__any=list(events)))
        other = {p.thread_id for p in posts} - by_pk.keys()
        if other:  # a parent reply's thread that no reply of this batch names as its root
            for thread in Thread.objects.select_related("event").filter(pk__any=other):
                self._board_attach(thread)
                by_pk[thread.pk] = thread
        found_posts: dict[str, Post] = {}
        for post in posts:
            post.event, post.thread = events[post.event_id], by_pk[post.thread_id]
            self._board_attach(post)
            found_posts[post.event.event_id] = post
        for event_id in ids:
            self._threads.setdefault(event_id, found_threads.get(event_id))
            self._posts.setdefault(event_id, found_posts.get(event_id))
        # The last post number of every thread a reply of this batch may go to, in one query.
        pks = {t.pk for t in found_threads.values()} - {
            k for k in self._numbers if isinstance(k, int)
        }
        if pks:
            last = dict(
                Post.objects.filter(thread_id__any=pks)
                .values("thread_id")
                .annotate(n=Max("number"))
                .values_list("thread_id", "n")
            )
            for pk in pks:
                self._numbers[pk] = last.get(pk) or 0

    def _prime_authors(self, pubkeys: Iterable[str], earliest: datetime | None) -> None:
        wanted = sorted(set(pubkeys) - self._authors.keys())
        if wanted:
            for author in Author.objects.filter(pubkey__any=wanted):
                self._authors[author.pubkey] = author
            missing = [p for p in wanted if p not in self._authors]
            if missing:
                # Usually made already by `authors_ensure` before the batch took the sequencer.
                authors_ensure(missing)
                for author in Author.objects.filter(pubkey__any=missing):
                    self._authors[author.pubkey] = author
        self._prime_bans(pubkeys)
        since = (earliest or timezone.now()) - timedelta(seconds=self._longest_window())
        self._prime_accepted(pubkeys, since)

    def _prime_bans(self, pubkeys: Iterable[str]) -> None:
        wanted = sorted(set(pubkeys) - self._bans.keys())
        if not wanted:
            return
        for pubkey in wanted:
            self._bans[pubkey] = []
        for ban in Ban.objects.filter(pubkey__any=wanted, lifted_at__isnull=True):
            self._bans[ban.pubkey].append(ban)

    def _prime_accepted(self, pubkeys: Iterable[str], since: datetime) -> None:
        """Acceptances from `since` on; a pubkey read from a later moment gets the difference
        (so acceptances this batch noted in memory are kept)."""
        ranges: dict[datetime | None, list[str]] = defaultdict(list)
        for pubkey in set(pubkeys):
            primed = self._accepted_since.get(pubkey)
            if primed is None or since < primed:
                ranges[primed].append(pubkey)
                self._accepted_since[pubkey] = since
        for until, group in ranges.items():
            rows = Event.objects.filter(
                pubkey__any=group, accepted_at__gte=since, board__isnull=False
            )
            if until is not None:
                rows = rows.filter(accepted_at__lt=until)
            for pubkey, board_id, accepted_at, index in rows.values_list(
                "pubkey", "board_id", "accepted_at", "accepted_settle_index"
            ):
                self._accepted.setdefault((pubkey, board_id), []).append((accepted_at, index))

    def _longest_window(self) -> int:
        return max((b.escalation_window_seconds for b in self.boards.values()), default=0) + 60

    def _board_attach(self, row: Event | Thread | Post) -> None:
        """Point a row read without its board at this batch's board object (boards are few and
        read once per batch)."""
        if row.board_id is None:
            return
        board = self._boards_by_pk().get(row.board_id)
        if board is None:  # created after this batch read the boards
            board = Board.objects.get(pk=row.board_id)
            self.boards[board.slug] = board
        row.board = board

    def _boards_by_pk(self) -> dict[int, Board]:
        if len(self._board_pks) != len(self.boards):
            self._board_pks = {b.pk: b for b in self.boards.values()}
        return self._board_pks

    def _prime_parts(self, part_ids: Iterable[str]) -> None:
        wanted = sorted(set(part_ids) - self._parts.keys())
        if not wanted:
            return
        for event_id in wanted:
            self._parts[event_id] = {}
        for part in MessagePart.objects.select_related("ledger_entry").filter(event_id__any=wanted):
            self._parts[part.event_id].setdefault(part.index, part)

    def _prime_board_changes(self, earliest: datetime) -> None:
        if self._changes_since is not None and self._changes_since <= earliest:
            return
        self._changes_since = earliest
        self._board_changes.clear()
        for change in ModerationAction.objects.filter(
            action="board.update", target_type="board", created_at__gt=earliest
        ):
            self._board_changes[change.target_id].append(change)

    # -- Lookups ------------------------------------------------------------------------------

    def board(self, slug: str) -> Board | None:
        return self.boards.get(slug) if slug else None

    def board_as_of(self, board: Board, at: datetime) -> Board:
        if self._changes_since is None or at < self._changes_since:
            self._prime_board_changes(at)
        later = [c for c in self._board_changes.get(board.slug, ()) if c.created_at > at]
        return board_settings_at(board, later) if later else board

    def event(self, event_id: str) -> Event | None:
        if event_id not in self._events:
            self.prime(
                event_ids=[event_id], pubkeys=(), part_ids=(), reply_threads=(), earliest=None
            )
        return self._events[event_id]

    def thread(self, event_id: str) -> Thread | None:
        if event_id not in self._threads:
            self.event(event_id)
            self._threads.setdefault(event_id, None)
        return self._threads[event_id]

    def post(self, event_id: str) -> Post | None:
        if event_id not in self._posts:
            self.event(event_id)
            self._posts.setdefault(event_id, None)
        return self._posts[event_id]

    def thread_rows(self) -> dict[int, Thread]:
        """The saved threads this batch holds, by primary key (named, or a primed post's)."""
        rows = {t.pk: t for t in self._threads.values() if t is not None and t.pk is not None}
        for post in self._posts.values():
            if post is not None and post.thread.pk is not None:
                rows.setdefault(post.thread.pk, post.thread)
        return rows

    def active_ban(self, pubkey: str, at: datetime) -> Ban | None:
        if pubkey not in self._bans:  # asked once per row: primed already, almost always
            self._prime_bans([pubkey])
        active = [
            ban
            for ban in self._bans.get(pubkey, ())
            if ban.created_at <= at and (ban.expires_at is None or ban.expires_at > at)
        ]
        return max(active, key=lambda b: b.created_at, default=None)

    def accepted_times(
        self, pubkey: str, board_id: int, since: datetime
    ) -> list[tuple[datetime, int | None]]:
        primed = self._accepted_since.get(pubkey)
        if primed is None or since < primed:
            self._prime_accepted([pubkey], since)
        return self._accepted.get((pubkey, board_id), [])

    def site_as_of(self, at: datetime) -> SiteSettings:
        if self._site is None or at < self._site[2]:
            self._site = (SiteSettings.current(), site_changes_after(at), at)
        site, changes, _ = self._site
        return site_settings_at(site, [c for c in changes if c.created_at > at])

    # -- the batch's own changes --------------------------------------------------------------

    def author(self, pubkey: str, *, seen_at: datetime) -> Author:
        if pubkey not in self._authors:
            self._prime_authors([pubkey], seen_at)
        return self._authors[pubkey]

    def parts(self, event_id: str) -> dict[int, MessagePart]:
        if event_id not in self._parts:
            self._prime_parts([event_id])
        return self._parts[event_id]

    def event_known(self, event: Event) -> Event:
        """An event read outside `prime` (the same row object from then on)."""
        return self._events.setdefault(event.event_id, event) or event

    def event_add(self, event: Event) -> None:
        self._events[event.event_id] = event
        self.new_events.append(event)

    def event_changed(self, event: Event) -> None:
        if event.pk is not None:
            self.dirty_events[event.pk] = event

    def accepted_note(self, event: Event) -> None:
        if event.board_id is None and event.board is None:
            return
        board_id = event.board.pk if event.board is not None else event.board_id
        self._accepted.setdefault((event.pubkey, board_id), []).append(
            (event.accepted_at, event.accepted_settle_index)
        )

    def thread_add(self, thread: Thread) -> None:
        self._threads[thread.event.event_id] = thread
        self._numbers[_thread_key(thread)] = 0
        self.new_threads.append(thread)

    def tags_add(self, event: Event, tags: Iterable[Sequence[Any]]) -> None:
        """The relay's index rows of a published event (see `forum.relay.index`)."""
        keys = self.made.index_keys.get(event.event_id)
        self.new_tags.extend((event, key) for key in keys or indexed_keys(tags))

    def notes_add(self, rows: Iterable[NoteRow]) -> None:
        self.new_notes.extend(rows)

    def post_add(self, post: Post) -> None:
        self._posts[post.event.event_id] = post
        self.new_posts.append(post)

    def number_next(self, thread: Thread) -> int:
        key = _thread_key(thread)
        if key not in self._numbers:
            last = Post.objects.filter(thread_id=thread.pk).aggregate(n=Max("number"))["n"]
            self._numbers[key] = last or 0
        self._numbers[key] += 1
        return self._numbers[key]

    def reject_add(self, rejection: Rejection) -> Rejection:
        self.new_rejections.append(rejection)
        return rejection

    def resolve(
        self, *, reasons: list[str], at: datetime, resolution: str, event: Event | None = None,
        ref: str = "",
    ) -> None:  # fmt: skip
        """Mark an event's standing rejections (by row or by id) as resolved."""
        for rejection in self.new_rejections:
            mine = rejection.event is event if event is not None else rejection.event_ref == ref
            if mine and rejection.reason in reasons and rejection.resolved_at is None:
                rejection.resolved_at, rejection.resolution = at, resolution
        if event is None or event.pk is not None:
            self._resolutions.append((reasons, at, resolution, event, ref))

    def add(self, obj: Model, **deltas: int) -> None:
        """Counter deltas: straight onto an object this batch inserts, else kept for flush."""
        if obj.pk is None:
            for name, delta in deltas.items():
                setattr(obj, name, getattr(obj, name) + delta)
            return
        for name, delta in deltas.items():
            self._deltas[type(obj)][obj.pk][name] += delta
        if isinstance(obj, Thread):
            self.touched_threads.add(obj.pk)

    def counter_value(self, obj: Model, name: str) -> int:
        """A counter as it will be after this batch's deltas (read when primed, plus deltas)."""
        value = getattr(obj, name)
        if obj.pk is not None and obj.pk in self._deltas.get(type(obj), {}):
            value += self._deltas[type(obj)][obj.pk].get(name, 0)
        return value

    def later(self, obj: Model, name: str, at: datetime) -> None:
        """Move a "last activity" time forward to `at` (never back)."""
        if obj.pk is None:
            current = getattr(obj, name)
            setattr(obj, name, at if current is None else max(current, at))
            return
        latest = self._latest[type(obj)][obj.pk]
        latest[name] = max(latest.get(name, at), at)
        if isinstance(obj, Thread):
            self.touched_threads.add(obj.pk)

    # -- writing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the batch: inserts in dependency order, then one UPDATE per counter table."""
        rows_insert(Event, self.new_events)
        dirty = [e for pk, e in self.dirty_events.items()]
        if dirty:
            rows_update(Event, dirty, EVENT_FIELDS)
        # Published when the batch is written (what readers and the ingest bench measure).
        now = timezone.now()
        for row in (*self.new_threads, *self.new_posts):
            row.published_at = now
        for thread in self.new_threads:  # their totals may have grown in this batch
            thread.hot = hot_score(
                sats_msat=thread.sats_msat, replies=thread.reply_count, at=thread.settled_at
            )
        rows_insert(Thread, self.new_threads)
        self._posts_insert()
        values_insert(
            Notification,
            NoteRow.FIELDS,
            [note.values() for note in self.new_notes],
            ignore_conflicts=True,
        )
        values_insert(EventTag, ("event_id", "key"), [(e.pk, key) for e, key in self.new_tags])
        rows_insert(MessagePart, self.new_parts)
        rows_insert(Rejection, self.new_rejections)
        self._resolutions_write()
        for model in set(self._deltas) | set(self._latest):
            _counters_update(model, self._deltas.get(model, {}), self._latest.get(model, {}))
        threads_hot_refresh(self.touched_threads)
        self._kinds_flush()

    def _kinds_flush(self) -> None:
        """The writes of kinds 0/5/1010: a few set-based statements per batch, none per row."""
        if self.profiles_changed:
            Author.objects.bulk_update(self.profiles_changed.values(), Author.PROFILE_FIELDS)
        if self.hidden_threads:
            Thread.objects.filter(pk__in=self.hidden_threads).update(is_hidden=True)
        if self.hidden_posts:
            Post.objects.filter(pk__in=self.hidden_posts).update(is_hidden=True)
        edit_fields = ["content", "edited_ref", "edited_created_at", "edited_at"]
        if self.edited_threads:
            Thread.objects.bulk_update(self.edited_threads.values(), [*edit_fields, "title"])
        if self.edited_posts:
            Post.objects.bulk_update(self.edited_posts.values(), edit_fields)

    def _resolutions_write(self) -> None:
        """Standing rejections resolved by this batch: one UPDATE per kind of resolution, each
        row stamped with the time of the payment that resolved it (the first, if several)."""
        groups: dict[tuple[tuple[str, ...], str], list[tuple[datetime, Event | None, str]]] = {}
        for reasons, at, resolution, event, ref in self._resolutions:
            groups.setdefault((tuple(reasons), resolution), []).append((at, event, ref))
        fresh = [r.pk for r in self.new_rejections]
        for (reasons, resolution), items in groups.items():
            whens = [
                When(event_id=event.pk, then=Value(at))
                if event is not None
                else When(event_ref=ref, then=Value(at))
                for at, event, ref in items
            ]
            which = Q(event_id__any=[e.pk for _, e, _ in items if e is not None]) | Q(
                event_ref__any=[ref for _, e, ref in items if e is None]
            )
            Rejection.objects.filter(which, reason__in=reasons, resolved_at__isnull=True).exclude(
                pk__in=fresh
            ).update(resolved_at=Case(*whens, output_field=DateTimeField()), resolution=resolution)

    def _posts_insert(self) -> None:
        """Posts whose parent is inserted in this batch go in a later round (they need its id)."""
        remaining = list(self.new_posts)
        while remaining:
            ready = [p for p in remaining if p.parent is None or p.parent.pk is not None]
            if not ready:  # cannot happen: a parent is always published before its replies
                raise RuntimeError("reply parents form a cycle")
            rows_insert(Post, ready)
            remaining = [p for p in remaining if p.pk is None]


def authors_ensure(pubkeys: Iterable[str]) -> None:
    """Every pubkey gets an author row (INSERT ... ON CONFLICT DO NOTHING). Harmless outside
    the sequencer, so a worker does it for its next batch while another batch is written."""
    wanted = set(pubkeys)
    if not wanted:
        return
    # Most authors have posted before: a read finds them, and only the new ones are written.
    known = set(Author.objects.filter(pubkey__any=wanted).values_list("pubkey", flat=True))
    now = timezone.now()
    Author.objects.bulk_create(
        [Author(pubkey=p, first_seen_at=now) for p in sorted(wanted - known)],
        ignore_conflicts=True,
    )


def _thread_key(thread: Thread) -> object:
    """One key per thread row, whichever object stands for it (new ones by identity)."""
    return thread.pk if thread.pk is not None else ("new", id(thread))


def _counters_update(
    model: type[Model],
    deltas: dict[int, dict[str, int]],
    latest: dict[int, dict[str, datetime]],
) -> None:
    """One set-based UPDATE: each row gets its own deltas, added to what the row holds now (so
    they commute with other writers' deltas), and each "last activity" moves forward only.

    On PostgreSQL the rows travel as one array per column (`unnest`): a VALUES list of
    thousands of placeholders cost more to prepare on the client than the update itself."""
    pks = sorted(set(deltas) | set(latest))
    if not pks:
        return
    added = sorted({n for d in deltas.values() for n in d})
    moved = sorted({n for d in latest.values() for n in d})
    meta = model._meta
    ops = connection.ops
    table = ops.quote_name(meta.db_table)
    pk = ops.quote_name(meta.pk.column)
    columns = {name: ops.quote_name(meta.get_field(name).column) for name in (*added, *moved)}
    names = ["id", *(f"d_{n}" for n in added), *(f"t_{n}" for n in moved)]
    data: list[list[Any]] = [pks]
    data += [[deltas.get(key, {}).get(name, 0) for key in pks] for name in added]
    data += [[latest.get(key, {}).get(name) for key in pks] for name in moved]
    sets = [f"{columns[n]} = {table}.{columns[n]} + v.d_{n}" for n in added]
    sets += [
        f"{columns[n]} = CASE WHEN v.t_{n} IS NULL THEN {table}.{columns[n]} "
        f"WHEN {table}.{columns[n]} IS NULL OR {table}.{columns[n]} < v.t_{n} THEN v.t_{n} "
        f"ELSE {table}.{columns[n]} END"
        for n in moved
    ]
    if connection.vendor == "postgresql":
        types = ["bigint"] * (1 + len(added)) + ["timestamptz"] * len(moved)
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        source = f"unnest({arrays}) AS v({', '.join(names)})"
        values: list[Any] = data
    else:
        # VALUES names its columns column1, column2, ... on SQLite.
        select = ", ".join(f"column{i} AS {name}" for i, name in enumerate(names, start=1))
        holders = ", ".join(["%s"] * len(names))
        rows = ", ".join(f"({holders})" for _ in pks)
        source = f"(SELECT {select} FROM (VALUES {rows}) AS x) AS v"
        values = [
            ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value
            for row in zip(*data, strict=True)
            for value in row
        ]
    sql = f"UPDATE {table} SET {', '.join(sets)} FROM {source} WHERE {table}.{pk} = v.id"
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
