"""The periodic sweep: whatever a crash, a lost task or a stream gap left behind is picked up here.

- ledger rows still pending (or in error, below the attempt cap) are queued again;
- replies waiting for a thread or parent reply that is published are published (whatever
  attach step was missed: a lost task, a crash between a commit and its look);
- replies that waited too long for a thread that never came are rejected `orphan_timeout`;
- parts of a set that never completed are rejected `incomplete_parts` (one row per payment);
- settled invoices the node reports but the ledger lacks are recorded (and reconciled).

Runs as the `forum.sweep` beat task, or as a timer thread in the embedded process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from forum.models import Event, LedgerEntry, ListenerCursor, MessagePart, Rejection
from forum.services import identity, ledger, reconcile
from forum.services.rejections import rejection_record
from forum.services.status import status_broadcast_on_commit

log = logging.getLogger(__name__)

Reason = Rejection.Reason


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


@dataclass
class SweepReport:
    requeued: int = 0
    orphans_attached: int = 0
    orphans_expired: int = 0
    parts_expired: int = 0
    invoices_filled: int = 0
    node_error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


REQUEUED_KEY = "sweep:requeued:{}"


def _recently_requeued(hashes: list[str], *, now: datetime, grace_seconds: int) -> set[str]:
    """The rows this sweep (or another) queued within the grace: not queued again yet."""
    try:
        seen = cache.get_many([REQUEUED_KEY.format(h) for h in hashes])
    except Exception:  # no cache (Redis down): queue them all, a second copy is only waste
        log.warning("sweep: requeue memory unavailable", exc_info=True)
        return set()
    since = now.timestamp() - grace_seconds
    return {h for h in hashes if seen.get(REQUEUED_KEY.format(h), float("-inf")) > since}


def _remember_requeued(hashes: list[str], *, now: datetime, grace_seconds: int) -> None:
    try:
        cache.set_many(
            {REQUEUED_KEY.format(h): now.timestamp() for h in hashes},
            timeout=max(4 * grace_seconds, 600),
        )
    except Exception:
        log.warning("sweep: requeue memory unavailable", exc_info=True)


# A pending row this old while the broker holds no task at all has lost its task.
IDLE_BROKER_GRACE_SECONDS = 2
# Written into the broker's Redis database by every sweep: gone means Redis lost its data.
BROKER_MARK_KEY = "forum:sweep:broker-mark"


def broker_state() -> str:
    """What the Redis broker says about tasks of pending rows: "lost", "idle" or "busy".

    "lost": the mark the previous sweep left is gone (Redis restarted without persistence, or
    flushed), so every task queued before that is gone. "idle": the queue and kombu's
    `unacked` hash are empty (with `acks_late` a task stays in that hash until it has run), so
    no worker will reconcile a row still pending. "busy" otherwise, and for other brokers,
    in eager mode or when the broker cannot be asked.
    """
    from config.celery import app

    if app.conf.task_always_eager:
        return "busy"
    try:
        with app.connection_for_write() as conn:
            if conn.transport.driver_type != "redis":
                return "busy"
            channel = conn.default_channel
            client = channel.client
            lost = not client.exists(BROKER_MARK_KEY)
            client.set(BROKER_MARK_KEY, "1")
            if lost:
                return "lost"
            queued = client.llen(app.conf.task_default_queue)
            return "idle" if queued == 0 and client.hlen(channel.unacked_key) == 0 else "busy"
    except Exception:  # broker down: nothing to conclude
        return "busy"


def ledger_requeue_stale(
    *, now: datetime, grace_seconds: int | None = None, limit: int = 1000
) -> int:
    """Queue reconciliation again for rows that should have been done by now.

    The grace (SWEEP_REQUEUE_AFTER_SECONDS) applies twice: a row is queued again once it is
    that old, and then not again until that long after (the cache remembers when), so a
    backlog that takes a while to drain is not fed a second copy of each row every sweep.
    Forgetting (a flushed cache) only costs a copy: each one is a cheap "already done" check.
    When Redis lost its data since the last sweep, every pending row is queued again at once
    (one whose task was queued after the loss gets a harmless second copy); when the broker
    holds no task at all, every row pending for a couple of seconds is.
    """
    from forum import tasks

    if grace_seconds is None:
        grace_seconds = _setting("SWEEP_REQUEUE_AFTER_SECONDS", 60)
        state = broker_state()
        if state == "lost":
            grace_seconds = 0
        elif state == "idle":
            grace_seconds = min(grace_seconds, IDLE_BROKER_GRACE_SECONDS)

    stale = list(
        LedgerEntry.objects.filter(
            direction=LedgerEntry.Direction.IN,
            reconcile_state__in=reconcile.OPEN_STATES,
            reconcile_attempts__lt=reconcile.max_attempts(),
            created_at__lt=now - timedelta(seconds=grace_seconds),
        )
        .order_by("settle_index")
        .values_list("payment_hash", flat=True)[:limit]
    )
    recent = _recently_requeued(stale, now=now, grace_seconds=grace_seconds)
    hashes = [h for h in stale if h not in recent]
    queued = []
    for payment_hash in hashes:
        try:
            tasks.reconcile_payment.delay(payment_hash)
            queued.append(payment_hash)
        except Exception:  # eager mode surfaces task errors here; the next sweep tries again
            log.exception("re-queueing %s failed", payment_hash)
    _remember_requeued(queued, now=now, grace_seconds=grace_seconds)
    return len(hashes)


def orphans_expire(*, now: datetime) -> int:
    """Reject the replies whose thread or parent has not been published within the timeout."""
    timeout = _setting("ORPHAN_TIMEOUT_SECONDS", 3600)
    expired = 0
    candidates = Event.objects.filter(
        state=Event.State.PENDING,
        waiting_for="parent",
        accepted_at__lt=now - timedelta(seconds=timeout),
    ).values_list("pk", flat=True)
    for pk in list(candidates):
        with transaction.atomic():
            event = Event.objects.select_for_update().get(pk=pk)
            if event.state != Event.State.PENDING or event.waiting_for != "parent":
                continue
            if reconcile.reply_parent_ready(event):
                continue  # its parent is published: it is attached, never expired
            event.state, event.waiting_for = Event.State.REJECTED, ""
            event.save(update_fields=["state", "waiting_for"])
            rejection_record(
                reason=Reason.ORPHAN_TIMEOUT,
                entry=reconcile._delivering_entry(event),
                amount_msat=event.paid_msat,
                event=event,
                minutes=timeout // 60,
            )
            status_broadcast_on_commit(keys=[event.event_id])
            expired += 1
    return expired


def parts_expire(*, now: datetime) -> int:
    """Reject each payment of a part set that stayed incomplete past the timeout."""
    timeout = _setting("PARTS_TIMEOUT_SECONDS", 3600)
    groups = (
        MessagePart.objects.values("event_id")
        .annotate(
            received=Count("index", distinct=True), count=Max("count"), first=Min("received_at")
        )
        .filter(first__lt=now - timedelta(seconds=timeout))
    )
    expired = 0
    for group in groups:
        if group["received"] >= group["count"]:
            continue
        event_id = group["event_id"]
        if Event.objects.filter(event_id=event_id).exists():
            continue
        with transaction.atomic():
            parts = MessagePart.objects.select_for_update().filter(event_id=event_id)
            for part in parts.select_related("ledger_entry"):
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
                expired += 1
            status_broadcast_on_commit(keys=[event_id])
    return expired


def ledger_fill_from_node(*, client, node_pubkey: str, now: datetime, lookback: int) -> int:
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
    filled = 0
    for inv in sorted(settled, key=lambda i: i.settle_index):
        if inv.payment_hash in known:
            continue
        fresh = ledger.settle_time(inv) > now - timedelta(seconds=60)
        if inv.settle_index > reached and fresh:
            continue
        _, created = ledger.ledger_record_invoice(
            invoice=inv, node_pubkey=node_pubkey, advance_cursor=False
        )
        if created:
            log.warning(
                "sweep filled a ledger gap: %s settle_index=%s", inv.payment_hash, inv.settle_index
            )
            filled += 1
    return filled


def sweep_run(*, now: datetime | None = None, check_node: bool = True) -> SweepReport:
    """One pass of everything above; each part fails on its own without stopping the rest."""
    now = now or timezone.now()
    report = SweepReport()
    if check_node:
        try:
            client = identity.forum_client()
            pubkey = identity.forum_node_pubkey(client)
            report.invoices_filled = ledger_fill_from_node(
                client=client,
                node_pubkey=pubkey,
                now=now,
                lookback=_setting("SWEEP_NODE_LOOKBACK", 2000),
            )
        except Exception as exc:  # node down or not configured: the rest still runs
            report.node_error = f"{type(exc).__name__}: {exc}"
            log.warning("sweep could not compare with the node: %s", report.node_error)
    report.requeued = ledger_requeue_stale(now=now)
    # Attach before expiring: a reply whose parent is published is never rejected.
    report.orphans_attached = reconcile.orphans_attach_ready()
    report.orphans_expired = orphans_expire(now=now)
    report.parts_expired = parts_expire(now=now)
    if any(value for value in report.as_dict().values()):
        log.info("sweep %s", report.as_dict())
    return report


def sweep_loop(*, stop: threading.Event, interval: float | None = None) -> None:
    """The embedded default's beat: sweep every SWEEP_INTERVAL_SECONDS until `stop`."""
    interval = interval or float(getattr(settings, "SWEEP_INTERVAL_SECONDS", 30))
    while not stop.wait(interval):
        try:
            sweep_run()
        except Exception:
            log.exception("sweep failed")
        finally:
            close_old_connections()


def embedded_start(embedded) -> None:
    """STARTUP_HOOKS entry: the sweep as a timer thread of the embedded process."""
    embedded.spawn("sweep", lambda stop: sweep_loop(stop=stop))
