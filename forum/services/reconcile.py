"""Reconciliation: from one ledger entry to a published post, a waiting event, or a rejection.

Entry point: `ledger_entry_reconcile(payment_hash=...)`, called by the `reconcile_payment` task
(and inline by `rebuild_from_node`). It is idempotent: entries are locked (`select_for_update`)
and skipped unless still pending; event ids are unique in the database.

Ordering contract (pricing in settle order): an entry whose author is known (the listener
derives the pubkey at write time, see `ledger`) is processed under that author's row lock,
together with every earlier pending entry of the same author, in settle-index order. So two
workers given an author's burst in any order produce the verdicts of one worker in order.
Entries without an author (donations, garbage, non-completing parts, tips) need no ordering.

Errors: database errors propagate (the task retries the whole batch, nothing half-done is
kept); any other exception marks just that entry `error` (it is retried by the sweep) so one
poisoned payment cannot hold up its author's later messages forever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from forum import nostr, protocol, realtime
from forum.models import (
    Author,
    Event,
    LedgerEntry,
    MessagePart,
    Post,
    Rejection,
    Thread,
)
from forum.selectors.status import event_status
from forum.services import pricing, publish, rooms, rules, tips
from forum.services.ledger import entry_records
from forum.services.rejections import reason_for_code, rejection_record, rejection_resolve
from forum.services.status import status_broadcast_on_commit

log = logging.getLogger(__name__)

Reason = Rejection.Reason
State = LedgerEntry.ReconcileState
OPEN_STATES = (State.PENDING, State.ERROR)
IN = LedgerEntry.Direction.IN


def max_attempts() -> int:
    return int(getattr(settings, "RECONCILE_MAX_ATTEMPTS", 8))


# Authors already locked by the running reconciliation (one transaction): no second round trip.
_held = threading.local()


def author_lock(*, pubkey: str, seen_at: datetime | None = None) -> Author:
    """The author's row, created if new, locked until the end of the transaction."""
    held: dict[str, Author] | None = getattr(_held, "authors", None)
    if held is not None and pubkey in held:
        return held[pubkey]
    # INSERT ... ON CONFLICT DO NOTHING: no savepoint dance, and safe against a racing insert.
    Author.objects.bulk_create(
        [Author(pubkey=pubkey, first_seen_at=seen_at or timezone.now())], ignore_conflicts=True
    )
    author = Author.objects.select_for_update().get(pubkey=pubkey)
    if held is not None:
        held[pubkey] = author
    return author


@contextmanager
def _holding_locks() -> Iterator[None]:
    """Scope of the author cache: one outermost transaction."""
    _held.authors = {}
    try:
        with transaction.atomic():
            yield
    finally:
        _held.authors = None


# --- entry point ------------------------------------------------------------------------------


def ledger_entry_reconcile(*, payment_hash: str) -> str:
    """Reconcile the incoming ledger entry `payment_hash` (and its author's earlier ones)."""
    # Its broadcasts (after commit) leave together, in one trip to the channel layer.
    with realtime.batch():
        return _reconcile_head(payment_hash)


def _reconcile_head(payment_hash: str) -> str:
    head = (
        LedgerEntry.objects.filter(payment_hash=payment_hash, direction=IN)
        .values("pk", "pubkey", "settle_index", "reconcile_state")
        .first()
    )
    if head is None:
        return "missing"
    if head["reconcile_state"] == State.DONE:
        return "done"
    with _holding_locks():
        rows = LedgerEntry.objects.select_for_update().filter(
            direction=IN, reconcile_state__in=OPEN_STATES
        )
        if head["pubkey"]:
            author_lock(pubkey=head["pubkey"])
            rows = rows.filter(pubkey=head["pubkey"], reconcile_attempts__lt=max_attempts())
            if head["settle_index"] is not None:
                rows = rows.filter(Q(settle_index__lte=head["settle_index"]) | Q(pk=head["pk"]))
            else:
                rows = rows.filter(pk=head["pk"])
        else:
            rows = rows.filter(pk=head["pk"])
        batch = list(rows.order_by("settle_index", "pk"))
        for entry in batch:
            _reconcile_guarded(entry)
    return "reconciled" if batch else "done"


