"""Reconciliation in batches: pending ledger rows become published posts, waiting events and
rejections, in settle order, one transaction per batch.

`reconcile_batch()` takes the sequencer (one reconciler at a time: a PostgreSQL advisory lock
held for the transaction; a process lock on SQLite), claims up to `RECONCILE_BATCH_SIZE`
pending incoming rows in settle order, decodes and verifies their records, primes a
`BatchState` with everything they will ask about, applies each row with `verdict.decide`, and
writes the batch in bulk. Because one sequencer applies rows in settle order, the result equals
a one-worker serial run whatever the number of workers (the ordering contract), and a reply
whose thread is published in this batch or an earlier one is attached here, in the same
transaction as the thread (no task to lose, no window between a wait and an attach).

Errors: a transient database error (connection, deadlock, serialization) propagates and the
caller retries the batch; nothing half-done is kept. Any other exception re-runs the batch
one row per savepoint, so one poisoned payment is marked `error` (the sweep retries it up to
`RECONCILE_MAX_ATTEMPTS`) and the rest go through.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from forum import nostr, protocol
from forum.ingest import kinds, publish, verdict
from forum.ingest.batch import BatchState, MadeAhead, authors_ensure
from forum.ingest.kinds_publish import KindsOutcome, kind_publish
from forum.ingest.ledger import records_from_json
from forum.ingest.outcome import Message, Reconciled, StatusNote
from forum.ingest.rejections import reason_for_code, rejection_build
from forum.ingest.spend import spend_apply
from forum.ingest.tags import indexed_keys
from forum.ingest.tips import tip_forward_prepare, zap_receipt_message, zap_receipt_prepare
from forum.ingest.verdict import Action
from forum.models import Author, Board, Event, LedgerEntry, MessagePart, Post, Rejection, Thread
from forum.room_events import KIND_ROOM_CREATE
from forum.selectors.status import event_status, rejection_status, status_unknown

log = logging.getLogger(__name__)

Reason = Rejection.Reason
State = LedgerEntry.ReconcileState
Purpose = LedgerEntry.Purpose
IN = LedgerEntry.Direction.IN
TRANSIENT = (OperationalError, InterfaceError)
SEQUENCER_KEY = 0x4C4E464F52554D  # "LNFORUM": the advisory lock every reconciler takes


def batch_size() -> int:
    return int(getattr(settings, "RECONCILE_BATCH_SIZE", 1000))


def max_attempts() -> int:
    return int(getattr(settings, "RECONCILE_MAX_ATTEMPTS", 8))


# SQLite allows one writer at a time anyway; this keeps two threads of the embedded process
# from interleaving batches (the listener's eager reconcile and a request's).
_local_sequencer = threading.RLock()


@contextmanager
def sequenced() -> Iterator[None]:
    """A transaction that holds the sequencer: batches never interleave."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCER_KEY])
            yield
        return
    with _local_sequencer, transaction.atomic():
        yield


Decoded = protocol.Message | protocol.ProtocolError | None


def _decode(entry: LedgerEntry) -> Decoded:
    return _decode_records(entry.custom_records)


def _decode_records(records: dict[str, str] | None) -> Decoded:
    try:
        return protocol.decode_records(records_from_json(records or {}))
    except protocol.ProtocolError as exc:
        return exc


# --- the entry point ---------------------------------------------------------------------------


def reconcile_batch(*, limit: int | None = None) -> Reconciled:
    """Reconcile the next batch of pending incoming ledger rows (in settle order)."""
    limit = limit or batch_size()
    ahead, made = _decode_ahead(limit)
    with sequenced():
        # The records were read by the look-ahead; only the rows it missed read them again.
        rows = list(_pending().select_for_update().defer("custom_records")[:limit])
        if not rows:
            return Reconciled()
        missed = [row.pk for row in rows if row.pk not in ahead]
        if missed:
            records = LedgerEntry.objects.filter(pk__any=missed).values_list("pk", "custom_records")
            ahead.update((pk, _decode_records(value)) for pk, value in records)
        run = _apply_or_isolate([(row, ahead[row.pk]) for row in rows], made)
        more = len(rows) == limit
    # Statuses and realtime messages are built after commit: outside the sequencer, so the
    # next batch's writes overlap them, and the totals they read are the committed ones.
    run.report_safely()
    return run.outcome(more=more)


def _pending() -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(direction=IN, reconcile_state=State.PENDING).order_by(
        F("settle_index").asc(nulls_last=True), "pk"
    )


