"""Celery tasks and the embedded process's timers: thin adapters that run one stage or service,
are safe to run twice, and queue the next step from the outcome it returned.

Delivery: `acks_late` with `reject_on_worker_lost` (config/settings.py), so a task whose worker
died runs again: at once when a pool child died, after BROKER_VISIBILITY_TIMEOUT_SECONDS when
the whole worker did. A countdown longer than that timeout would be handed out again while it
waits, so retries back off to 10 s at most, and what waits longer (a tip forward's next
attempt) is kept as a due time in the database and queued by a periodic task when due.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections

from forum import realtime
from forum.ingest.listener import Listener, default_holder
from forum.ingest.outcome import Reconciled, Recorded
from forum.ingest.status import status_send
from forum.ingest.sweep import SweepReport, sweep_run
from forum.services.health import check_database
from forum.services.versions import versions_bump_all, versions_bump_many
from forum.views import live
from lightning.types import LightningAuthError

log = logging.getLogger(__name__)

# Worth another try: the database went away, a deadlock or serialization failure, a lock wait.
# (IntegrityError too: a concurrent insert lost a race; the retry sees the winner's row.)
TRANSIENT_ERRORS = (OperationalError, InterfaceError, DatabaseError)


@shared_task(name="forum.worker_health")
def worker_health() -> dict:
    """Answered by a worker: proves the broker round trip and that the worker reaches the database."""
    db = check_database()
    return {"worker": socket.gethostname(), "database": db.ok, "detail": db.detail}


# --- the paid-message pipeline: each stage returns an outcome; these queue the next step ------


# Set while a `reconcile_batch` task is queued and not started: the listener (a batch per few
# payments under load) and the sweep then queue no second one, since the queued task claims
# every pending row when it starts. Shared by all processes through the default cache (Redis
# with REDIS_URL; eager tasks in the embedded process). The expiry covers a task the broker
# lost: the next payment or sweep queues again.
RECONCILE_QUEUED_KEY = "forum:reconcile-queued"
RECONCILE_QUEUED_SECONDS = 30


def reconcile_queue() -> bool:
    """Queue one reconcile batch unless one is waiting already; True if this call queued it."""
    if not cache.add(RECONCILE_QUEUED_KEY, 1, timeout=RECONCILE_QUEUED_SECONDS):
        return False
    try:
        reconcile_batch.delay()
    except Exception:
        cache.delete(RECONCILE_QUEUED_KEY)  # nothing was queued: let the next caller try
        raise
    return True


def recorded_handle(recorded: Recorded) -> None:
    """After a ledger commit: composers hear "paid", then a reconcile batch is queued."""
    realtime.send_batch(list(recorded.messages))
    if recorded.created:
        reconcile_queue()


def reconciled_handle(outcome: Reconciled) -> None:
    """After a batch committed: live pages and composers hear of it, tip forwards go out."""
    if outcome.boards_changed or outcome.threads_changed:
        versions_bump_many(boards=outcome.boards_changed, threads=outcome.threads_changed)
    if outcome.extra.get("all_pages"):
        versions_bump_all()  # a profile name shows wherever its author appears
    if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        # A worker checks at once; the embedded process leaves it to its upkeep timer (a
        # remote domain's timeout must not hold up the listener thread that reconciles).
        for pubkey in outcome.extra.get("nip05", ()):
            nip05_verify.delay(pubkey)
        # New zap receipts go to the relays their requests named (NIP-57); embedded, the
        # upkeep timer sends them (a remote relay must not hold up the listener thread).
        for _group, message in outcome.messages:
            if message.get("type") == "zap.receipt" and message["payload"].get("id"):
                zap_receipt_publish.delay(message["payload"]["id"])
    with realtime.batch():
        # Only for open pages: what no page watches is neither rendered nor sent (most of a
        # busy forum's threads have no reader at the moment a reply lands).
        watched = realtime.groups_watched(group for group, _ in outcome.messages)
        messages = [(group, message) for group, message in outcome.messages if group in watched]
        # Rendered here once (a reply's card, its board row, its feed item), not in every web
        # process that relays the message.
        realtime.send_batch(live.messages_render(messages))
        status_send(outcome.statuses)
    for tip_hash in outcome.tip_forwards:
        tip_forward.delay(tip_hash)


# How long one task keeps draining batches before it hands on to a fresh task (so a long
# backlog never outlives the broker's visibility timeout or starves other queues).
RECONCILE_TASK_SECONDS = 5.0


# Nobody reads the results (the ledger and events are the outcome). With a result backend,
# each stored one (SET + PUBLISH per task) and each `.delay` subscribed the caller to it.
@shared_task(
    name="forum.reconcile_batch",
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=0.2,
    retry_backoff_max=10,
    retry_jitter=True,
    max_retries=None,  # a database that is away comes back; the rows wait in the ledger
)
def reconcile_batch(self) -> int:
    """Reconcile pending ledger rows, a batch at a time, in settle order (idempotent)."""
    from forum.ingest import reconcile

    cache.delete(RECONCILE_QUEUED_KEY)  # started: rows recorded from now on need a new task
    deadline = time.monotonic() + RECONCILE_TASK_SECONDS
    rows = 0
    while True:
        outcome = reconcile.reconcile_batch()
        reconciled_handle(outcome)
        rows += outcome.rows
        if not outcome.more:
            return rows
        if not self.request.is_eager and time.monotonic() > deadline:
            reconcile_batch.delay()
            return rows


@shared_task(name="forum.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    """Periodic: fill ledger gaps from the node, retry rows, attach or expire orphans and parts."""

    from forum.services import identity

    report = sweep_run(client=identity.forum_client(), grace_seconds=sweep_grace())
    sweep_handle(report)
    return report.as_dict()


def sweep_handle(report: SweepReport) -> None:
    """After a sweep: what it attached or expired is announced; a batch is queued if due."""
    reconciled_handle(report.attached)
    status_send(report.statuses)
    if report.reconcile_due:
        reconcile_queue()


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


def sweep_grace() -> int | None:
    """How old a pending row must be for the sweep to queue a batch: at once when Redis lost
    its data (every task queued before is gone), a couple of seconds when the broker holds no
    task at all, else the usual grace (None: SWEEP_REQUEUE_AFTER_SECONDS)."""
    state = broker_state()
    if state == "lost":
        return 0
    return IDLE_BROKER_GRACE_SECONDS if state == "idle" else None


@shared_task(
    name="forum.tip_forward",
    bind=True,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=1,
    retry_backoff_max=10,
    retry_jitter=True,
    max_retries=8,
)
def tip_forward(self, tip_payment_hash: str) -> str:
    """Forward one tip's share to its author's node (idempotent by the tip's payment hash).

    A failed keysend is not retried here: the row records when the next attempt is due and the
    periodic `tips_forward_due` queues it then (a countdown of minutes would outlive the
    broker's visibility timeout and be handed out again while it waits).
    """
    from forum.services import tips

    return tips.tip_forward_attempt(tip_payment_hash=tip_payment_hash).state


@shared_task(name="forum.tips_forward_due", acks_late=True, ignore_result=True)
def tips_forward_due() -> int:
    """Periodic: queue the tip forwards whose next attempt is due."""
    from forum.services.tips import tips_forward_due as due

    hashes = due()
    for tip_hash in hashes:
        tip_forward.delay(tip_hash)
    return len(hashes)


@shared_task(name="forum.nip05_verify", acks_late=True, ignore_result=True)
def nip05_verify(pubkey: str) -> bool:
    """Check an author's NIP-05 identifier against its domain (timeouts and a size cap)."""
    from forum.services.nip05 import nip05_verify as verify

    result = verify(pubkey=pubkey)
    return bool(result and result.verified)


@shared_task(name="forum.nip05_recheck_due", acks_late=True, ignore_result=True)
def nip05_recheck_due() -> int:
    """Periodic: queue a check of every identifier not checked for NIP05_RECHECK_SECONDS."""
    from forum.services.nip05 import nip05_due

    due = nip05_due()
    for pubkey in due:
        nip05_verify.delay(pubkey)
    return len(due)


@shared_task(name="forum.zap_receipt_publish", acks_late=True, ignore_result=True)
def zap_receipt_publish(receipt_id: str) -> int:
    """Send one zap receipt to the relays its zap request named (once, best effort)."""
    from forum.services.zap_publish import zap_receipt_publish as publish

    return len(publish(receipt_id=receipt_id))


@shared_task(name="forum.zap_receipts_publish_due", acks_late=True, ignore_result=True)
def zap_receipts_publish_due() -> int:
    """Periodic: queue the zap receipts not yet sent to their relays."""
    from forum.services.zap_publish import zap_receipts_due

    due = zap_receipts_due()
    for receipt_id in due:
        zap_receipt_publish.delay(receipt_id)
    return len(due)


@shared_task(name="forum.rooms_destroy_expired", acks_late=True, ignore_result=True)
def rooms_destroy_expired() -> int:
    """Periodic: destroy the private rooms past their expiry (idempotent by slug)."""
    from forum.services.rooms import rooms_destroy_expired as destroy

    return destroy()


# --- the embedded process (no Celery worker, no beat): the same stages on threads -------------


def listener_for_forum_node(
    *, holder: str | None = None, lease_seconds: float | None = None
) -> Listener:
    """The forum node's listener, whose recorded batches `recorded_handle` follows up."""
    from forum.services import identity

    client = identity.forum_client()
    return Listener(
        client=client,
        node_pubkey=identity.forum_node_pubkey(client),
        on_recorded=recorded_handle,
        holder=holder or default_holder(),
        lease_seconds=lease_seconds or float(getattr(settings, "LISTENER_LEASE_SECONDS", 15)),
    )


def listener_run(
    *, stop: threading.Event, holder: str | None = None, lease_seconds: float | None = None
) -> None:
    """Run the forum node's listener until `stop`; waits for the node if it is not up yet."""
    delay = 0.5
    while not stop.is_set():
        try:
            listener = listener_for_forum_node(holder=holder, lease_seconds=lease_seconds)
        except LightningAuthError:
            raise
        except Exception as exc:
            log.warning("listener waiting for the node: %s", exc)
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
            continue
        listener.run(stop)
        return


def listener_embedded_start(embedded) -> None:
    """STARTUP_HOOKS entry: the listener as a thread of the embedded process."""
    embedded.spawn("listener", lambda stop: listener_run(stop=stop))


def sweep_loop(*, stop: threading.Event, interval: float | None = None) -> None:
    """The embedded default's beat: sweep every SWEEP_INTERVAL_SECONDS until `stop`."""
    interval = interval or float(getattr(settings, "SWEEP_INTERVAL_SECONDS", 30))
    while not stop.wait(interval):
        try:
            sweep()
        except Exception:
            log.exception("sweep failed")
        finally:
            close_old_connections()


def sweep_embedded_start(embedded) -> None:
    """STARTUP_HOOKS entry: the sweep as a timer thread of the embedded process."""
    embedded.spawn("sweep", lambda stop: sweep_loop(stop=stop))


def upkeep_loop(*, stop: threading.Event, interval: float | None = None) -> None:
    """Room expiry and tip-forward retries every UPKEEP_INTERVAL_SECONDS (beat's job with
    Celery); both are idempotent, so a beat and this thread running at once do the work once."""
    interval = interval or float(getattr(settings, "UPKEEP_INTERVAL_SECONDS", 30))
    while not stop.wait(interval):
        for job in (
            rooms_destroy_expired,
            tips_forward_due,
            nip05_recheck_due,
            zap_receipts_publish_due,
        ):
            try:
                job()
            except Exception:
                log.exception("upkeep %s failed", job.name)
        close_old_connections()


def upkeep_embedded_start(embedded) -> None:
    """STARTUP_HOOKS entry: room expiry and tip retries as a timer thread."""
    embedded.spawn("upkeep", lambda stop: upkeep_loop(stop=stop))
