"""A pubkey's relay balance as its owner sees it: the figures, the ledger rows that explain
them, and how to fund it (`GET /api/balance?pubkey=`, the author page). docs/relay.md."""

from __future__ import annotations

import secrets
from typing import Any

from forum import nostr, protocol
from forum.ingest.balance import CREDIT_RECORD, balance_of
from forum.models import InvoiceIntent, LedgerEntry, Rejection
from forum.services import invoices
from forum.services.moderation import throttle
from forum.services.quote import node_contact

RECENT_ROWS = 20


class BalanceError(ValueError):
    pass


def pubkey_parse(text: str) -> str:
    """A hex pubkey, or an npub; anything else raises `BalanceError` with what to send."""
    try:
        return nostr.pubkey_parse(text or "")
    except nostr.EventError as exc:
        raise BalanceError(exc.message) from None


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
            "how_to": "/how-to-post/#balance",
            # POST {"pubkey", "amount_sats"} here for a BOLT11 invoice that funds it.
            "invoice_url": "/api/balance/invoice",
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


# --- funding by BOLT11 invoice ---------------------------------------------------------------

MAX_CREDIT_SATS = 10_000_000  # 0.1 BTC: a balance is for posting, not for savings


def credit_invoice(*, pubkey: str, amount_sats: object, client_ip: str) -> dict[str, Any]:
    """A plain BOLT11 invoice whose payment funds `pubkey`'s balance (an invoice intent with the
    credit record: the ledger row of the settled invoice is a `credit`, as for a keysend)."""
    if isinstance(amount_sats, bool) or not isinstance(amount_sats, int):
        raise BalanceError("amount_sats must be a whole number of sats")
    if not 1 <= amount_sats <= MAX_CREDIT_SATS:
        raise BalanceError(f"amount_sats must be between 1 and {MAX_CREDIT_SATS}")
    _throttle(client_ip)
    intent = invoices.intent_issue(
        purpose=InvoiceIntent.Purpose.CREDIT,
        preimage_key=f"credit:{pubkey}:{secrets.token_hex(16)}",
        hold_invoice=False,
        event_id="",
        records=protocol.encode_credit(pubkey),
        amount_msat=amount_sats * 1000,
        memo=f"Relay balance of {nostr.npub_encode(pubkey)[:20]}…",
        pubkey=pubkey,
        client=client_ip,
    )
    return {
        "pubkey": pubkey,
        "amount_msat": intent.amount_msat,
        "payment_request": intent.payment_request,
        "lightning_uri": f"lightning:{intent.payment_request}",
        "payment_hash": intent.payment_hash,
        "expires_at": intent.expires_at.isoformat(),
        "qr": f"/api/invoice/{intent.payment_hash}/qr.svg",
    }


def _throttle(client_ip: str) -> None:
    """Invoices cost the node a little: at most 30 credit invoices per client in 10 minutes."""
    counter = throttle.attempt_counter()
    count = counter.add(throttle.counter_key("credit-client", client_ip), 1, window_seconds=600)
    if count.total > 30:
        raise BalanceError(
            f"rate-limited: too many invoices requested from your address; pay one of them or"
            f" try again in {count.retry_after} seconds"
        )
