"""Tips in the pipeline: planning a tip's forward to its author, in the tip's transaction.

The forward itself (the keysend, retries, the moderators' view) is `forum.services.tips`.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from forum import nostr
from forum.models import Event, LedgerEntry, TipForward

_PREIMAGE_CONTEXT = b"forum.tip-forward\x00"


def share_percent() -> int:
    return min(max(int(getattr(settings, "TIP_FORUM_SHARE_PERCENT", 10)), 0), 100)


def forward_amount_msat(*, tip_msat: int) -> int:
    """What the author gets: the tip minus the forum's share, in whole sats.

    Whole sats because that is what wallets show and lncli sends; the msat remainder stays
    with the forum like its share.
    """
    return (tip_msat * (100 - share_percent()) // 100) // 1000 * 1000


def forward_preimage(*, tip_payment_hash: str) -> bytes:
    """The forward's preimage: secret (a hop that knew it could settle without paying on),
    and the same for every attempt at one tip (the node pays a hash at most once)."""
    secret = str(getattr(settings, "TIP_FORWARD_SECRET", "") or settings.SECRET_KEY)
    message = _PREIMAGE_CONTEXT + bytes.fromhex(tip_payment_hash)
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def tip_forward_prepare(*, entry: LedgerEntry, event: Event) -> tuple[TipForward | None, bool]:
    """Inside the tip's reconciliation: plan the forward (idempotent by the tip's hash).

    Returns (forward, created); (None, False) when nothing is forwarded: no `ln` tag, not a
    post, or too little left. The caller queues the keysend of a created one after commit.
    """
    destination = (event.ln_node or "").strip().lower()
    if event.kind not in (nostr.KIND_THREAD, nostr.KIND_REPLY) or not destination:
        return None, False
    amount = forward_amount_msat(tip_msat=entry.amount_msat)
    if amount <= 0:
        return None, False
    preimage = forward_preimage(tip_payment_hash=entry.payment_hash)
    forward, created = TipForward.objects.get_or_create(
        tip_payment_hash=entry.payment_hash,
        defaults={
            "tip_entry": entry,
            "tip_amount_msat": entry.amount_msat,
            "destination": destination,
            "amount_msat": amount,
            "payment_hash": hashlib.sha256(preimage).hexdigest(),
        },
    )
    if not created and forward.tip_entry_id is None:
        # rebuild_from_node re-created the tip's ledger row: link it again, plan nothing new.
        TipForward.objects.filter(pk=forward.pk).update(tip_entry=entry)
    return forward, created
