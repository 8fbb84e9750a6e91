"""Tell a composer where its message stands (`message.status`), after the change commits."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from forum import realtime
from forum.selectors.status import message_status


def status_broadcast(*, keys: Iterable[str]) -> None:
    """Send each key's current status to its payment group (read after commit: never stale)."""
    for key in dict.fromkeys(k for k in keys if k):
        payload = message_status(key=key)
        if payload is not None:
            realtime.broadcast_now(realtime.payment_group(key), "message.status", payload)


def status_broadcast_on_commit(*, keys: Iterable[str]) -> None:
    wanted = list(keys)
    transaction.on_commit(lambda: status_broadcast(keys=wanted), robust=True)
