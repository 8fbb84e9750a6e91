"""Periodic upkeep of rooms and tips in the embedded process (Celery beat does it otherwise).

With Celery, beat runs `forum.rooms_destroy_expired` and `forum.tips_forward_due` (see
`CELERY_BEAT_SCHEDULE`); the embedded default has no beat, so this timer thread calls the same
services every `UPKEEP_INTERVAL_SECONDS`. Both are idempotent, so a beat and a thread running
at once only do the work once.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)


def upkeep_run(*, now: datetime | None = None) -> dict[str, int]:
    """One pass; each part fails on its own without stopping the other."""
    from forum.services import rooms, tips

    now = now or timezone.now()
    report: dict[str, int] = {}
    try:
        report["rooms_destroyed"] = rooms.rooms_destroy_expired(now=now)
    except Exception:
        log.exception("room expiry upkeep failed")
    try:
        report["tips_queued"] = tips.tips_forward_due(now=now)
    except Exception:
        log.exception("tip forwarding upkeep failed")
    return report


def upkeep_loop(*, stop: threading.Event, interval: float | None = None) -> None:
    interval = interval or float(getattr(settings, "UPKEEP_INTERVAL_SECONDS", 30))
    while not stop.wait(interval):
        try:
            upkeep_run()
        except Exception:
            log.exception("upkeep failed")
        finally:
            close_old_connections()


def embedded_start(embedded) -> None:
    """STARTUP_HOOKS entry: room expiry and tip retries as a timer thread."""
    embedded.spawn("upkeep", lambda stop: upkeep_loop(stop=stop))
