"""Sending a zap receipt to the relays its zap request named (NIP-57, appendix E).

`/relay` serves every receipt; a Nostr client that reads only its own relays finds the zap
there too because the forum sends the receipt to each relay of the request's `relays` tag:
`["EVENT", <receipt>]` over a websocket, then waits for the relay's `OK`. Best effort, once
per receipt (`relays_sent_at`, with each relay's answer in `relays_result`): a relay that is
down misses it, as it would miss any client's event.

The relays are a stranger's input, so each connection has a timeout
(`ZAP_RELAY_TIMEOUT_SECONDS`), at most `zaps.MAX_RELAYS` are tried, a few at a time, only
`ws://` or `wss://`, never a private, loopback or link-local host (`LNURL_ALLOW_PRIVATE` lifts
that, as for Lightning Addresses), and never this forum's own relay (it has the receipt).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from forum import zaps
from forum.ingest.tips import forum_hosts
from forum.models import ZapReceipt
from forum.services import lnaddress

log = logging.getLogger(__name__)

_PARALLEL = 5


def _timeout() -> float:
    return float(getattr(settings, "ZAP_RELAY_TIMEOUT_SECONDS", 5))


def receipt_relays(receipt: ZapReceipt) -> list[str]:
    """The relays of the zap request inside the receipt's `description` tag (checked when the
    invoice was issued), minus this forum's own."""
    tags = json.loads(receipt.raw_json).get("tags", [])
    description = next((t[1] for t in tags if len(t) > 1 and t[0] == "description"), "")
    try:
        request = json.loads(description)
    except ValueError:
        return []
    relays = next((t[1:] for t in request.get("tags", []) if t and t[0] == "relays"), [])
    own = forum_hosts()
    wanted: list[str] = []
    for url in relays[: zaps.MAX_RELAYS]:
        parts = urlsplit(url)
        ours = (parts.hostname or "").lower() in own and parts.path.rstrip("/") == "/relay"
        if not ours and url not in wanted:
            wanted.append(url)
    return wanted


def relay_send(url: str, raw_event: str, event_id: str) -> str:
    """Send one event to one relay; "ok", or why not (the relay's own words when it refused)."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return "not a ws:// or wss:// URL"
    try:
        private = lnaddress.host_is_private(parts.hostname)
    except lnaddress.AddressError as exc:
        return str(exc)
    if private and not getattr(settings, "LNURL_ALLOW_PRIVATE", False):
        return "a private network address: not contacted"
    timeout = _timeout()
    try:
        with connect(
            url, open_timeout=timeout, close_timeout=1, max_size=65536, user_agent_header=None
        ) as socket:
            socket.send(f'["EVENT",{raw_event}]')
            deadline = timezone.now() + timedelta(seconds=timeout)
            while timezone.now() < deadline:
                left = (deadline - timezone.now()).total_seconds()
                message = json.loads(socket.recv(timeout=max(left, 0.01)))
                if isinstance(message, list) and message[:2] == ["OK", event_id]:
                    accepted = len(message) > 2 and message[2] is True
                    detail = str(message[3])[:200] if len(message) > 3 else ""
                    return "ok" if accepted else f"refused: {detail}"
            return "no OK from the relay in time"
    except TimeoutError:
        return "no answer in time"
    except (OSError, WebSocketException, ValueError) as exc:
        return f"{exc.__class__.__name__}: {str(exc)[:200]}"


def zap_receipt_publish(*, receipt_id: str) -> dict[str, Any]:
    """Send the receipt to its request's relays, once; returns what each relay answered."""
    with transaction.atomic():
        receipt = ZapReceipt.objects.select_for_update().filter(receipt_id=receipt_id).first()
        if receipt is None or receipt.relays_sent_at is not None:
            return {}
        # Marked first: a crash mid-way leaves relays unsent rather than sent twice.
        receipt.relays_sent_at = timezone.now()
        receipt.save(update_fields=["relays_sent_at"])
    relays = receipt_relays(receipt)
    results: dict[str, Any] = {}
    if relays:
        with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(relays))) as pool:
            answers = pool.map(
                lambda url: relay_send(url, receipt.raw_json, receipt.receipt_id), relays
            )
            results = dict(zip(relays, answers, strict=True))
    ZapReceipt.objects.filter(pk=receipt.pk).update(relays_result=results)
    log.info("zap receipt %s sent to relays: %s", receipt.receipt_id, results)
    return results


def zap_receipts_due(*, limit: int = 50) -> list[str]:
    """Receipts not yet sent to their relays (the caller sends each; each re-checks)."""
    if not getattr(settings, "ZAP_RELAY_PUBLISH", True):
        return []
    return list(
        ZapReceipt.objects.filter(relays_sent_at__isnull=True)
        .order_by("id")
        .values_list("receipt_id", flat=True)[:limit]
    )
