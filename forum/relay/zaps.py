"""Zap receipts (NIP-57 kind 9735) on the relay: the stored ones a filter asks for.

A receipt is not a forum post: it is signed by the relay's own key when a zapped tip is paid
(`forum.ingest.tips.zap_receipt_prepare`) and kept in `ZapReceipt`, whose columns are the tags
a Nostr client filters receipts by: `#p` (the author zapped), `#e` (the post), `#P` (the
sender). Any other tag letter matches no receipt.
"""

from __future__ import annotations

from forum.models import ZapReceipt
from forum.relay.filters import Filter
from forum.relay_key import relay_pubkey
from forum.zaps import KIND_ZAP_RECEIPT

_TAG_COLUMNS = {"p": "recipient", "e": "zapped_event_id", "P": "sender"}


def zap_receipts_for_filter(flt: Filter, *, limit: int) -> list[tuple[str, str, int]]:
    """(raw JSON, id, created_at) of the receipts matching `flt`, newest first: one query, or
    none when the filter cannot match a receipt (other kinds, other authors, other tags)."""
    if limit <= 0 or not flt.can_match:
        return []
    if flt.kinds is not None and KIND_ZAP_RECEIPT not in flt.kinds:
        return []
    qs = ZapReceipt.objects.all()
    if flt.ids is not None:
        qs = qs.filter(receipt_id__in=flt.ids)
    if flt.authors is not None:
        if relay_pubkey() not in flt.authors:
            return []  # every receipt here is signed by the relay's key: no query needed
        qs = qs.filter(pubkey__in=flt.authors)
    if flt.since is not None:
        qs = qs.filter(created_at__gte=flt.since)
    if flt.until is not None:
        qs = qs.filter(created_at__lte=flt.until)
    for letter, values in flt.tags:
        column = _TAG_COLUMNS.get(letter)
        if column is None:
            return []
        qs = qs.filter(**{f"{column}__in": values})
    rows = qs.order_by("-created_at", "receipt_id").values_list(
        "raw_json", "receipt_id", "created_at"
    )
    return list(rows[:limit])