def _decode_ahead(limit: int) -> tuple[dict[int, Decoded], MadeAhead]:
    """Decode and verify the next batch before waiting for the sequencer (PostgreSQL), and
    make what publishing needs from each event alone (its tag index keys, its mentions).

    While another worker holds the sequencer, its rows are locked: SKIP LOCKED finds the batch
    after them, which is most likely the one this worker claims next, so this work overlaps
    the other batch's writes instead of following them. The read is a transaction of
    its own: holding those row locks while waiting for the sequencer could deadlock with the
    holder's claim. A guess that turns out wrong only costs the work.
    """
    made = MadeAhead()
    if connection.vendor != "postgresql":
        return {}, made
    with transaction.atomic():
        pending = _pending().select_for_update(skip_locked=True).values_list("pk", "custom_records")
        rows = list(pending[:limit])
    decoded = {pk: _decode_records(records) for pk, records in rows}
    events = [m.event for m in decoded.values() if isinstance(m, protocol.EventMessage)]
    for event in events:
        event.to_json()  # cached on the event: the batch stores it
        made.index_keys[event.id] = indexed_keys(event.tags)
        made.mentions[event.id] = publish.mentions(event)
    authors_ensure(event.pubkey for event in events)
    return decoded, made


def _apply_or_isolate(decoded: list[tuple[LedgerEntry, Decoded]], made: MadeAhead) -> _Run:
    """The batch in one savepoint; if it fails (not transiently), each row in its own."""
    try:
        with transaction.atomic():
            run = _Run(state=BatchState(made))
            run.apply(decoded)
    except TRANSIENT:
        raise
    except Exception:
        log.exception("a batch of %d rows failed; retrying them one by one", len(decoded))
        run = _isolated(decoded, made)
    return run


def _isolated(decoded: list[tuple[LedgerEntry, Decoded]], made: MadeAhead) -> _Run:
    """Each row on its own (a savepoint each): a row that fails alone is marked `error`."""
    total = _Run(reported=True)  # each row reported on its own
    for row, message in decoded:
        try:
            with transaction.atomic():
                run = _Run(state=BatchState(made))
                run.apply([(row, message)])
        except TRANSIENT:
            raise
        except Exception as exc:
            log.exception("reconciling %s failed", row.payment_hash)
            LedgerEntry.objects.filter(pk=row.pk).update(
                reconcile_state=State.ERROR,
                reconcile_attempts=F("reconcile_attempts") + 1,
                reconcile_error=f"{type(exc).__name__}: {exc}"[:4000],
            )
            total.errors += 1
            continue
        run.report_safely()
        total.merge(run)
    return total


# --- one batch -----------------------------------------------------------------------------------


