"""Rebuild the ledger and every derived table from the node's invoice history.

The node's settled invoices are the forum's money and messages; everything else is derived,
except moderation decisions, which are kept and re-applied:

- bans stay as rows (they are judged by time, `Ban.objects.active(at)`, so replay is exact);
- thread locks and board setting changes are replayed from the audit log at their moment,
  interleaved with the payments in settle order, so a reply that met a locked thread (or an old
  price) meets it again;
- hidden and pinned flags are re-applied by event id at the end, then counters are recounted;
- refunds (outgoing ledger rows) stay and are linked again to the rejection they refunded.

Orphan and multipart timeouts are applied along the replay at each payment's settle time.
Limits: a board created or destroyed after some payments is treated as always existing, and a
lock set within the same second as a payment settled may fall on the other side of it (settle
times are whole seconds).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from forum.ingest import balance, ledger, listener, reconcile, sweep
from forum.models import (
    Author,
    Board,
    Event,
    LedgerEntry,
    ListenerCursor,
    MessagePart,
    ModerationAction,
    Post,
    Rejection,
    Thread,
)
from forum.services import counters, identity, rooms
from forum.services.versions import versions_bump_all

log = logging.getLogger(__name__)

REBUILD_HOLDER = "rebuild_from_node"
REBUILD_CHUNK = 1000
TIMELINE_ACTIONS = ("thread.lock", "thread.unlock", "board.update")


class RebuildRefused(RuntimeError):
    """A live listener holds the node's lease: stop it first."""


@dataclass
class ModerationSnapshot:
    hidden_threads: set[str] = field(default_factory=set)
    hidden_posts: set[str] = field(default_factory=set)
    pinned_threads: set[str] = field(default_factory=set)
    locked_threads: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)
    nip05_names: dict[str, str] = field(default_factory=dict)  # names a moderator gave keys
    # (refunded payment hash, reason) -> outgoing refund ledger row id
    refunds: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class RebuildReport:
    invoices: int = 0
    ledger_entries: int = 0
    published: int = 0
    rejected: int = 0
    waiting: int = 0
    refunds_relinked: int = 0
    flags_reapplied: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def moderation_snapshot() -> ModerationSnapshot:
    snap = ModerationSnapshot()
    for event_id, hidden, pinned, locked in Thread.objects.values_list(
        "event__event_id", "is_hidden", "is_pinned", "is_locked"
    ):
        if hidden:
            snap.hidden_threads.add(event_id)
        if pinned:
            snap.pinned_threads.add(event_id)
        if locked:
            snap.locked_threads.add(event_id)
    snap.hidden_posts = set(
        Post.objects.filter(is_hidden=True).values_list("event__event_id", flat=True)
    )
    snap.aliases = dict(Author.objects.exclude(alias="").values_list("pubkey", "alias"))
    snap.nip05_names = dict(
        Author.objects.exclude(nip05_local="").values_list("pubkey", "nip05_local")
    )
    for payment_hash, reason, refund_id in Rejection.objects.filter(
        refund_entry__isnull=False, ledger_entry__isnull=False
    ).values_list("ledger_entry__payment_hash", "reason", "refund_entry_id"):
        snap.refunds[(payment_hash, reason)] = refund_id
    return snap


def _derived_clear(*, node_pubkey: str) -> None:
    """Delete everything the ledger derives (and the incoming ledger itself)."""
    Rejection.objects.all().delete()
    MessagePart.objects.all().delete()
    Post.objects.filter(parent__isnull=False).update(parent=None)
    Post.objects.all().delete()
    Thread.objects.all().delete()
    Event.objects.all().delete()
    Author.objects.all().delete()
    LedgerEntry.objects.filter(direction=LedgerEntry.Direction.IN).delete()
    ListenerCursor.objects.filter(node_pubkey=node_pubkey).update(add_index=0, settle_index=0)
    Board.objects.update(thread_count=0, post_count=0, last_activity_at=None)


def _timeline() -> list[ModerationAction]:
    return list(
        ModerationAction.objects.filter(action__in=TIMELINE_ACTIONS).order_by("created_at", "id")
    )


def _board_values(values: dict) -> dict:
    editable = {f.name for f in Board._meta.get_fields() if hasattr(f, "attname")}
    return {k: v for k, v in (values or {}).items() if k in editable}


def _rewind_boards(actions: list[ModerationAction]) -> None:
    """Put every board back to its settings before the first logged change."""
    for action in reversed(actions):
        if action.action == "board.update":
            before = _board_values((action.details or {}).get("before", {}))
            if before:
                Board.objects.filter(slug=action.target_id).update(**before)


def _apply(action: ModerationAction) -> None:
    if action.action == "board.update":
        after = _board_values((action.details or {}).get("after", {}))
        if after:
            Board.objects.filter(slug=action.target_id).update(**after)
    else:
        Thread.objects.filter(event__event_id=action.target_id).update(
            is_locked=action.action == "thread.lock"
        )


def _expire_at(at: datetime) -> None:
    sweep.orphans_expire(now=at)
    sweep.parts_expire(now=at)


def _reconcile_all() -> None:
    while reconcile.reconcile_batch().more:
        pass


