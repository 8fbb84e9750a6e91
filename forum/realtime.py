"""Live updates: group names and broadcasts. The only module that calls `group_send`.

Broadcasts are queued with `transaction.on_commit`, so a browser never hears of a row that a
rollback later erased.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

_GROUP_SAFE = re.compile(r"[^0-9A-Za-z_.-]")


def group_name(scope: str, key: str | int) -> str:
    """Channels group names allow only ASCII alphanumerics, hyphens, underscores and periods."""
    return f"{scope}.{_GROUP_SAFE.sub('_', str(key))}"[:99]


def board_group(slug: str) -> str:
    return group_name("board", slug)


def thread_group(thread_event_id: str) -> str:
    return group_name("thread", thread_event_id)


def payment_group(key: str) -> str:
    """Status of one message (by event id or payment hash) for the composer that sent it."""
    return group_name("status", key)


# Every published event also goes to this group (the Nostr relay's live subscriptions follow it).
PUBLIC_FEED_GROUP = "feed.public"


def broadcast_now(group: str, message_type: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": message_type, "payload": payload})
    except Exception:  # a dead channel layer must never fail the write that triggered it
        log.exception("broadcast to %s failed", group)


def broadcast_on_commit(group: str, message_type: str, payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: broadcast_now(group, message_type, payload))