@dataclass
class _Run:
    """One batch's application: the state it works on and what it will report."""

    state: BatchState = field(default_factory=BatchState)
    rows: int = 0
    errors: int = 0
    rejected: int = 0
    published: list[tuple[Event, Thread, Post | None]] = field(default_factory=list)
    # Replies waiting for a parent, by the id they wait for (root and parent alike), and the
    # ids whose waiting replies were already read from the database.
    waiting: dict[str, list[Event]] = field(default_factory=dict)
    waiting_read: set[str] = field(default_factory=set)
    # Status per event: the payment keys, the rejection this batch gave it, where it went.
    event_keys: dict[str, list[str]] = field(default_factory=dict)
    event_rows: dict[str, Event] = field(default_factory=dict)
    event_rejection: dict[str, Rejection] = field(default_factory=dict)
    # Part sets still incomplete: (keys, what to say), built from what happened.
    payment_notes: list[tuple[list[str], dict[str, Any]]] = field(default_factory=list)
    tip_forwards: list[str] = field(default_factory=list)
    statuses: list[StatusNote] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    boards_changed: set[str] = field(default_factory=set)  # public pages to re-render
    threads_changed: set[str] = field(default_factory=set)
    kinds: KindsOutcome = field(default_factory=KindsOutcome)  # profiles, deletions, edits
    reported: bool = False

    # -- driving ------------------------------------------------------------------------------

    def apply(self, decoded: list[tuple[LedgerEntry, Decoded]]) -> None:
        self._prime(decoded)
        for row, message in decoded:
            self._row(row, message)
        self.state.flush()
        now = timezone.now()
        LedgerEntry.objects.filter(pk__any=[row.pk for row, _ in decoded]).update(
            reconcile_state=State.DONE,
            reconcile_attempts=F("reconcile_attempts") + 1,
            reconcile_error="",
            reconciled_at=now,
        )
        self.rows = len(decoded)

    def _prime(self, decoded: list[tuple[LedgerEntry, Decoded]]) -> None:
        event_ids: set[str] = set()
        pubkeys: set[str] = set()
        part_ids: set[str] = set()
        reply_threads: set[str] = set()
        for _, message in decoded:
            if isinstance(message, protocol.EventMessage):
                parsed = message.event
                event_ids.add(parsed.id)
                pubkeys.add(parsed.pubkey)
                if parsed.kind == nostr.KIND_REPLY:
                    try:
                        target = nostr.reply_target(parsed)
                    except nostr.EventError:
                        continue
                    event_ids.update((target.root_id, target.parent_id))
                    reply_threads.add(target.root_id)
                elif parsed.kind in kinds.SIDE_KINDS:
                    event_ids.update(kinds.side_refs(parsed))  # what it deletes or edits
            elif isinstance(message, protocol.PartMessage):
                part_ids.add(message.event_id)
                event_ids.add(message.event_id)
            elif isinstance(message, protocol.TopUpMessage | protocol.TipMessage):
                event_ids.add(message.event_id)
        self.waiting_prime(
            {m.event.id for _, m in decoded if isinstance(m, protocol.EventMessage)} | part_ids
        )
        times = [row.settled_at for row, _ in decoded if row.settled_at is not None]
        earliest = min(times, default=None)
        self.state.prime(
            event_ids=event_ids,
            pubkeys=pubkeys,
            part_ids=part_ids,
            reply_threads=reply_threads,
            earliest=earliest,
        )
        if part_ids:  # the authors of part sets this batch completes (known once joined)
            authors = self._part_set_authors(decoded)
            self.state.prime(
                event_ids=(), pubkeys=authors, part_ids=(), reply_threads=(), earliest=earliest
            )

    def _part_set_authors(self, decoded: list[tuple[LedgerEntry, Decoded]]) -> set[str]:
        """A hint for priming only: `_part` decides what each part set really becomes."""
        arriving: dict[str, list[protocol.PartMessage]] = {}
        for _, message in decoded:
            if isinstance(message, protocol.PartMessage):
                arriving.setdefault(message.event_id, []).append(message)
        authors: set[str] = set()
        for event_id, parts in arriving.items():
            stored = [
                protocol.PartMessage(p.event_id, p.index, p.count, bytes(p.data))
                for p in self.state.parts(event_id).values()
            ]
            try:
                authors.add(protocol.join_parts([*stored, *parts]).pubkey)
            except (protocol.ProtocolError, nostr.EventError):
                continue  # incomplete or bad: no author to prime
        return authors

    def _row(self, row: LedgerEntry, message: Decoded) -> None:
        if isinstance(message, protocol.ProtocolError):
            self._reject_payment(row, reason_for_code(message.code), message)
        elif message is None:
            return  # a plain keysend or invoice: revenue (purpose "other"), nothing to publish
        elif isinstance(message, protocol.CreditMessage):
            return  # funds a relay balance: nothing to publish (forum/ingest/spend.py)
        elif isinstance(message, protocol.EventMessage) and row.purpose == Purpose.SPEND:
            spend_apply(self, row, message.event)  # an EVENT the relay charged to a balance
        elif isinstance(message, protocol.EventMessage):
            self._deliver(
                message.event,
                entry=row,
                paid_msat=row.amount_msat,
                at=row.settled_at,
                settle_index=row.settle_index,
                keys=[row.payment_hash],
            )
        elif isinstance(message, protocol.PartMessage):
            self._part(row, message)
        elif isinstance(message, protocol.TopUpMessage):
            self._topup(row, message)
        else:
            self._tip(row, message)

    # -- outcomes of one payment ----------------------------------------------------------------

    def _reject(self, **kw: Any) -> Rejection:
        self.rejected += 1
        return self.state.reject_add(rejection_build(**kw))

    def _reject_payment(self, row: LedgerEntry, reason: str, exc: protocol.ProtocolError) -> None:
        event_ref = exc.event_id or ""
        rejection = self._reject(
            reason=reason,
            entry=row,
            amount_msat=row.amount_msat,
            event_ref=event_ref,
            pubkey=row.pubkey,
            detail=exc.message,
            what="this payment",
        )
        self._note_rejected([row.payment_hash, event_ref], rejection, row)

    def _note_rejected(self, keys: list[str], rejection: Rejection, entry: LedgerEntry) -> None:
        for key in dict.fromkeys(k for k in keys if k):
            payload = rejection_status(
                key,
                rejection,
                paid_msat=rejection.amount_msat,
                payment_hash=None if key == rejection.event_ref else key,
            )
            self.statuses.append(StatusNote((key,), key, payload))

    def _note(self, event: Event, keys: list[str]) -> None:
        self.event_rows[event.event_id] = event
        self.event_keys.setdefault(event.event_id, []).extend(keys)

    def _deliver(
        self,
        parsed: nostr.Event,
        *,
        entry: LedgerEntry,
        paid_msat: int,
        at: datetime,
        settle_index: int | None,
        keys: list[str],
    ) -> None:
        """A complete, authentic event arrived with `paid_msat`, settled at `at`."""
        state = self.state
        author = state.author(parsed.pubkey, seen_at=at)
        state.add(author, spent_msat=paid_msat)
        decided = verdict.decide(
            parsed, paid_msat=paid_msat, at=at, settle_index=settle_index, lookups=state
        )
        existing = decided.existing
        if decided.action == Action.TOPUP:
            assert existing is not None
            self._topup_into(existing, entry=entry, amount_msat=paid_msat, at=at)
            self._note(existing, keys)
            return
        if existing is not None and existing.state != Event.State.REJECTED:
            assert decided.finding is not None  # a duplicate
            rejection = self._reject(
                reason=decided.finding.reason,
                entry=entry,
                amount_msat=paid_msat,
                event=existing,
                **decided.finding.context,
            )
            # To the payments only: the event's own status (published, ...) is unchanged.
            self._note_rejected(keys, rejection, entry)
            return
        if existing is not None:  # rejected before: this payment gets a fresh hearing
            event = existing
            event.paid_msat, event.price_msat = paid_msat, 0
            event.settled_at, event.settle_index = at, settle_index
            event.state, event.waiting_for = Event.State.PENDING, ""
            state.event_changed(event)
        else:
            event = Event(
                event_id=parsed.id,
                pubkey=parsed.pubkey,
                kind=parsed.kind,
                created_at=parsed.created_at,
                raw_json=parsed.to_json(),
                paid_msat=paid_msat,
                settled_at=at,
                settle_index=settle_index,
                ln_node=nostr.ln_node(parsed) or "",
            )
            state.event_add(event)
        if parsed.kind == nostr.KIND_REPLY:
            try:
                target = nostr.reply_target(parsed)
                event.root_ref, event.parent_ref = target.root_id, target.parent_id
            except nostr.EventError:
                pass  # the verdict said why
        if decided.board is not None:
            event.board = decided.board
        self._note(event, keys)
        if decided.action == Action.REJECT:
            assert decided.finding is not None
            self._event_reject(
                event, decided.finding.reason, entry=entry, **decided.finding.context
            )
            return
        event.price_msat = decided.price_msat
        if decided.action == Action.UNDERPAID:
            self._underpaid(event, entry=entry, amount_msat=paid_msat)
            return
        self._accept(event, parsed, author=author, entry=entry, at=at, settle_index=settle_index)

    def _event_reject(
        self, event: Event, reason: str, *, entry: LedgerEntry | None, **context: Any
    ) -> None:
        event.state, event.waiting_for = Event.State.REJECTED, ""
        self.state.event_changed(event)
        self.event_rejection[event.event_id] = self._reject(
            reason=reason, entry=entry, amount_msat=event.paid_msat, event=event, **context
        )

    def _underpaid(self, event: Event, *, entry: LedgerEntry, amount_msat: int) -> None:
        """Kept waiting for a top-up; the rejection row carries this payment's amount."""
        event.state, event.waiting_for = Event.State.PENDING, "underpaid"
        self.state.event_changed(event)
        context = verdict.underpaid_context(price_msat=event.price_msat, paid_msat=event.paid_msat)
        self.event_rejection[event.event_id] = self._reject(
            reason=Reason.UNDERPAID, entry=entry, amount_msat=amount_msat, event=event, **context
        )

    def _accept(
        self,
        event: Event,
        parsed: nostr.Event,
        *,
        author: Author,
        entry: LedgerEntry | None,
        at: datetime,
        settle_index: int | None,
    ) -> None:
        """Paid in full and valid: it counts for escalation from now on; publish or wait."""
        event.accepted_at, event.accepted_settle_index = at, settle_index
        self.state.event_changed(event)
        if parsed.kind == KIND_ROOM_CREATE:
            self._room_open(event, parsed, entry=entry, at=at)
            return
        if parsed.kind in kinds.SIDE_KINDS:
            kind_publish(event, parsed, state=self.state, at=at, out=self.kinds)
            return
        self.state.accepted_note(event)
        if parsed.kind == nostr.KIND_THREAD:
            self._thread_publish(event, parsed, author=author, at=at)
            return
        self._reply_place(event, parsed, author=author, entry=entry, at=at)

    def _thread_publish(
        self, event: Event, parsed: nostr.Event, *, author: Author, at: datetime
    ) -> None:
        state = self.state
        board = event.board
        thread = publish.thread_build(event=event, parsed=parsed, author=author, board=board, at=at)
        state.event_changed(event)
        state.thread_add(thread)
        self._index_and_notify(event, parsed, thread=thread, post=None, at=at)
        state.add(author, thread_count=1)
        state.add(board, thread_count=1, post_count=1)
        state.later(board, "last_activity_at", at)
        self.published.append((event, thread, None))
        self._attach_children(event.event_id)

    def _index_and_notify(
        self, event: Event, parsed: nostr.Event, *, thread: Thread, post: Post | None, at: datetime
    ) -> None:
        """A publication's tag index rows and inbox rows (post None: the thread itself)."""
        state = self.state
        state.tags_add(event, parsed.tags)
        mentioned = state.made.mentions.get(parsed.id)  # made by the look-ahead, if it was
        state.notes_add(
            publish.notifications_build(
                event=event, parsed=parsed, thread=thread, post=post, at=at, mentioned=mentioned
            )
        )

    def _reply_place(
        self,
        event: Event,
        parsed: nostr.Event,
        *,
        author: Author,
        entry: LedgerEntry | None,
        at: datetime,
    ) -> bool:
        """Publish an accepted reply if its thread and parent are published; else it waits."""
        placement = verdict.reply_placement(
            root_ref=event.root_ref,
            parent_ref=event.parent_ref,
            board_id=event.board.pk if event.board is not None else None,
            lookups=self.state,
        )
        if placement.thread is None:
            event.state, event.waiting_for = Event.State.PENDING, "parent"
            self.state.event_changed(event)
            self._wait(event)
            return False
        if placement.finding is not None:
            self._event_reject(
                event, placement.finding.reason, entry=entry, **placement.finding.context
            )
            return False
        state = self.state
        thread = placement.thread
        post = publish.reply_build(
            event=event,
            parsed=parsed,
            author=author,
            thread=thread,
            parent=placement.parent,
            number=state.number_next(thread),
            at=at,
        )
        state.event_changed(event)
        state.post_add(post)
        self._index_and_notify(event, parsed, thread=thread, post=post, at=at)
        state.add(thread, reply_count=1, sats_msat=event.paid_msat)
        state.later(thread, "last_activity_at", at)
        state.add(author, reply_count=1)
        board = thread.board
        # A reply in a hidden thread is not on the board's visible count (see moderation.hide).
        if not thread.is_hidden:
            state.add(board, post_count=1)
        state.later(board, "last_activity_at", at)
        self.published.append((event, thread, post))
        self._attach_children(event.event_id)
        return True

    def _room_open(
        self, event: Event, parsed: nostr.Event, *, entry: LedgerEntry | None, at: datetime
    ) -> None:
        """Open the room, from settle time `at` for its lifetime (renting is not posting: it
        does not count towards the creator's escalation)."""
        from datetime import timedelta

        from forum.ingest.rooms import room_slug_taken, room_spec

        spec = room_spec(parsed)
        board = self.state.board(spec.slug)
        if room_slug_taken(board, spec):  # taken while this one waited for a top-up
            detail = f"the room slug {spec.slug!r} is taken; choose another d tag"
            self._event_reject(event, Reason.MALFORMED, entry=entry, detail=detail)
            return
        if board is None:
            board = Board.objects.create(
                slug=spec.slug,
                title=spec.name,
                description=spec.description,
                is_listed=False,
                password_verifier=spec.verifier,
                expires_at=at + timedelta(seconds=spec.lifetime_seconds),
                position=10_000,
            )
            self.state.boards[board.slug] = board
        event.board = board
        event.accepted_at = event.accepted_settle_index = None
        event.state, event.waiting_for = Event.State.PUBLISHED, ""
        self.state.event_changed(event)
        log.info("room %s opened until %s", board.slug, board.expires_at.isoformat())

    # -- orphans --------------------------------------------------------------------------------

    def _wait(self, event: Event) -> None:
        for ref in {event.root_ref, event.parent_ref} - {""}:
            waiting = self.waiting.setdefault(ref, [])
            if event not in waiting:
                waiting.append(event)

    def waiting_prime(self, ids: set[str]) -> None:
        """Read the replies already waiting for any of `ids` (one query for the batch)."""
        fresh = sorted(ids - self.waiting_read)
        if not fresh:
            return
        self.waiting_read.update(fresh)
        stored = (
            Event.objects.select_related("board")
            .filter(state=Event.State.PENDING, waiting_for="parent")
            .filter(Q(root_ref__any=fresh) | Q(parent_ref__any=fresh))
        )
        for event in stored:
            self._wait(self.state.event_known(event))

    def _attach_children(self, event_id: str) -> None:
        """The replies that waited for `event_id`, published now (in settle order) if their
        thread and parent are both there: the same result whatever the batch boundaries."""
        self.waiting_prime({event_id})
        children = sorted(
            self.waiting.pop(event_id, []),
            key=lambda e: (e.accepted_settle_index or 0, e.event_id),
        )
        for event in children:
            if event.state != Event.State.PENDING or event.waiting_for != "parent":
                continue
            parsed = nostr.parse_event(event.raw_json)
            at = event.accepted_at or event.settled_at or timezone.now()
            author = self.state.author(event.pubkey, seen_at=at)
            entry = None if event.pk is None else delivering_entry(event)
            self.event_rows[event.event_id] = event
            self._reply_place(event, parsed, author=author, entry=entry, at=at)

    # -- top-ups, tips, parts -------------------------------------------------------------------

    def _topup(self, row: LedgerEntry, message: protocol.TopUpMessage) -> None:
        decided = verdict.target_decide(message, lookups=self.state)
        event = decided.existing
        keys = [row.payment_hash, message.event_id]
        if event is None:
            assert decided.finding is not None
            rejection = self._reject(
                reason=decided.finding.reason,
                entry=row,
                amount_msat=row.amount_msat,
                event_ref=message.event_id,
                pubkey=row.pubkey,
                **decided.finding.context,
            )
            self._note_rejected(keys, rejection, row)
            return
        author = self.state.author(event.pubkey, seen_at=row.settled_at)
        self.state.add(author, spent_msat=row.amount_msat)
        self._topup_into(event, entry=row, amount_msat=row.amount_msat, at=row.settled_at)
        self._note(event, keys)

    def _topup_into(
        self, event: Event, *, entry: LedgerEntry, amount_msat: int, at: datetime
    ) -> None:
        """Add a payment to an event: completes an underpaid one; extra money for a published one."""
        if event.state == Event.State.PUBLISHED:
            self._sats_add(event, amount_msat)
            return
        if event.state != Event.State.PENDING or event.waiting_for != "underpaid":
            self._reject(
                reason=Reason.UNKNOWN_TARGET,
                entry=entry,
                amount_msat=amount_msat,
                event=event,
                why="not waiting for a top-up",
            )
            return
        event.paid_msat += amount_msat
        self.state.event_changed(event)
        decided = verdict.topup_decide(event, paid_msat=event.paid_msat, at=at, lookups=self.state)
        if decided.action == Action.UNDERPAID:
            self._underpaid(event, entry=entry, amount_msat=amount_msat)
            return
        self.state.resolve(reasons=[Reason.UNDERPAID], at=at, resolution="topped_up", event=event)
        self.event_rejection.pop(event.event_id, None)
        if decided.action == Action.REJECT:
            assert decided.finding is not None
            self._event_reject(
                event, decided.finding.reason, entry=entry, **decided.finding.context
            )
            return
        author = self.state.author(event.pubkey, seen_at=at)
        parsed = nostr.parse_event(event.raw_json)
        self._accept(
            event, parsed, author=author, entry=entry, at=at, settle_index=entry.settle_index
        )

    def _sats_add(self, event: Event, amount_msat: int) -> None:
        """Money for a published event after it was published (top-up beyond its price, tip)."""
        state = self.state
        event.paid_msat += amount_msat
        state.event_changed(event)
        post = state.post(event.event_id)
        if post is not None:
            state.add(post, sats_msat=amount_msat)
            state.add(post.thread, sats_msat=amount_msat)
            return
        thread = state.thread(event.event_id)
        if thread is not None:
            state.add(thread, sats_msat=amount_msat)

    def _tip(self, row: LedgerEntry, message: protocol.TipMessage) -> None:
        decided = verdict.target_decide(message, lookups=self.state)
        event = decided.existing
        if decided.action != Action.ACCEPT or event is None:
            assert decided.finding is not None
            self._reject(
                reason=decided.finding.reason,
                entry=row,
                amount_msat=row.amount_msat,
                event=event,
                event_ref=message.event_id,
                **decided.finding.context,
            )
            return
        self._sats_add(event, row.amount_msat)
        tipped = self.state.post(event.event_id)
        thread = tipped.thread if tipped is not None else self.state.thread(event.event_id)
        if thread is not None:
            self.state.notes_add(
                publish.tip_notification(event=event, thread=thread, post=tipped, entry=row)
            )
        # In this transaction: a tip is never applied without its forward planned.
        forward, created = tip_forward_prepare(entry=row, event=event)
        if created:
            self.tip_forwards.append(row.payment_hash)
        receipt = zap_receipt_prepare(entry=row, event=event)
        if receipt is not None:
            self.messages.append(zap_receipt_message(receipt))

    def _part(self, row: LedgerEntry, part: protocol.PartMessage) -> None:
        keys = [row.payment_hash, part.event_id]
        stored = self.state.parts(part.event_id)
        if part.index in stored:
            rejection = self._reject(
                reason=Reason.DUPLICATE,
                entry=row,
                amount_msat=row.amount_msat,
                event_ref=part.event_id,
                what=f"part {part.index + 1} of {part.count}",
            )
            self._note_rejected([row.payment_hash], rejection, row)
            return
        kept = MessagePart(
            ledger_entry=row,
            event_id=part.event_id,
            index=part.index,
            count=part.count,
            data=part.data,
            received_at=row.settled_at,
        )
        stored[part.index] = kept
        self.state.new_parts.append(kept)
        if len(stored) < part.count:
            waiting = {
                "state": "waiting",
                "waiting_for": "parts",
                "event_id": part.event_id,
                "parts_received": len(stored),
                "parts_total": part.count,
            }
            self.payment_notes.append((keys, waiting))
            return
        self._parts_assemble(part, list(stored.values()), keys)

    def _parts_assemble(
        self, part: protocol.PartMessage, stored: list[MessagePart], keys: list[str]
    ) -> None:
        entries = [p.ledger_entry for p in stored]
        paid = sum(e.amount_msat for e in entries)
        last = max(entries, key=lambda e: (e.settle_index or 0, e.pk))
        keys = [*keys, *(e.payment_hash for e in entries)]
        try:
            parsed = protocol.join_parts(
                [protocol.PartMessage(p.event_id, p.index, p.count, bytes(p.data)) for p in stored]
            )
        except protocol.ProtocolError as exc:
            rejection = self._reject(
                reason=reason_for_code(exc.code),
                entry=last,
                amount_msat=paid,
                event_ref=part.event_id,
                detail=exc.message,
            )
            self._note_rejected(keys, rejection, last)
            return
        self.state.resolve(
            reasons=[Reason.INCOMPLETE_PARTS],
            at=last.settled_at,
            resolution="parts_completed",
            ref=part.event_id,
        )
        self._deliver(
            parsed,
            entry=last,
            paid_msat=paid,
            at=last.settled_at,
            settle_index=last.settle_index,
            keys=list(dict.fromkeys(keys)),
        )

    # -- reporting ------------------------------------------------------------------------------

    def report(self) -> None:
        """Statuses and realtime messages, from what this batch did (rows have ids now).
        Once per run (a merged run of isolated rows was reported row by row)."""
        if self.reported:
            return
        self.reported = True
        where: dict[str, tuple[str, int]] = {}
        self.messages.extend(publish.inbox_messages(self.state.new_notes))
        for event, thread, post in self.published:
            where[event.event_id] = (thread.event.event_id, post.number if post else 0)
            self.messages.extend(
                publish.published_messages(
                    event=event, board=thread.board, thread=thread, post=post
                )
            )
        touched = self.state.touched_threads | {
            thread.pk for _, thread, post in self.published if post is not None
        }
        boards = {thread.board.slug for _, thread, _ in self.published} | self.kinds.boards
        threads = {thread.event.event_id for _, thread, _ in self.published} | self.kinds.threads
        self.messages.extend(self.kinds.messages)
        if touched:
            # The batch holds these threads; only their totals are read again (committed now).
            rows = self.state.thread_rows()
            missing = list(touched - rows.keys())
            if missing:
                rows.update(
                    (t.pk, t)
                    for t in Thread.objects.select_related("event", "board").filter(pk__any=missing)
                )
            fields = publish.THREAD_UPDATED_FIELDS
            now = Thread.objects.filter(pk__any=list(touched)).values_list("pk", *fields)
            for pk, *values in now:
                thread = rows[pk]
                for name, value in zip(fields, values, strict=True):
                    setattr(thread, name, value)
                self.messages.extend(publish.thread_updated_messages(thread))
                boards.add(thread.board.slug)
                threads.add(thread.event.event_id)
        self.boards_changed, self.threads_changed = boards, threads
        for event_id, event in self.event_rows.items():
            thread_event_id, number = where.get(event_id) or self._where(event)
            payload = event_status(
                event,
                rejection=self.event_rejection.get(event_id),
                thread_event_id=thread_event_id,
                number=number,
            )
            keys = tuple(dict.fromkeys(self.event_keys.get(event_id, [])))
            self.statuses.append(StatusNote(keys, event_id, payload))
        for keys, what in self.payment_notes:
            for key in dict.fromkeys(k for k in keys if k):
                payload = {**status_unknown(key), **what}
                if key != what.get("event_id"):
                    payload["payment_hash"] = key
                self.statuses.append(StatusNote((key,), key, payload))

    def report_safely(self) -> None:
        """`report`, for a batch already committed: if building its statuses or messages
        fails (a bug), the failure is logged and the batch's composers still hear at once,
        each status read back from the database; every page is re-rendered, and the messages
        the rows made themselves (zap receipts) still go."""
        messages, statuses = len(self.messages), len(self.statuses)
        try:
            self.report()
        except Exception:
            log.exception("building what %d committed rows did failed; read back", self.rows)
            del self.messages[messages:]
            del self.statuses[statuses:]
            for event_id, keys in self.event_keys.items():
                self.statuses.append(StatusNote(tuple(dict.fromkeys(keys)), event_id))
            for keys, _ in self.payment_notes:
                self.statuses.extend(StatusNote((k,)) for k in dict.fromkeys(keys) if k)
            self.kinds.all_pages = True

    def _where(self, event: Event) -> tuple[str | None, int | None]:
        """Where an event published by an earlier batch is (for its status), from lookups."""
        if event.state != Event.State.PUBLISHED:
            return None, None
        if self.state.thread(event.event_id) is not None:
            return event.event_id, 0
        post = self.state.post(event.event_id)
        if post is None:
            return None, None  # a room-create event: no page of its own
        return post.thread.event.event_id, post.number

    def merge(self, other: _Run) -> None:
        self.rows += other.rows
        self.errors += other.errors
        self.rejected += other.rejected
        self.published.extend(other.published)
        self.tip_forwards.extend(other.tip_forwards)
        self.statuses.extend(other.statuses)
        self.messages.extend(other.messages)
        self.boards_changed |= other.boards_changed
        self.threads_changed |= other.threads_changed
        self.kinds.all_pages |= other.kinds.all_pages
        self.kinds.nip05.extend(other.kinds.nip05)

    def outcome(self, *, more: bool) -> Reconciled:
        return Reconciled(
            rows=self.rows,
            published=tuple(event.event_id for event, _, _ in self.published),
            rejected=self.rejected,
            errors=self.errors,
            statuses=tuple(self.statuses),
            messages=tuple(self.messages),
            tip_forwards=tuple(self.tip_forwards),
            boards_changed=tuple(sorted(self.boards_changed)),
            threads_changed=tuple(sorted(self.threads_changed)),
            more=more,
            extra=self._kinds_extra(),
        )

    def _kinds_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.kinds.all_pages:
            extra["all_pages"] = True  # a profile changed a name shown on any page
        if self.kinds.nip05:
            extra["nip05"] = tuple(dict.fromkeys(self.kinds.nip05))  # identifiers to verify
        return extra