def _chunks(invoices: list, actions: list[ModerationAction]) -> list[tuple[list, list]]:
    """The invoices in settle order, cut wherever a timeline action falls between two of them
    or the settle times span more than a sweep interval (when timeouts are applied live)."""
    span = timedelta(seconds=float(getattr(settings, "SWEEP_INTERVAL_SECONDS", 30)))
    pending = list(actions)
    chunks: list[tuple[list, list]] = []
    current: list = []
    for invoice in invoices:
        at = ledger.settle_time(invoice)
        due = []
        while pending and pending[0].created_at <= at:
            due.append(pending.pop(0))
        start = ledger.settle_time(current[0]) if current else at
        if current and (due or at - start > span or len(current) >= REBUILD_CHUNK):
            chunks.append((current, []))
            current = []
        if due:
            chunks.append(([], due))
        current.append(invoice)
    if current:
        chunks.append((current, []))
    if pending:
        chunks.append(([], pending))
    return chunks


def forum_rebuild_from_node(*, client=None, now: datetime | None = None) -> RebuildReport:
    """Rebuild from the node's full invoice history; refuses while a listener holds the lease.

    The replay rides the live path: invoices are recorded in batches (group commit) and
    reconciled by `reconcile_batch`, with moderation's timeline applied between batches at
    its moment and timeouts applied at each batch's settle time.
    """
    client = client or identity.forum_client()
    node_pubkey = identity.forum_node_pubkey(client)
    report = RebuildReport()
    ledger.cursor_ensure(node_pubkey=node_pubkey)
    # The listeners' lock too (PostgreSQL): a standby that got it would take the lease over.
    lock = listener.listener_lock(node_pubkey)
    if not lock.acquire(timeout=0.5) or not listener.lease_acquire(
        node_pubkey=node_pubkey, holder=REBUILD_HOLDER, seconds=3600
    ):
        lock.release()
        raise RebuildRefused("a listener holds this node's lease; stop it, then rebuild")
    try:
        invoices = listener.settled_backlog(client)
        report.invoices = len(invoices)
        snap = moderation_snapshot()
        # EVENTs paid from balances are ledger rows but no node invoices: kept, judged again.
        spends = balance.spends_snapshot()
        actions = _timeline()
        with transaction.atomic():
            _derived_clear(node_pubkey=node_pubkey)
            _rewind_boards(actions)
        for chunk, due in _chunks(invoices, actions):
            for action in due:
                _apply(action)
            if not chunk:
                continue
            _expire_at(ledger.settle_time(chunk[0]))
            recorded = ledger.ledger_record_invoices(
                invoices=chunk,
                node_pubkey=node_pubkey,
                lease_holder=REBUILD_HOLDER,
                lease_seconds=3600,
            )
            report.ledger_entries += recorded.created
            balance.spends_replay(spends, up_to=max(i.settle_index for i in chunk))
            _reconcile_all()
        if balance.spends_replay(spends, up_to=None):
            _reconcile_all()
        _expire_at(now or timezone.now())
        # The node still holds destroyed rooms' payments: their replay must not bring them back.
        rooms.rooms_scrub_destroyed()
        report.flags_reapplied = _reapply(snap)
        report.refunds_relinked = _relink_refunds(snap)
        counters.counters_recompute()
        states = defaultdict(int)
        for state in Event.objects.values_list("state", flat=True):
            states[state] += 1
        report.published = states[Event.State.PUBLISHED]
        report.rejected = Rejection.objects.filter(resolved_at__isnull=True).count()
        report.waiting = states[Event.State.PENDING]
        log.info("rebuild_from_node %s", report.as_dict())
        versions_bump_all()
        return report
    finally:
        listener.lease_release(node_pubkey=node_pubkey, holder=REBUILD_HOLDER)
        lock.release()


def _reapply(snap: ModerationSnapshot) -> int:
    changed = 0
    with transaction.atomic():
        changed += Thread.objects.filter(event__event_id__in=snap.hidden_threads).update(
            is_hidden=True
        )
        changed += Thread.objects.filter(event__event_id__in=snap.pinned_threads).update(
            is_pinned=True
        )
        # The timeline replayed locks; the snapshot is the final word for threads whose
        # lock predates the audit log.
        changed += Thread.objects.filter(event__event_id__in=snap.locked_threads).update(
            is_locked=True
        )
        changed += Post.objects.filter(event__event_id__in=snap.hidden_posts).update(is_hidden=True)
        for pubkey, alias in snap.aliases.items():
            Author.objects.filter(pubkey=pubkey).update(alias=alias)
        for pubkey, name in snap.nip05_names.items():
            # A key known only by its name here (it never paid) gets its row back as well.
            Author.objects.update_or_create(pubkey=pubkey, defaults={"nip05_local": name})
    return changed


def _relink_refunds(snap: ModerationSnapshot) -> int:
    linked = 0
    with transaction.atomic():
        for (payment_hash, reason), refund_id in snap.refunds.items():
            rejection = (
                Rejection.objects.filter(
                    ledger_entry__payment_hash=payment_hash, reason=reason, refund_entry=None
                )
                .order_by("id")
                .first()
            )
            if rejection is not None:
                rejection.refund_entry_id = refund_id
                rejection.save(update_fields=["refund_entry"])
                linked += 1
    return linked
