"""Celery tasks: thin adapters that take ids, call one service, and are safe to run twice.

Delivery: `acks_late` with `reject_on_worker_lost` (config/settings.py), so a task whose worker
died runs again: at once when a pool child died, after BROKER_VISIBILITY_TIMEOUT_SECONDS when
the whole worker did. A countdown longer than that timeout would be handed out again while it
waits, so retries back off to 10 s at most, and what waits longer (a tip forward's next
attempt) is kept as a due time in the database and queued by a periodic task when due.
"""

from __future__ import annotations

import socket

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError

from forum.services.health import check_database

# Worth another try: the database went away, a deadlock or serialization failure, a lock wait.
# (IntegrityError too: a concurrent insert lost a race; the retry sees the winner's row.)
TRANSIENT_ERRORS = (OperationalError, InterfaceError, DatabaseError)


@shared_task(name="forum.worker_health")
def worker_health() -> dict:
    """Answered by a worker: proves the broker round trip and that the worker reaches the database."""
    db = check_database()
    return {"worker": socket.gethostname(), "database": db.ok, "detail": db.detail}


# Nobody reads the results of the two hot tasks (the ledger and events are the outcome). With
# a result backend, each stored one (SET + PUBLISH per task) and each `.delay` subscribed the
# caller, the listener included, to that task's result channel.
@shared_task(
    name="forum.reconcile_payment",
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=0.2,
    retry_backoff_max=10,
    retry_jitter=True,
    max_retries=8,
)
def reconcile_payment(self, payment_hash: str) -> str:
    """Reconcile one settled payment (idempotent by payment hash)."""
    from forum.services.reconcile import ledger_entry_give_up, ledger_entry_reconcile

    try:
        return ledger_entry_reconcile(payment_hash=payment_hash)
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            ledger_entry_give_up(payment_hash=payment_hash, error=f"{type(exc).__name__}: {exc}")
        raise


@shared_task(
    name="forum.orphans_attach",
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=0.2,
    retry_backoff_max=10,
    max_retries=8,
)
def orphans_attach(self, event_id: str) -> int:
    """Publish the replies that were waiting for `event_id`."""
    from forum.services.reconcile import orphans_attach as attach

    return attach(event_id=event_id)


@shared_task(name="forum.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    """Periodic: re-queue unreconciled rows, expire orphans and parts, fill gaps from the node."""
    from forum.services.sweep import sweep_run

    return sweep_run().as_dict()


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

    return due()


@shared_task(name="forum.rooms_destroy_expired", acks_late=True, ignore_result=True)
def rooms_destroy_expired() -> int:
    """Periodic: destroy the private rooms past their expiry (idempotent by slug)."""
    from forum.services.rooms import rooms_destroy_expired as destroy

    return destroy()
