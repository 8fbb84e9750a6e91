"""The ledger: one append-only row per settled invoice, and the listener's cursor beside it.

`ledger_record_invoice` is the only way an incoming payment enters the forum. It writes the
row and advances the node's `ListenerCursor` in one transaction, fenced by the listener's
lease, and queues reconciliation after commit. It never fails on the payment's content: the
records are stored as the node reported them and only a cheap classification (purpose,
author pubkey, event id) is derived, so garbage still leaves a row (and later a rejection).

The derived `pubkey` is what orders an author's messages for pricing (see `reconcile`), so it
is also derived for the payments that do not carry it themselves: a top-up takes the pubkey of
the event it names, and the part that completes a multipart set takes the pubkey of the joined
event. Those lookups read earlier ledger rows, which the listener wrote before (settle order).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from forum import protocol
from forum.models import LedgerEntry, ListenerCursor
from lightning.types import Invoice

log = logging.getLogger(__name__)

Purpose = LedgerEntry.Purpose


class LeaseLost(RuntimeError):
    """Another listener holds this node's lease: stop writing."""


def records_to_json(records: Mapping[int, bytes]) -> dict[str, str]:
    """Custom records as stored: {"<type>": "<hex>"} (JSON keys must be strings)."""
    return {str(t): bytes(v).hex() for t, v in sorted(records.items())}


def records_from_json(data: Mapping[str, str]) -> dict[int, bytes]:
    """Inverse of `records_to_json`; unreadable items are skipped (they were not ours)."""
    records: dict[int, bytes] = {}
    for key, value in data.items():
        try:
            records[int(key)] = bytes.fromhex(value)
        except (TypeError, ValueError):
            continue
    return records


def entry_records(entry: LedgerEntry) -> dict[int, bytes]:
    return records_from_json(entry.custom_records or {})


@dataclass(frozen=True)
class Classification:
    purpose: str
    pubkey: str = ""
    event_id: str = ""


def ledger_classify(*, records: Mapping[int, bytes]) -> Classification:
    """Purpose, author and event of a payment from its records alone; never raises."""
    try:
        message = protocol.decode_records(records)
    except protocol.ProtocolError as exc:
        # Forum records that do not decode: still a message (it will be rejected with a reason).
        return Classification(Purpose.MESSAGE, event_id=exc.event_id or "")
    except Exception:  # a codec bug must not cost us the ledger row
        log.exception("classifying custom records failed")
        return Classification(Purpose.MESSAGE)
    if message is None:
        return Classification(Purpose.OTHER)
    if isinstance(message, protocol.EventMessage):
        return Classification(Purpose.MESSAGE, message.event.pubkey, message.event.id)
    if isinstance(message, protocol.PartMessage):
        return Classification(Purpose.PART, event_id=message.event_id)
    if isinstance(message, protocol.TopUpMessage):
        return Classification(Purpose.TOPUP, event_id=message.event_id)
    return Classification(Purpose.TIP, event_id=message.event_id)


def _author_of_event(event_id: str) -> str:
    """The pubkey an earlier ledger row derived for `event_id` (whole event or completing part)."""
    return (
        LedgerEntry.objects.filter(event_id=event_id)
        .exclude(pubkey="")
        .values_list("pubkey", flat=True)
        .first()
        or ""
    )


def _completing_part_author(event_id: str, records: Mapping[int, bytes]) -> str:
    """If this part completes its set (with the parts already in the ledger), the event's pubkey."""
    try:
        this = protocol.decode_records(records)
        assert isinstance(this, protocol.PartMessage)
        parts = [this]
        seen = set()
        # Parts of a set that hold mode cancelled were never received: they do not count.
        for raw in LedgerEntry.objects.filter(
            event_id=event_id, purpose=Purpose.PART, status=LedgerEntry.Status.SETTLED
        ).values_list("custom_records", flat=True):
            other = protocol.decode_records(records_from_json(raw))
            if isinstance(other, protocol.PartMessage):
                parts.append(other)
                seen.add(other.index)
        if this.index in seen or len(seen | {this.index}) != this.count:
            return ""  # a repeat, or the set is still incomplete
        return protocol.join_parts(parts).pubkey
    except Exception:  # incomplete, contradictory or forged: reconciliation will say which
        return ""


def ledger_derive(*, records: Mapping[int, bytes]) -> Classification:
    """`ledger_classify` plus the pubkey that top-ups and completing parts inherit."""
    found = ledger_classify(records=records)
    if found.pubkey or not found.event_id:
        return found
    if found.purpose == Purpose.TOPUP:  # tips do not price anything: no ordering needed
        return Classification(found.purpose, _author_of_event(found.event_id), found.event_id)
    if found.purpose == Purpose.PART:
        pubkey = _completing_part_author(found.event_id, records)
        return Classification(found.purpose, pubkey, found.event_id)
    return found


def settle_time(invoice: Invoice) -> datetime:
    seconds = invoice.settle_date or invoice.creation_date
    if seconds <= 0:
        return timezone.now()
    return datetime.fromtimestamp(seconds, tz=UTC)


