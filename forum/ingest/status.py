"""Tell a composer where its message stands (`message.status`), after the change commits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from forum import realtime
from forum.selectors.status import message_status, status_unknown


def _send(key: str, payload: dict[str, Any]) -> None:
    realtime.broadcast_now(realtime.payment_group(key), "message.status", payload)


def status_broadcast(
    *, keys: Iterable[str], event_id: str = "", payload: dict[str, Any] | None = None
) -> None:
    """Send each key's current status to its payment group (read after commit: never stale).

    With `event_id`, every key is a payment of that event: its status is read once and sent
    to all of them (the hot path); otherwise each key is looked up on its own.
    """
    wanted = list(dict.fromkeys(k for k in keys if k))
    if event_id:
        shared = payload if payload is not None else message_status(key=event_id)
        if shared is None:
            return
        for key in dict.fromkeys([*wanted, event_id]):
            one = {**shared, "key": key}
            if key != event_id:
                one["payment_hash"] = key
            _send(key, one)
        return
    for key in wanted:
        found = message_status(key=key)
        if found is not None:
            _send(key, found)


def status_broadcast_on_commit(
    *, keys: Iterable[str], event_id: str = "", payload: dict[str, Any] | None = None
) -> None:
    """After commit, send the status; `payload` (for `event_id`) saves reading it back."""
    wanted = list(keys)
    transaction.on_commit(
        lambda: status_broadcast(keys=wanted, event_id=event_id, payload=payload), robust=True
    )


# --- the pipeline's statuses as messages (sent by the caller after commit) --------------------


def status_paid(*, payment_hash: str, event_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The listener's "paid", by payment hash and event id: known without reading anything."""
    payload = {**status_unknown(payment_hash), "state": "paid", "payment_hash": payment_hash}
    payload["event_id"] = event_id or None
    return [
        (
            realtime.payment_group(key),
            {"type": "message.status", "payload": {**payload, "key": key}},
        )
        for key in (payment_hash, event_id)
        if key
    ]


def status_send(notes: Iterable[Any]) -> None:
    """Send `StatusNote`s (from a pipeline outcome), after commit: a payload as is, otherwise
    each key's status read back."""
    for note in notes:
        status_broadcast(keys=note.keys, event_id=note.event_id, payload=note.payload)
