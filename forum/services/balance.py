"""A pubkey's relay balance as its owner sees it: the figures, the ledger rows that explain
them, and how to fund it (`GET /api/balance?pubkey=`, the author page). docs/relay.md."""

from __future__ import annotations

import re
from typing import Any

from forum import nostr, protocol
from forum.ingest.balance import CREDIT_RECORD, balance_of
from forum.models import LedgerEntry, Rejection
from forum.services.quote import node_contact

_HEX = re.compile(r"[0-9a-f]{64}")
RECENT_ROWS = 20


class BalanceError(ValueError):
    pass


def pubkey_parse(text: str) -> str:
    """A hex pubkey, or an npub; anything else raises `BalanceError` with what to send."""
    text = (text or "").strip()
    if text.startswith("npub1"):
        try:
            return nostr.npub_decode(text)
        except Exception as exc:  # a bad checksum or length: say so, do not crash
            raise BalanceError(f"not a valid npub: {exc}") from exc
    if _HEX.fullmatch(text.lower()) is None:
        raise BalanceError("pubkey must be 64 hex characters (x-only, as in Nostr) or an npub")
    return text.lower()


def balance_report(pubkey: str) -> dict[str, Any]:
    balance = balance_of(pubkey)
    rows = list(
        LedgerEntry.objects.filter(
            pubkey=pubkey,
            direction=LedgerEntry.Direction.IN,
            purpose__in=(LedgerEntry.Purpose.CREDIT, LedgerEntry.Purpose.SPEND),
        ).order_by("-settle_index", "-pk")[:RECENT_ROWS]
    )
    refused = dict(
        Rejection.objects.filter(ledger_entry__in=[r.pk for r in rows]).values_list(
            "ledger_entry_id", "message"
        )
    )
    record_value = protocol.b64url_encode(bytes.fromhex(pubkey))
    node = node_contact()
    return {
        "pubkey": pubkey,
        "balance_msat": balance.balance_msat,
        "credited_msat": balance.credited_msat,
        "spent_msat": balance.spent_msat,
        "pending_events": balance.pending,
        "fund": {
            "node_pubkey": node.get("node_pubkey"),
            "keysend_records": {
                str(protocol.RECORD_TYPES["version"]): str(protocol.PROTOCOL_VERSION),
                str(CREDIT_RECORD): record_value,
            },
            "how_to": "/how-to-post/",
        },
        "recent": [
            {
                "purpose": row.purpose,
                "amount_msat": row.amount_msat,
                "at": row.settled_at.isoformat(),
                "event_id": row.event_id or None,
                "state": "judging"
                if row.reconcile_state != LedgerEntry.ReconcileState.DONE
                else ("refused" if row.pk in refused else "done"),
                "refused": refused.get(row.pk),
            }
            for row in rows
        ],
    }