def cursor_ensure(*, node_pubkey: str) -> ListenerCursor:
    cursor, _ = ListenerCursor.objects.get_or_create(node_pubkey=node_pubkey)
    return cursor


def _cursor_advance(
    *, node_pubkey: str, invoice: Invoice, lease_holder: str | None, lease_seconds: float
) -> None:
    updates = {
        "add_index": Greatest(F("add_index"), invoice.add_index),
        "settle_index": Greatest(F("settle_index"), invoice.settle_index),
        "updated_at": timezone.now(),
    }
    rows = ListenerCursor.objects.filter(node_pubkey=node_pubkey)
    if lease_holder is not None:
        # The fence: a listener whose lease was taken over cannot write past that moment.
        rows = rows.filter(lease_holder=lease_holder)
        updates["lease_expires_at"] = timezone.now() + timedelta(seconds=lease_seconds)
    if rows.update(**updates) == 0:
        if lease_holder is not None:
            raise LeaseLost(f"listener lease on {node_pubkey[:12]} is held by someone else")
        cursor_ensure(node_pubkey=node_pubkey)
        ListenerCursor.objects.filter(node_pubkey=node_pubkey).update(**updates)


def _enqueue_reconcile(payment_hash: str) -> None:
    from forum import tasks

    tasks.reconcile_payment.delay(payment_hash)


def ledger_insert_once(
    *,
    invoice: Invoice,
    node_pubkey: str,
    purpose: str,
    amount_msat: int,
    settle_index: int | None,
    settled_at: datetime,
    pubkey: str,
    event_id: str,
    **extra: object,
) -> tuple[LedgerEntry, bool]:
    """Insert the incoming row for `invoice` unless one exists; returns (row, created).

    A savepoint, so a concurrent writer that inserted first (the sweep, a second listener or
    hold reviewer) costs an IntegrityError here, not the caller's transaction.
    """
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                payment_hash=invoice.payment_hash,
                node_pubkey=node_pubkey,
                direction=LedgerEntry.Direction.IN,
                purpose=purpose,
                amount_msat=amount_msat,
                add_index=invoice.add_index or None,
                settle_index=settle_index,
                settled_at=settled_at,
                is_keysend=invoice.is_keysend,
                custom_records=records_to_json(invoice.custom_records),
                pubkey=pubkey,
                event_id=event_id,
                **extra,
            )
        return entry, True
    except IntegrityError:
        return LedgerEntry.objects.get(payment_hash=invoice.payment_hash), False


def ledger_record_invoice(
    *,
    invoice: Invoice,
    node_pubkey: str,
    lease_holder: str | None = None,
    lease_seconds: float = 15.0,
    advance_cursor: bool = True,
    enqueue: bool = True,
) -> tuple[LedgerEntry, bool]:
    """Record one settled invoice (idempotent by payment hash); returns (row, created).

    With `advance_cursor` the node's cursor moves in the same transaction (the listener);
    the sweep fills gaps without touching it. `lease_holder` fences the write to the
    listener that holds the lease (raises `LeaseLost` otherwise).
    """
    if not invoice.settled:
        raise ValueError(f"invoice {invoice.payment_hash} is {invoice.state}, not SETTLED")
    records = invoice.custom_records
    with transaction.atomic():
        existing = LedgerEntry.objects.filter(payment_hash=invoice.payment_hash).first()
        created = False
        if existing is None:
            derived = ledger_derive(records=records)
            entry, created = ledger_insert_once(
                invoice=invoice,
                node_pubkey=node_pubkey,
                purpose=derived.purpose,
                amount_msat=invoice.amt_paid_msat,
                settle_index=invoice.settle_index,
                settled_at=settle_time(invoice),
                pubkey=derived.pubkey,
                event_id=derived.event_id,
            )
        else:
            entry = existing
        if advance_cursor:
            _cursor_advance(
                node_pubkey=node_pubkey,
                invoice=invoice,
                lease_holder=lease_holder,
                lease_seconds=lease_seconds,
            )
        if created:
            _status_on_commit(entry)  # first: an eager reconcile then reports "published" after
            if enqueue:
                transaction.on_commit(lambda: _enqueue_reconcile(entry.payment_hash), robust=True)
    if created:
        log.info(
            "ledger.settled %s",
            json.dumps(
                {
                    "payment_hash": entry.payment_hash,
                    "settle_index": entry.settle_index,
                    "add_index": entry.add_index,
                    "amount_msat": entry.amount_msat,
                    "purpose": entry.purpose,
                    "event_id": entry.event_id,
                    "pubkey": entry.pubkey,
                    "keysend": entry.is_keysend,
                }
            ),
        )
    return entry, created


def _status_on_commit(entry: LedgerEntry) -> None:
    if entry.purpose == Purpose.OTHER:
        return
    from forum.services import status

    status.status_paid_on_commit(payment_hash=entry.payment_hash, event_id=entry.event_id)
