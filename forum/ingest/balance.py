"""Balances per pubkey: credits (keysends naming the pubkey) minus spends (relay EVENTs).

Both are ledger rows, so the ledger explains every sat of a balance:

- a `credit` row is a settled keysend whose records carry `credit` = the pubkey (the listener
  classifies it; `LedgerEntry.pubkey` is the credited key);
- a `spend` row is an EVENT the relay charged to its author's balance (`spend_record`). It is
  no Lightning payment: its payment hash is a random id, its `amount_msat` is what the
  reconciler took when it judged the event (0 until then, and 0 when refused).

**Its place in the settle order** is the moment it is charged: `spend_record` takes the
forum node's `ListenerCursor` row lock (the listener advances the cursor in the transaction
that records each batch of payments) and copies its settle index, so the row sorts after every
payment recorded before it and before every later one (ties: by row id). The reconciler claims
rows in that order and asks the one verdict at that position, with the balance at that
position (`balance_before`) as the amount paid.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from forum import nostr, protocol
from forum.ingest.ledger import records_to_json
from forum.models import LedgerEntry, ListenerCursor

Purpose = LedgerEntry.Purpose
IN = LedgerEntry.Direction.IN
SETTLED = LedgerEntry.Status.SETTLED
# The credit record's TLV type, for answers that say how to fund a balance.
CREDIT_RECORD = protocol.RECORD_TYPES["credit"]


class NoCursor(RuntimeError):
    """The forum's node has no listener cursor yet: nothing was ever recorded from it."""


def _rows(pubkey: str):
    return LedgerEntry.objects.filter(
        pubkey=pubkey, direction=IN, status=SETTLED, purpose__in=(Purpose.CREDIT, Purpose.SPEND)
    )


def _sums(rows) -> tuple[int, int]:
    sums = rows.aggregate(
        credited=Sum("amount_msat", filter=Q(purpose=Purpose.CREDIT)),
        spent=Sum("amount_msat", filter=Q(purpose=Purpose.SPEND)),
    )
    return sums["credited"] or 0, sums["spent"] or 0


def balance_before(pubkey: str, *, settle_index: int | None, pk: int) -> int:
    """The balance at a spend row's position: every credit and spend ordered before it
    (settle index, then id). A spend's amount is written the moment it is judged, in the
    batch's transaction, so spends judged earlier in the same batch count too."""
    earlier = Q(settle_index__lt=settle_index or 0) | Q(settle_index=settle_index, pk__lt=pk)
    credited, spent = _sums(_rows(pubkey).filter(earlier))
    return credited - spent


@dataclass(frozen=True)
class Balance:
    pubkey: str
    credited_msat: int
    spent_msat: int
    pending: int  # EVENTs charged and not judged yet (their price is taken when judged)

    @property
    def balance_msat(self) -> int:
        return self.credited_msat - self.spent_msat


def balance_of(pubkey: str) -> Balance:
    """The balance now (one query): every credit recorded minus every spend judged."""
    rows = _rows(pubkey)
    sums = rows.aggregate(
        credited=Sum("amount_msat", filter=Q(purpose=Purpose.CREDIT)),
        spent=Sum("amount_msat", filter=Q(purpose=Purpose.SPEND)),
        pending=Sum(
            1,
            filter=Q(
                purpose=Purpose.SPEND,
                reconcile_state__in=(
                    LedgerEntry.ReconcileState.PENDING,
                    LedgerEntry.ReconcileState.ERROR,
                ),
            ),
        ),
    )
    return Balance(pubkey, sums["credited"] or 0, sums["spent"] or 0, sums["pending"] or 0)


def _spend_hash(event_id: str) -> str:
    # Not a Lightning payment hash (no node invoice has it): unique per charge, so the same
    # event charged twice is two rows (the verdict calls the second a duplicate, for 0).
    return hashlib.sha256(f"spend:{event_id}:{secrets.token_hex(16)}".encode()).hexdigest()


def spend_record(parsed: nostr.Event, *, node_pubkey: str | None) -> LedgerEntry:
    """Charge an EVENT to its author's balance: a pending `spend` row at this moment's place in
    the settle order (see the module's docstring). The reconciler judges it; queue a batch
    after commit. `node_pubkey` None: the only cursor there is (one forum node)."""
    with transaction.atomic():
        cursors = ListenerCursor.objects.all()
        if node_pubkey:
            cursors = cursors.filter(node_pubkey=node_pubkey)
        # The row lock on PostgreSQL; on SQLite the UPDATE takes the database's write lock
        # before the read, so a listener batch cannot commit between the read and the insert.
        cursor = cursors.select_for_update().order_by("-settle_index").first()
        if cursor is None:
            raise NoCursor("the forum's node has recorded no payment yet")
        ListenerCursor.objects.filter(pk=cursor.pk).update(settle_index=F("settle_index"))
        cursor.refresh_from_db(fields=["settle_index"])
        entry = LedgerEntry(
            payment_hash=_spend_hash(parsed.id),
            node_pubkey=cursor.node_pubkey,
            direction=IN,
            purpose=Purpose.SPEND,
            amount_msat=0,
            settle_index=cursor.settle_index,
            settled_at=timezone.now(),
            is_keysend=False,
            custom_records=records_to_json(protocol.encode_event(parsed)),
            pubkey=parsed.pubkey,
            event_id=parsed.id,
        )
        entry.save(force_insert=True)
    return entry


# --- rebuild_from_node: spends are not on the node, so a rebuild keeps and replays them ------

SPEND_FIELDS = ("payment_hash", "node_pubkey", "settle_index", "settled_at", "custom_records",
                "pubkey", "event_id", "created_at")  # fmt: skip


def spends_snapshot() -> list[dict]:
    """Every spend row, in settle order (before the rebuild deletes the incoming ledger)."""
    rows = LedgerEntry.objects.filter(direction=IN, purpose=Purpose.SPEND)
    return list(rows.order_by("settle_index", "pk").values(*SPEND_FIELDS))


def spends_replay(snapshot: list[dict], *, up_to: int | None) -> int:
    """Put back (pending, amount 0: judged again) the snapshot's spends whose settle index is
    at most `up_to` (None: all that are left), after the payments recorded with that index, so
    each keeps its place in the order. Removes them from `snapshot`; returns how many."""
    due = [s for s in snapshot if up_to is None or (s["settle_index"] or 0) <= up_to]
    if not due:
        return 0
    del snapshot[: len(due)]
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(direction=IN, purpose=Purpose.SPEND, amount_msat=0, is_keysend=False, **s)
            for s in due
        ]
    )
    return len(due)
