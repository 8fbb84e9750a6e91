"""Tips in the pipeline: planning a tip's forward to its author, in the tip's transaction, and
the NIP-57 zap receipt of a tip paid by an invoice asked for with a zap request.

The forward itself (the keysend or Lightning Address payment, retries, the moderators' view)
is `forum.services.tips`; issuing tip invoices (page, LNURL-pay, zaps) is
`forum.services.lnurl`.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from forum import nostr, realtime, zaps
from forum.ingest.invoices import intent_preimage
from forum.ingest.outcome import Message
from forum.models import Author, Event, InvoiceIntent, LedgerEntry, TipForward, ZapReceipt
from forum.relay_key import relay_secret_key

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


def forum_hosts() -> set[str]:
    return {h.lower().lstrip(".") for h in settings.ALLOWED_HOSTS if h and "*" not in h}


def author_lightning_address(pubkey: str) -> str:
    """The Lightning Address (`lud16`) of the author's current kind 0 profile, if usable.

    An address on this forum itself (`npub…@<forum host>`) is ignored: its tips would come
    straight back here as tips again.
    """
    lud16 = (
        Author.objects.filter(pubkey=pubkey).values_list("profile_lud16", flat=True).first() or ""
    )
    lud16 = lud16.strip().lower()
    name, _, domain = lud16.partition("@")
    if not name or not domain or domain in forum_hosts():
        return ""
    return lud16


def tip_forward_prepare(*, entry: LedgerEntry, event: Event) -> tuple[TipForward | None, bool]:
    """Inside the tip's reconciliation: plan the forward (idempotent by the tip's hash).

    Returns (forward, created); (None, False) when nothing is forwarded: no `ln` tag and no
    Lightning Address in the author's profile, not a post, or too little left. The caller
    queues the payment of a created one after commit.
    """
    if event.kind not in (nostr.KIND_THREAD, nostr.KIND_REPLY):
        return None, False
    destination = (event.ln_node or "").strip().lower()
    # The post's own `ln` tag names a node and wins; otherwise the author's Lightning Address.
    address = "" if destination else author_lightning_address(event.pubkey)
    if not destination and not address:
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
            "address": address,
            "amount_msat": amount,
            "payment_hash": hashlib.sha256(preimage).hexdigest(),
        },
    )
    if not created and forward.tip_entry_id is None:
        # rebuild_from_node re-created the tip's ledger row: link it again, plan nothing new.
        TipForward.objects.filter(pk=forward.pk).update(tip_entry=entry)
    return forward, created


def zap_receipt_prepare(*, entry: LedgerEntry, event: Event) -> ZapReceipt | None:
    """Inside the tip's reconciliation: the new zap receipt of a tip asked for with a zap
    request (None for any other tip, and for one whose receipt exists: idempotent by the
    payment hash).

    A keysend carries no zap request, so only invoice rows are looked at (one query each).
    The receipt is signed by the relay's key, dated when the invoice was paid, and names the
    invoice and its preimage, as NIP-57 asks; the caller sends it to relay subscribers.
    """
    if entry.is_keysend:
        return None
    intent = InvoiceIntent.objects.filter(payment_hash=entry.payment_hash).first()
    text = (intent.payload or {}).get("zap_request") if intent is not None else None
    if intent is None or not isinstance(text, str) or not text:
        return None
    if ZapReceipt.objects.filter(payment_hash=entry.payment_hash).exists():
        return None  # a replay (rebuild_from_node): the receipt stands, and was sent before
    try:
        request = zaps.zap_request_parse(text, amount_msat=intent.amount_msat)
    except zaps.ZapRequestError:
        return None  # checked when the invoice was issued; a stored one cannot turn bad
    preimage = intent_preimage(intent.preimage_key).hex() if intent.preimage_key else ""
    paid_at = int(entry.settled_at.timestamp()) if entry.settled_at else 0
    receipt = zaps.zap_receipt_build(
        relay_secret_key(),
        request,
        bolt11=intent.payment_request,
        preimage_hex=preimage,
        paid_at=paid_at,
    )
    return ZapReceipt.objects.create(
        payment_hash=entry.payment_hash,
        receipt_id=receipt.id,
        pubkey=receipt.pubkey,
        recipient=request.recipient,
        zapped_event_id=request.event_id,
        sender=request.sender,
        amount_msat=entry.amount_msat,
        created_at=receipt.created_at,
        raw_json=receipt.to_json(),
    )


def zap_receipt_message(receipt: ZapReceipt) -> Message:
    """The relay's live message for a new receipt (`RelayConsumer.zap_receipt`)."""
    return (
        realtime.PUBLIC_FEED_GROUP,
        {"type": "zap.receipt", "payload": {"id": receipt.receipt_id, "raw": receipt.raw_json}},
    )