def _mark(entry: LedgerEntry, state: str, error: str = "") -> None:
    # The row is locked by the caller, so a plain increment cannot lose an attempt.
    entry.reconcile_state = state
    entry.reconcile_attempts += 1
    entry.reconcile_error = error[:4000]
    entry.reconciled_at = timezone.now() if state == State.DONE else None
    entry.save(
        update_fields=["reconcile_state", "reconcile_attempts", "reconcile_error", "reconciled_at"]
    )


def _reconcile_guarded(entry: LedgerEntry) -> None:
    try:
        with transaction.atomic():
            _reconcile_entry(entry)
            _mark(entry, State.DONE)
    except DatabaseError:
        raise  # transient or not, the task retries the batch from a clean transaction
    except Exception as exc:
        log.exception("reconciling %s failed", entry.payment_hash)
        _mark(entry, State.ERROR, f"{type(exc).__name__}: {exc}")


def ledger_entry_give_up(*, payment_hash: str, error: str) -> None:
    """After the task's last retry: count the attempt so the sweep stops at the cap."""
    LedgerEntry.objects.filter(payment_hash=payment_hash, reconcile_state__in=OPEN_STATES).update(
        reconcile_state=State.ERROR,
        reconcile_attempts=F("reconcile_attempts") + 1,
        reconcile_error=error[:4000],
    )


# --- dispatch ---------------------------------------------------------------------------------


def _reconcile_entry(entry: LedgerEntry) -> None:
    try:
        message = protocol.decode_records(entry_records(entry))
    except protocol.ProtocolError as exc:
        _reject_entry(entry, reason_for_code(exc.code), event_ref=exc.event_id or "", exc=exc)
        return
    if message is None:
        return  # a plain keysend or invoice: revenue (purpose "other"), nothing to publish
    if isinstance(message, protocol.EventMessage):
        _event_deliver(
            parsed=message.event,
            entry=entry,
            paid_msat=entry.amount_msat,
            at=entry.settled_at,
            settle_index=entry.settle_index,
        )
    elif isinstance(message, protocol.PartMessage):
        _part_receive(entry, message)
    elif isinstance(message, protocol.TopUpMessage):
        _topup_apply(entry, message.event_id)
    else:
        _tip_apply(entry, message.event_id)


def _reject_entry(
    entry: LedgerEntry, reason: str, *, event_ref: str = "", exc: Exception | None = None
) -> Rejection:
    detail = getattr(exc, "message", "") or str(exc or "")
    rejection = rejection_record(
        reason=reason,
        entry=entry,
        amount_msat=entry.amount_msat,
        event_ref=event_ref,
        pubkey=entry.pubkey,
        detail=detail,
        what="this payment",
    )
    status_broadcast_on_commit(keys=[entry.payment_hash, event_ref])
    return rejection


# --- whole events -----------------------------------------------------------------------------


def _hashes(entries: list[LedgerEntry]) -> list[str]:
    return [e.payment_hash for e in entries]