def delivering_entry(event: Event) -> LedgerEntry | None:
    return (
        LedgerEntry.objects.filter(
            event_id=event.event_id, direction=IN, status=LedgerEntry.Status.SETTLED
        )
        .order_by("-settle_index")
        .first()
    )


# --- repair: replies whose parent is published ------------------------------------------------


def orphans_ready() -> QuerySet[Event]:
    """Replies still waiting although their thread (and parent reply) is published."""
    threads = Thread.objects.filter(event__event_id=OuterRef("root_ref"))
    parents = Post.objects.filter(event__event_id=OuterRef("parent_ref"))
    return Event.objects.filter(
        Exists(threads),
        Q(parent_ref=F("root_ref")) | Exists(parents),
        state=Event.State.PENDING,
        waiting_for="parent",
    )


def orphans_attach_ready(*, limit: int = 1000) -> Reconciled:
    """Publish every waiting reply whose parent is published (the sweep's repair).

    Batches attach their own waiting replies in the same transaction, so this finds work only
    after something outside them (an upgrade from per-row reconciliation, a manual change).
    """
    with sequenced():
        ready = list(
            orphans_ready().select_related("board").order_by("accepted_settle_index", "pk")[:limit]
        )
        if not ready:
            return Reconciled()
        run = _Run()
        for stored in ready:
            event = run.state.event_known(stored)
            at = event.accepted_at or event.settled_at or timezone.now()
            author = run.state.author(event.pubkey, seen_at=at)
            entry = delivering_entry(event)
            run.event_rows[event.event_id] = event
            run._reply_place(
                event, nostr.parse_event(event.raw_json), author=author, entry=entry, at=at
            )
        run.state.flush()
        run.report()
    return run.outcome(more=len(ready) == limit)
