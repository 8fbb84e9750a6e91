"""The ledger: one append-only row per settled invoice, and the listener's cursor beside it.

`ledger_record_invoices` is the only way an incoming payment enters the forum. It writes every
new row of a batch of settled invoices and advances the node's `ListenerCursor` in one
transaction (group commit), fenced by the listener's lease, and returns what it recorded; the
caller queues reconciliation after commit. It never fails on a payment's content: the records
are stored as the node reported them, and only a cheap classification (purpose, author pubkey,
event id) is derived, so garbage still leaves a row (and later a rejection).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from forum import protocol
from forum.ingest.invoices import intent_records, intents_by_hash, intents_settled
from forum.ingest.outcome import Message, Recorded
from forum.ingest.rows import rows_insert
from forum.ingest.status import status_paid
from forum.models import InvoiceIntent, LedgerEntry, ListenerCursor
from forum.protocol import records_from_json, records_to_json  # noqa: F401 (the ledger API)
from lightning.types import Invoice

log = logging.getLogger(__name__)

Purpose = LedgerEntry.Purpose


class LeaseLost(RuntimeError):
    """Another listener holds this node's lease: stop writing."""


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
    if isinstance(message, protocol.CreditMessage):
        return Classification(Purpose.CREDIT, pubkey=message.pubkey)
    return Classification(Purpose.TIP, event_id=message.event_id)


def settle_time(invoice: Invoice) -> datetime:
    seconds = invoice.settle_date or invoice.creation_date
    if seconds <= 0:
        return timezone.now()
    return datetime.fromtimestamp(seconds, tz=UTC)


def cursor_ensure(*, node_pubkey: str) -> ListenerCursor:
    cursor, _ = ListenerCursor.objects.get_or_create(node_pubkey=node_pubkey)
    return cursor


def _cursor_advance(
    *,
    node_pubkey: str,
    add_index: int,
    settle_index: int,
    lease_holder: str | None,
    lease_seconds: float,
) -> None:
    updates = {
        "add_index": Greatest(F("add_index"), add_index),
        "settle_index": Greatest(F("settle_index"), settle_index),
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


def _row(
    invoice: Invoice,
    *,
    node_pubkey: str,
    purpose: str,
    amount_msat: int,
    settle_index: int | None,
    settled_at: datetime,
    pubkey: str,
    event_id: str,
    records: Mapping[int, bytes] | None = None,
    **extra: object,
) -> LedgerEntry:
    """`records`: what the row carries when it is not the invoice's own (an invoice the forum
    issued carries its intent's records)."""
    return LedgerEntry(
        payment_hash=invoice.payment_hash,
        node_pubkey=node_pubkey,
        direction=LedgerEntry.Direction.IN,
        purpose=purpose,
        amount_msat=amount_msat,
        add_index=invoice.add_index or None,
        settle_index=settle_index,
        settled_at=settled_at,
        is_keysend=invoice.is_keysend,
        custom_records=records_to_json(invoice.custom_records if records is None else records),
        pubkey=pubkey,
        event_id=event_id,
        **extra,
    )


def ledger_insert_once(
    *, invoice: Invoice, node_pubkey: str, **fields: object
) -> tuple[LedgerEntry, bool]:
    """Insert the incoming row for `invoice` unless one exists; returns (row, created).

    A savepoint, so a concurrent writer that inserted first (the sweep, a second listener or
    hold reviewer) costs an IntegrityError here, not the caller's transaction.
    """
    try:
        with transaction.atomic():
            entry = _row(invoice, node_pubkey=node_pubkey, **fields)
            entry.save(force_insert=True)
        return entry, True
    except IntegrityError:
        return LedgerEntry.objects.get(payment_hash=invoice.payment_hash), False


def _settled_row(
    invoice: Invoice, node_pubkey: str, intent_json: Mapping[str, str] | None = None
) -> LedgerEntry:
    records = invoice.custom_records
    if intent_json is not None:
        # An invoice the forum issued for a message submitted over HTTP: its row carries the
        # stored records, so reconciliation takes it like a keysend (forum/ingest/invoices.py).
        records = records_from_json(intent_json)
    derived = ledger_classify(records=records)
    return _row(
        invoice,
        records=records,
        node_pubkey=node_pubkey,
        purpose=derived.purpose,
        amount_msat=invoice.amt_paid_msat,
        settle_index=invoice.settle_index,
        settled_at=settle_time(invoice),
        pubkey=derived.pubkey,
        event_id=derived.event_id,
    )


def ledger_record_invoices(
    *,
    invoices: Sequence[Invoice],
    node_pubkey: str,
    lease_holder: str | None = None,
    lease_seconds: float = 15.0,
    advance_cursor: bool = True,
) -> Recorded:
    """Record settled invoices (idempotent by payment hash) in one transaction.

    With `advance_cursor` the node's cursor moves to the highest indices in the same
    transaction (the listener); the sweep fills gaps without touching it. `lease_holder` fences
    the write to the listener that holds the lease (raises `LeaseLost` otherwise). Returns the
    new rows' payment hashes and their "paid" statuses, to send after commit.
    """
    unsettled = [i.payment_hash for i in invoices if not i.settled]
    if unsettled:
        raise ValueError(f"invoices not SETTLED: {', '.join(unsettled)}")
    if not invoices:
        return Recorded()
    unique = list({i.payment_hash: i for i in invoices}.values())
    with transaction.atomic():
        known = set(
            LedgerEntry.objects.filter(
                payment_hash__any=[i.payment_hash for i in unique]
            ).values_list("payment_hash", flat=True)
        )
        new = [i for i in unique if i.payment_hash not in known]
        # Invoices carry no records; the ones the forum issued are linked by payment hash.
        intents = intents_by_hash(i.payment_hash for i in new if not i.is_keysend)
        rows = [_settled_row(i, node_pubkey, _intent_json(intents, i.payment_hash)) for i in new]
        created = _insert(rows)
        if intents:
            intents_settled(e.payment_hash for e in created if e.payment_hash in intents)
        if advance_cursor:
            _cursor_advance(
                node_pubkey=node_pubkey,
                add_index=max(i.add_index for i in invoices),
                settle_index=max(i.settle_index for i in invoices),
                lease_holder=lease_holder,
                lease_seconds=lease_seconds,
            )
    for entry in created if log.isEnabledFor(logging.INFO) else ():
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
    messages: list[Message] = []
    for entry in created:
        if entry.purpose != Purpose.OTHER:
            messages.extend(status_paid(payment_hash=entry.payment_hash, event_id=entry.event_id))
    return Recorded(payment_hashes=tuple(e.payment_hash for e in created), messages=tuple(messages))


def _intent_json(
    intents: Mapping[str, InvoiceIntent], payment_hash: str
) -> Mapping[str, str] | None:
    intent = intents.get(payment_hash)
    return None if intent is None else intent_records(intent)


def _insert(rows: list[LedgerEntry]) -> list[LedgerEntry]:
    """Insert all at once; if a concurrent writer inserted one of them first, one by one."""
    if not rows:
        return []
    try:
        with transaction.atomic():
            rows_insert(LedgerEntry, rows)
        return rows
    except IntegrityError:
        created = []
        for row in rows:
            try:
                with transaction.atomic():
                    row.pk = None
                    row.save(force_insert=True)
                created.append(row)
            except IntegrityError:
                continue  # recorded by the other writer: exactly one row either way
        return created