def _event_deliver(
    *,
    parsed: nostr.Event,
    entry: LedgerEntry,
    paid_msat: int,
    at: datetime,
    settle_index: int | None,
    keys: list[str] | None = None,
) -> None:
    """A complete, authentic event arrived with `paid_msat`, settled at `at`."""
    keys = keys or [entry.payment_hash]
    author = author_lock(pubkey=parsed.pubkey, seen_at=at)
    Author.objects.filter(pk=author.pk).update(spent_msat=F("spent_msat") + paid_msat)
    event = Event.objects.select_for_update().filter(event_id=parsed.id).first()
    if event is not None:
        if event.state == Event.State.PENDING and event.waiting_for == "underpaid":
            # Paying the whole event again for a pending underpaid one is a top-up.
            _topup_into(event, entry=entry, amount_msat=paid_msat, at=at, settle_index=settle_index)
            return
        if event.state != Event.State.REJECTED:
            rejection_record(
                reason=Reason.DUPLICATE,
                entry=entry,
                amount_msat=paid_msat,
                event=event,
                what="this event",
            )
            status_broadcast_on_commit(keys=[*keys, event.event_id])
            return
        # Rejected before (banned, unknown board, ...): a new payment gets a fresh hearing.
        event.paid_msat = paid_msat
        event.price_msat = 0
        event.settled_at, event.settle_index = at, settle_index
        event.state, event.waiting_for = Event.State.PENDING, ""
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
    if parsed.kind == nostr.KIND_REPLY:
        try:
            target = nostr.reply_target(parsed)
            event.root_ref, event.parent_ref = target.root_id, target.parent_id
        except nostr.EventError:
            pass  # judged below
    # Saved once, by whichever outcome below (insert for a new event).
    _event_evaluate(event, parsed, author=author, entry=entry, at=at, settle_index=settle_index)
    status_broadcast_on_commit(keys=keys, event_id=event.event_id, payload=_status_of(event))


def _event_reject(
    event: Event, reason: str, *, entry: LedgerEntry | None, **context: Any
) -> Rejection:
    event.state = Event.State.REJECTED
    event.waiting_for = ""
    event.save()
    event._status_rejection = rejection_record(
        reason=reason, entry=entry, amount_msat=event.paid_msat, event=event, **context
    )
    return event._status_rejection


def _event_evaluate(
    event: Event,
    parsed: nostr.Event,
    *,
    author: Author,
    entry: LedgerEntry,
    at: datetime,
    settle_index: int | None,
) -> None:
    """Board, kind, size, ban, lock and price checks, then publish or wait."""
    if parsed.kind == rooms.KIND_ROOM_CREATE:  # renting a private room: its own checks and price
        rooms.room_create_evaluate(
            event, parsed, author=author, entry=entry, at=at, settle_index=settle_index
        )
        return
    checked = rules.event_content_check(parsed, at=at)
    if checked.board is not None:
        event.board = checked.board
    if checked.finding is not None:
        _event_reject(event, checked.finding.reason, entry=entry, **checked.finding.context)
        return
    board = checked.board
    if _gate(event, entry=entry, at=at):
        return
    price = pricing.price_for(
        board=board, kind=parsed.kind, pubkey=parsed.pubkey, at=at, settle_index=settle_index
    )
    event.price_msat = price.price_msat
    if event.paid_msat < price.price_msat:
        _underpaid(event, entry=entry, amount_msat=event.paid_msat)
        return
    _event_accept(event, parsed, author=author, entry=entry, at=at, settle_index=settle_index)


def _gate(event: Event, *, entry: LedgerEntry | None, at: datetime) -> bool:
    """Ban and thread-lock checks at settle time `at`; True when the event was rejected."""
    finding = rules.gate_check(
        pubkey=event.pubkey,
        kind=event.kind,
        root_ref=event.root_ref,
        parent_ref=event.parent_ref,
        board_id=event.board_id,
        at=at,
    )
    if finding is None:
        return False
    _event_reject(event, finding.reason, entry=entry, **finding.context)
    return True


