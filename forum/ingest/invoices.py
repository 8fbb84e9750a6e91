"""Invoice intents: what a BOLT11 invoice the forum issued stands for, by payment hash.

A keysend brings its message in the onion; an invoice brings nothing. So a message paid by
invoice (a post submitted over HTTP, a tip) is stored first as an `InvoiceIntent` row with
the forum records it stands for (`forum.protocol`'s encoding, the ledger's JSON shape), and
the pipeline links the two by payment hash:

- `intent_records`: the ledger writes a settled invoice's row with its intent's records, so
  reconciliation decodes, judges and publishes it exactly like a keysend (one pipeline);
- the hold reviewer reviews an ACCEPTED hold invoice with the same records and settles it
  with `intent_preimage` (never stored: HMAC of the server's secret and the intent's key).

Pure reads and one-line state changes; nothing here talks to the node.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from forum.models import InvoiceIntent

State = InvoiceIntent.State

_PREIMAGE_CONTEXT = b"forum invoice preimage\x00"


def intent_preimage(preimage_key: str) -> bytes:
    """The 32-byte preimage of a hold invoice: HMAC-SHA256(SECRET_KEY, key). The web process
    that issues the invoice and the listener that settles it must share SECRET_KEY."""
    secret = str(settings.SECRET_KEY).encode()
    return hmac.new(secret, _PREIMAGE_CONTEXT + preimage_key.encode(), hashlib.sha256).digest()


def intent_payment_hash(preimage_key: str) -> str:
    return hashlib.sha256(intent_preimage(preimage_key)).hexdigest()


def intents_by_hash(payment_hashes: Iterable[str]) -> dict[str, InvoiceIntent]:
    hashes = list(dict.fromkeys(payment_hashes))
    if not hashes:
        return {}
    return {i.payment_hash: i for i in InvoiceIntent.objects.filter(payment_hash__in=hashes)}


def intent_records(intent: InvoiceIntent) -> dict[str, str]:
    """The records the ledger row of this intent's payment carries ({"<type>": "<hex>"})."""
    return dict(intent.custom_records or {})


def intents_settled(payment_hashes: Iterable[str]) -> int:
    """Mark the intents of settled invoices paid (the ledger recorded them)."""
    hashes = list(payment_hashes)
    if not hashes:
        return 0
    return (
        InvoiceIntent.objects.filter(payment_hash__in=hashes)
        .exclude(state=State.SETTLED)
        .update(state=State.SETTLED, decided_at=timezone.now())
    )


def intent_close(*, payment_hash: str, state: str, reason: str = "") -> bool:
    """An open intent cancelled (refused while held) or expired unpaid; False if it was not
    open (already settled, or closed before)."""
    return bool(
        InvoiceIntent.objects.filter(payment_hash=payment_hash, state=State.OPEN).update(
            state=state, reason=reason, decided_at=timezone.now()
        )
    )
