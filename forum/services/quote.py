"""The quote: what a message costs right now, and everything a client needs to deliver it.

Read-only. The price is `pricing.price_for` at this moment (the payment will settle after
every accepted event already counted, so nothing earlier can change it, only later events or
a moderator's price change before it settles).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from forum import nostr, protocol
from forum.ingest import pricing
from forum.models import Board
from forum.services import identity

log = logging.getLogger(__name__)

_PUBKEY = re.compile(r"[0-9a-f]{64}")
QUOTE_HOPS = (1, 2, 3, 4)


class QuoteError(ValueError):
    """A quote request that cannot be answered; `field` names the bad parameter."""

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


# Profiles, deletions and edits: one price each for the whole forum (no board, no escalation).
SIDE_KINDS = (nostr.KIND_PROFILE, nostr.KIND_DELETION, nostr.KIND_EDIT)
_KINDS_TEXT = "kind must be 11 (thread), 1111 (reply), 0 (profile), 5 (deletion) or 1010 (edit)"


def _kind(raw: str | int | None) -> int:
    try:
        kind = int(raw if raw not in (None, "") else nostr.KIND_THREAD)
    except (TypeError, ValueError):
        raise QuoteError("kind", _KINDS_TEXT) from None
    if kind not in (nostr.KIND_THREAD, nostr.KIND_REPLY, *SIDE_KINDS):
        raise QuoteError("kind", _KINDS_TEXT)
    return kind


def _delivery() -> dict[str, Any]:
    return {
        **node_contact(),
        "keysend_preimage_record": protocol.KEYSEND_PREIMAGE_TYPE,
        "record_types": dict(protocol.RECORD_TYPES),
        "protocol_version": protocol.PROTOCOL_VERSION,
        "max_parts": protocol.MAX_PARTS,
        "onion": onion_limits(),
    }


def side_quote(kind: int) -> dict[str, Any]:
    """The price now of a profile, deletion or edit (`SiteSettings`), plus delivery facts."""
    price_msat = pricing.side_price_msat(kind=kind)
    return {
        "board": None,
        "kind": kind,
        "price_msat": price_msat,
        "price_sats": -(-price_msat // 1000),
        **_delivery(),
    }


def onion_limits() -> dict[str, dict[str, int]]:
    """Bytes for our records per route length (see docs/protocol.md)."""
    return {
        str(hops): {
            "records_budget": protocol.onion_budget_for_records(hops),
            "max_record_value": protocol.max_record_payload(hops),
        }
        for hops in QUOTE_HOPS
    }


def node_contact() -> dict[str, Any]:
    try:
        client = identity.forum_client()
        pubkey = identity.forum_node_pubkey(client)
        return {"node_pubkey": pubkey, "node_error": None}
    except Exception as exc:  # the quote still prices; the client can learn the node elsewhere
        log.warning("quote without node identity: %s", exc)
        return {"node_pubkey": None, "node_error": str(exc)}


def quote_for(*, board_slug: str, pubkey: str = "", kind: str | int | None = None) -> dict:
    """The price now for `pubkey` posting a `kind` event on `board_slug`, plus delivery facts."""
    if kind not in (None, "") and _kind(kind) in SIDE_KINDS:
        return side_quote(_kind(kind))
    board = Board.objects.filter(slug=board_slug or "", destroyed_at__isnull=True).first()
    if board is None:
        raise QuoteError("board", f"there is no board {board_slug!r}", status=404)
    kind_value = _kind(kind)
    pubkey = (pubkey or "").strip().lower()
    if pubkey and _PUBKEY.fullmatch(pubkey) is None:
        raise QuoteError("pubkey", "pubkey must be 64 hex characters (x-only, as in Nostr)")
    if pubkey:
        price = pricing.price_for(board=board, kind=kind_value, pubkey=pubkey)
    else:  # an anonymous quote: the base price (a new key has no recent posts)
        base = pricing.base_price_msat(board=board, kind=kind_value)
        price = pricing.Price(
            base, base, board.escalation_factor, 0, board.escalation_window_seconds
        )
    return {
        "board": board.slug,
        "kind": kind_value,
        "pubkey": pubkey or None,
        **price.as_dict(),
        **_delivery(),
        "limits": {
            "max_content_length": board.max_content_length,
            "thread_price_msat": board.thread_price_msat,
            "reply_price_msat": board.reply_price_msat,
            "escalation_window_seconds": board.escalation_window_seconds,
            "escalation_factor": board.escalation_factor,
        },
    }