def _underpaid(event: Event, *, entry: LedgerEntry, amount_msat: int) -> None:
    """Kept waiting for a top-up; the rejection row carries this payment's amount."""
    event.state, event.waiting_for = Event.State.PENDING, "underpaid"
    event.save()
    short = event.price_msat - event.paid_msat
    event._status_rejection = rejection_record(
        reason=Reason.UNDERPAID,
        entry=entry,
        amount_msat=amount_msat,
        event=event,
        price_sats=-(-event.price_msat // 1000),
        paid_sats=event.paid_msat // 1000,
        short_sats=-(-short // 1000),
    )


def _parent_available(event: Event) -> tuple[Thread | None, Post | None, bool]:
    """(thread, parent post, ready) for a reply."""
    thread = (
        Thread.objects.select_related("event", "board")
        .filter(event__event_id=event.root_ref)
        .first()
    )
    if thread is None:
        return None, None, False
    if event.parent_ref == event.root_ref:
        return thread, None, True
    parent = Post.objects.filter(event__event_id=event.parent_ref).first()
    return thread, parent, parent is not None


def _event_accept(
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
    if parsed.kind == rooms.KIND_ROOM_CREATE:
        rooms.room_publish(event=event, parsed=parsed, entry=entry, at=at)
        return
    if parsed.kind == nostr.KIND_THREAD:
        publish.thread_publish(event=event, parsed=parsed, author=author, at=at)
        return
    _reply_try_publish(event, parsed, author=author, entry=entry, at=at)


def _reply_try_publish(
    event: Event,
    parsed: nostr.Event,
    *,
    author: Author,
    entry: LedgerEntry | None,
    at: datetime,
) -> bool:
    thread, parent, ready = _parent_available(event)
    if not ready:
        event.state, event.waiting_for = Event.State.PENDING, "parent"
        event.save()
        # The parent's attach step looks for waiting replies after the parent's commit; if it
        # looked before this wait committed, it missed us. Looking again after our own commit
        # closes that gap: of two commits, the later one's look sees the other's write.
        event_id, pubkey = event.event_id, event.pubkey
        transaction.on_commit(lambda: orphan_attach(event_id=event_id, pubkey=pubkey), robust=True)
        return False
    assert thread is not None
    if thread.is_locked:
        _event_reject(event, Reason.THREAD_LOCKED, entry=entry)
        return False
    if thread.board_id != event.board_id or (parent is not None and parent.thread_id != thread.pk):
        _event_reject(
            event,
            Reason.MALFORMED,
            entry=entry,
            detail="the reply's thread, parent and board do not agree",
        )
        return False
    publish.reply_publish(
        event=event, parsed=parsed, author=author, thread=thread, parent=parent, at=at
    )
    return True


def _status_of(event: Event) -> dict[str, Any]:
    """The status payload from what this reconciliation just did (no reading back)."""
    where = getattr(event, "_status_where", None)
    return event_status(
        event,
        rejection=getattr(event, "_status_rejection", None),
        thread_event_id=where[0] if where else None,
        number=where[1] if where else None,
    )


# --- orphans ---------------------------------------------------------------------------------
#
# A reply waits (`waiting_for="parent"`) while its thread or parent reply is not published. Three
# looks publish it, and none of them depends on a task that can be lost:
# - the parent's `orphans_attach` task, queued after the parent's commit (the fast path);
# - the reply's own look after its wait commits (`_reply_try_publish`), which closes the race
#   with a parent published concurrently;
# - the sweep's `orphans_attach_ready`, which finds every waiting reply whose parent is
#   published (a lost task, a crash between a commit and its look).


def orphans_attach(*, event_id: str) -> int:
    """Publish the replies that waited for `event_id` (a thread or reply just published)."""
    waiting = Event.objects.filter(state=Event.State.PENDING, waiting_for="parent").filter(
        Q(root_ref=event_id) | Q(parent_ref=event_id)
    )
    return _orphans_publish(waiting)


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


def orphans_attach_ready(*, limit: int = 1000) -> int:
    """The sweep's pass: publish every waiting reply whose parent is published.

    Repeated while it publishes something: a reply to a waiting reply becomes ready when
    that one is published.
    """
    published = 0
    while published < limit:
        step = _orphans_publish(orphans_ready(), limit=limit - published)
        if step == 0:
            break
        published += step
    return published


def orphan_attach(*, event_id: str, pubkey: str) -> bool:
    """Publish one waiting reply if its parent is published now; False if it still waits."""
    with realtime.batch():
        return _orphan_attach(event_id, pubkey)


def reply_parent_ready(event: Event) -> bool:
    """Whether the thread (and parent reply) a reply needs is published."""
    return _parent_available(event)[2]


def _orphans_publish(waiting: QuerySet[Event], *, limit: int | None = None) -> int:
    # In settle order, so a reply to a waiting reply comes after its parent.
    ordered = waiting.order_by("accepted_settle_index", "pk").values_list("event_id", "pubkey")
    rows = list(ordered[:limit] if limit else ordered)
    with realtime.batch():
        return sum(_orphan_attach(orphan_id, pubkey) for orphan_id, pubkey in rows)


def _orphan_attach(event_id: str, pubkey: str) -> bool:
    with _holding_locks():
        author = author_lock(pubkey=pubkey)  # the same lock order as reconciliation
        event = Event.objects.select_for_update().get(event_id=event_id)
        if event.state != Event.State.PENDING or event.waiting_for != "parent":
            return False
        if not reply_parent_ready(event):
            return False  # still waiting: nothing to write (and no further look queued)
        parsed = nostr.parse_event(event.raw_json)
        at = event.accepted_at or event.settled_at or timezone.now()
        entry = _delivering_entry(event)
        published = _reply_try_publish(event, parsed, author=author, entry=entry, at=at)
        status_broadcast_on_commit(keys=[], event_id=event.event_id, payload=_status_of(event))
        return published


def _delivering_entry(event: Event) -> LedgerEntry | None:
    return (
        LedgerEntry.objects.filter(
            event_id=event.event_id, direction=IN, status=LedgerEntry.Status.SETTLED
        )
        .order_by("-settle_index")
        .first()
    )


# --- top-ups and tips -------------------------------------------------------------------------


def _topup_apply(entry: LedgerEntry, event_id: str) -> None:
    event = Event.objects.select_for_update().filter(event_id=event_id).first()
    if event is None:
        rejection_record(
            reason=Reason.UNKNOWN_TARGET,
            entry=entry,
            amount_msat=entry.amount_msat,
            event_ref=event_id,
            pubkey=entry.pubkey,
            why="not known here",
        )
        status_broadcast_on_commit(keys=[entry.payment_hash, event_id])
        return
    author = author_lock(pubkey=event.pubkey)
    Author.objects.filter(pk=author.pk).update(spent_msat=F("spent_msat") + entry.amount_msat)
    _topup_into(
        event,
        entry=entry,
        amount_msat=entry.amount_msat,
        at=entry.settled_at,
        settle_index=entry.settle_index,
    )
    status_broadcast_on_commit(keys=[entry.payment_hash, event_id])


def _topup_into(
    event: Event,
    *,
    entry: LedgerEntry,
    amount_msat: int,
    at: datetime,
    settle_index: int | None,
) -> None:
    """Add a payment to an event: completes an underpaid one; extra money for a published one."""
    if event.state == Event.State.PUBLISHED:
        publish.sats_add(event=event, amount_msat=amount_msat)
        return
    if event.state != Event.State.PENDING or event.waiting_for != "underpaid":
        rejection_record(
            reason=Reason.UNKNOWN_TARGET,
            entry=entry,
            amount_msat=amount_msat,
            event=event,
            why="not waiting for a top-up",
        )
        return
    event.paid_msat += amount_msat
    if event.paid_msat < event.price_msat:
        _underpaid(event, entry=entry, amount_msat=amount_msat)
        return
    rejection_resolve(reasons=[Reason.UNDERPAID], at=at, resolution="topped_up", event=event)
    if _gate(event, entry=entry, at=at):
        return
    author = author_lock(pubkey=event.pubkey)
    parsed = nostr.parse_event(event.raw_json)
    _event_accept(event, parsed, author=author, entry=entry, at=at, settle_index=settle_index)


def _tip_apply(entry: LedgerEntry, event_id: str) -> None:
    event = Event.objects.select_for_update().filter(event_id=event_id).first()
    finding = rules.tip_target_check(event)
    if finding is not None:
        rejection_record(
            reason=finding.reason,
            entry=entry,
            amount_msat=entry.amount_msat,
            event=event,
            event_ref=event_id,
            **finding.context,
        )
        return
    publish.sats_add(event=event, amount_msat=entry.amount_msat)
    # In this transaction: a tip is never applied without its forward planned (or vice versa).
    tips.tip_applied(entry=entry, event=event)


# --- multipart --------------------------------------------------------------------------------


def _part_store(entry: LedgerEntry, part: protocol.PartMessage) -> bool:
    """Keep one part; False when that index of that event was already received."""
    if MessagePart.objects.filter(event_id=part.event_id, index=part.index).exists():
        return False
    MessagePart.objects.create(
        ledger_entry=entry,
        event_id=part.event_id,
        index=part.index,
        count=part.count,
        data=part.data,
        received_at=entry.settled_at,
    )
    return True


def _part_duplicate(entry: LedgerEntry, part: protocol.PartMessage) -> None:
    rejection_record(
        reason=Reason.DUPLICATE,
        entry=entry,
        amount_msat=entry.amount_msat,
        event_ref=part.event_id,
        what=f"part {part.index + 1} of {part.count}",
    )


def _part_receive(entry: LedgerEntry, part: protocol.PartMessage) -> None:
    keys = [entry.payment_hash, part.event_id]
    if not _part_store(entry, part):
        _part_duplicate(entry, part)
        status_broadcast_on_commit(keys=keys)
        return
    siblings = LedgerEntry.objects.select_for_update().filter(
        direction=IN,
        purpose=LedgerEntry.Purpose.PART,
        event_id=part.event_id,
        reconcile_state__in=OPEN_STATES,
    )
    siblings = siblings.exclude(pk=entry.pk).order_by("settle_index", "pk")
    if entry.pubkey:
        # The completing part (it carries the author): take in every part still queued.
        for sibling in siblings:
            try:
                other = protocol.decode_records(entry_records(sibling))
            except protocol.ProtocolError:
                continue  # its own task rejects it
            if isinstance(other, protocol.PartMessage) and not _part_store(sibling, other):
                _part_duplicate(sibling, other)
            _mark(sibling, State.DONE)
            keys.append(sibling.payment_hash)
    elif siblings.exclude(pubkey="").exists():
        status_broadcast_on_commit(keys=keys)
        return  # the completing part is queued: it assembles in its author's order
    stored = list(MessagePart.objects.filter(event_id=part.event_id).select_related("ledger_entry"))
    if len({p.index for p in stored}) < part.count:
        status_broadcast_on_commit(keys=keys)
        return
    _parts_assemble(entry, part, stored, keys)


def _parts_assemble(
    entry: LedgerEntry,
    part: protocol.PartMessage,
    stored: list[MessagePart],
    keys: list[str],
) -> None:
    entries = [p.ledger_entry for p in stored]
    paid = sum(e.amount_msat for e in entries)
    last = max(entries, key=lambda e: (e.settle_index or 0, e.pk))
    keys = [*keys, *_hashes(entries)]
    try:
        parsed = protocol.join_parts(
            [protocol.PartMessage(p.event_id, p.index, p.count, bytes(p.data)) for p in stored]
        )
    except protocol.ProtocolError as exc:
        rejection_record(
            reason=reason_for_code(exc.code),
            entry=last,
            amount_msat=paid,
            event_ref=part.event_id,
            pubkey=entry.pubkey,
            detail=exc.message,
        )
        status_broadcast_on_commit(keys=keys)
        return
    rejection_resolve(
        reasons=[Reason.INCOMPLETE_PARTS],
        at=last.settled_at,
        resolution="parts_completed",
        ref=part.event_id,
    )
    _event_deliver(
        parsed=parsed,
        entry=last,
        paid_msat=paid,
        at=last.settled_at,
        settle_index=last.settle_index,
        keys=keys,
    )
