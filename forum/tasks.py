"""Celery tasks: thin adapters that take ids, call one service, and are safe to run twice."""

from __future__ import annotations

import socket

from celery import shared_task

from forum.services.health import check_database


@shared_task(name="forum.worker_health")
def worker_health() -> dict:
    """Answered by a worker: proves the broker round trip and that the worker reaches the database."""
    db = check_database()
    return {"worker": socket.gethostname(), "database": db.ok, "detail": db.detail}
