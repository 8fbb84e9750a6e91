"""The periodic sweep: whatever a crash, a lost task or a stream gap left behind is found here.
It returns the work it found; its caller queues it (a reconcile batch, status messages).

- settled invoices the node reports but the ledger lacks are recorded;
- ledger rows in `error` below the attempt cap go back to `pending` once their grace passed,
  and any pending row older than the grace means a batch is due (a lost task);
- replies waiting for a thread or parent that is published are published;
- replies that waited too long for a thread that never came are rejected `orphan_timeout`;
- parts of a set that never completed are rejected `incomplete_parts` (one row per payment).

The last three change events, so they run under the reconcile sequencer, never beside a batch.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min
from django.utils import timezone

from forum.ingest import ledger, reconcile
from forum.ingest.outcome import Reconciled, StatusNote
from forum.ingest.rejections import rejection_record
from forum.models import Event, LedgerEntry, ListenerCursor, MessagePart, Rejection

log = logging.getLogger(__name__)

Reason = Rejection.Reason
State = LedgerEntry.ReconcileState


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


@dataclass
class SweepReport:
    invoices_filled: int = 0
    retried: int = 0  # rows in error given another attempt
    stale: int = 0  # pending rows older than the grace (their batch was lost)
    orphans_attached: int = 0
    orphans_expired: int = 0
    parts_expired: int = 0
    node_error: str = ""
    attached: Reconciled = field(default_factory=Reconciled, repr=False)
    statuses: list[StatusNote] = field(default_factory=list, repr=False)

    @property
    def reconcile_due(self) -> bool:
        return bool(self.invoices_filled or self.retried or self.stale)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("attached")
        data.pop("statuses")
        return data


def ledger_retry_due(*, now: datetime, grace_seconds: int | None = None) -> tuple[int, int]:
    """(rows in error put back to pending, pending rows older than the grace)."""
    if grace_seconds is None:
        grace_seconds = _setting("SWEEP_REQUEUE_AFTER_SECONDS", 60)
    before = now - timedelta(seconds=grace_seconds)
    incoming = LedgerEntry.objects.filter(direction=LedgerEntry.Direction.IN)
    retried = incoming.filter(
        reconcile_state=State.ERROR,
        reconcile_attempts__lt=reconcile.max_attempts(),
        created_at__lt=before,
    ).update(reconcile_state=State.PENDING)
    stale = incoming.filter(reconcile_state=State.PENDING, created_at__lt=before).count()
    return retried, stale


def orphans_expire(*, now: datetime) -> list[StatusNote]:
    """Reject the replies whose thread or parent did not arrive within ORPHAN_TIMEOUT_SECONDS.

    Under the sequencer, after ready replies were attached: a reply whose parent is published
    is never rejected here."""
    timeout = _setting("ORPHAN_TIMEOUT_SECONDS", 3600)
    notes: list[StatusNote] = []
    with reconcile.sequenced():
        ready = reconcile.orphans_ready().values_list("pk", flat=True)
        expired = (
            Event.objects.select_for_update()
            .filter(
                state=Event.State.PENDING,
                waiting_for="parent",
                accepted_at__lt=now - timedelta(seconds=timeout),
            )
            .exclude(pk__in=ready)
        )
        for event in expired:
            event.state, event.waiting_for = Event.State.REJECTED, ""
            event.save(update_fields=["state", "waiting_for"])
            rejection_record(
                reason=Reason.ORPHAN_TIMEOUT,
                entry=reconcile.delivering_entry(event),
                amount_msat=event.paid_msat,
                event=event,
                minutes=timeout // 60,
            )
            notes.append(StatusNote((event.event_id,)))
    return notes


def parts_expire(*, now: datetime) -> list[StatusNote]:
    """Reject each payment of a part set that stayed incomplete past PARTS_TIMEOUT_SECONDS."""
    timeout = _setting("PARTS_TIMEOUT_SECONDS", 3600)
    notes: list[StatusNote] = []
    with reconcile.sequenced():
        groups = (
            MessagePart.objects.values("event_id")
            .annotate(
                received=Count("index", distinct=True),
                count=Max("count"),
                first=Min("received_at"),
            )
            .filter(first__lt=now - timedelta(seconds=timeout))
        )
        for group in groups:
            if group["received"] >= group["count"]:
                continue
            event_id = group["event_id"]
            if Event.objects.filter(event_id=event_id).exists():
                continue
            parts = MessagePart.objects.filter(event_id=event_id).select_related("ledger_entry")
            for part in parts:
                entry = part.ledger_entry
                if Rejection.objects.filter(
                    ledger_entry=entry, reason=Reason.INCOMPLETE_PARTS
                ).exists():
                    continue
                rejection_record(
                    reason=Reason.INCOMPLETE_PARTS,
                    entry=entry,
                    amount_msat=entry.amount_msat,
                    event_ref=event_id,
                    received=group["received"],
                    count=group["count"],
                    minutes=timeout // 60,
                )
                notes.append(StatusNote((event_id,)))
    return notes


def ledger_fill_from_node(*, client: Any, node_pubkey: str, now: datetime, lookback: int) -> int:
    """Record settled invoices among the node's latest `lookback` that the ledger lacks.

    An invoice the listener has not reached yet is left to it (settle index above the cursor
    and settled less than a minute ago), so the sweep does not race a healthy stream.
    """
    invoices = []
    offset = 0
    while len(invoices) < lookback:
        page = client.list_invoices(
            index_offset=offset, num_max_invoices=min(500, lookback - len(invoices)), reversed=True
        )
        invoices.extend(page.invoices)
        if len(page.invoices) == 0 or page.first_index_offset <= 1:
            break
        offset = page.first_index_offset
    settled = [inv for inv in invoices if inv.settled]
    if not settled:
        return 0
    known = set(
        LedgerEntry.objects.filter(
            payment_hash__in=[inv.payment_hash for inv in settled]
        ).values_list("payment_hash", flat=True)
    )
    cursor = ListenerCursor.objects.filter(node_pubkey=node_pubkey).first()
    reached = cursor.settle_index if cursor else 0
    missing = [
        inv
        for inv in sorted(settled, key=lambda i: i.settle_index)
        if inv.payment_hash not in known
        and not (
            inv.settle_index > reached and ledger.settle_time(inv) > now - timedelta(seconds=60)
        )
    ]
    if not missing:
        return 0
    recorded = ledger.ledger_record_invoices(
        invoices=missing, node_pubkey=node_pubkey, advance_cursor=False
    )
    for payment_hash in recorded.payment_hashes:
        log.warning("sweep filled a ledger gap: %s", payment_hash)
    return recorded.created


def sweep_run(
    *, now: datetime | None = None, client: Any = None, grace_seconds: int | None = None
) -> SweepReport:
    """One pass of everything above; each part fails on its own without stopping the rest.

    `client`: the forum node's, to compare its invoices with the ledger (None: skip that).
    `grace_seconds`: how old a pending row must be to count as stale (default
    SWEEP_REQUEUE_AFTER_SECONDS).
    """
    now = now or timezone.now()
    report = SweepReport()
    if client is not None:
        try:
            report.invoices_filled = ledger_fill_from_node(
                client=client,
                node_pubkey=client.get_info().identity_pubkey,
                now=now,
                lookback=_setting("SWEEP_NODE_LOOKBACK", 2000),
            )
        except Exception as exc:  # node down: the rest still runs
            report.node_error = f"{type(exc).__name__}: {exc}"
            log.warning("sweep could not compare with the node: %s", report.node_error)
    report.retried, report.stale = ledger_retry_due(now=now, grace_seconds=grace_seconds)
    report.attached = reconcile.orphans_attach_ready()
    report.orphans_attached = len(report.attached.published)
    expired = orphans_expire(now=now)
    report.orphans_expired = len(expired)
    parts = parts_expire(now=now)
    report.parts_expired = len(parts)
    report.statuses = [*expired, *parts]
    if any(v for k, v in report.as_dict().items() if k != "node_error"):
        log.info("sweep %s", report.as_dict())
    return report
