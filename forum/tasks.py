"""Celery tasks: thin adapters that take ids, call one service, and are safe to run twice."""

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
    retry_backoff_max=30,
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
    retry_backoff_max=30,
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
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def tip_forward(self, tip_payment_hash: str) -> str:
    """Forward one tip's share to its author's node (idempotent by the tip's payment hash)."""
    from forum.services import tips

    outcome = tips.tip_forward_attempt(tip_payment_hash=tip_payment_hash)
    if outcome.state == tips.State.PENDING and not self.request.is_eager:
        # A failed keysend: try again after the backoff the row now records. (Eagerly, a
        # retry would run at once; the periodic `tips_forward_due` picks it up instead.)
        raise self.retry(countdown=outcome.retry_in, max_retries=tips.max_attempts())
    return outcome.state


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
