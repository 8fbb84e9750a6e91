"""Hold mode: each held keysend is checked before it settles; what would be rejected is
cancelled instead, so it costs its sender nothing.

How held payments reach us. With lnd's ``--keysend-hold-time`` (simnet: the node's
``keysend_hold_seconds``) a keysend's invoice stays ACCEPTED, its records readable in
``htlcs[].custom_records``, until ``SettleInvoice``/``CancelInvoice``, or until the hold time runs
out and lnd cancels it. The listener hands each add event of its stream to
`HoldReviewer.submit` (the reviewer looks the invoice up until it is ACCEPTED); the reviewer
also scans ``ListInvoices(pending_only)`` when a listener session starts and every
`HOLD_SCAN_SECONDS`, which finds what was held while nobody was listening.

The decision is the reconciler's own verdict (`verdict.decide`: `rules.event_content_check`, `rules.gate_check`,
`pricing.price_for` at this moment, duplicates of known events) on the decoded records:

- valid, or no forum message at all (a donation), or a top-up/tip naming an event that can take
  it: `SettleInvoice` with the keysend preimage. The listener then sees the SETTLED invoice and
  the normal path follows (ledger row, reconciliation, publishing);
- invalid: a ledger row with status `cancelled` (never revenue, never reconciled) and a
  `Rejection` saying nothing was charged are committed, the composer is told, then the node
  cancels the payment and the sats go back;
- a part of a multipart set: held until the set is complete, then the joined event is checked
  and every part settled, or all of them cancelled (invalid, a duplicate part, or the first
  part's hold time about to run out: `incomplete_parts`);
- a reply whose thread or parent is not published yet: held and checked again on every scan,
  settled once they are, cancelled as `orphan_timeout` when its hold time is about to run out.

Duplicates: a payment for an event that another payment already paid, settled here and not in
the ledger yet (`HoldReviewer._paid`), or in the ledger and not reconciled yet, is cancelled as
`duplicate` like one whose Event exists: the same event paid twice at once is charged once.

Crash safety. One thread per listener session decides, in order (the listener's lease makes
that one per node). A payment is settled only right after this process found it valid; a
cancellation is recorded before the node is asked and a recorded cancellation is only ever
repeated, never reconsidered. So after a crash every held payment is either still ACCEPTED and
undecided (examined again on the next start), recorded as cancelled (cancelled again), or
settled (the listener's replay of settled invoices records it). A payment lnd cancelled at the
hold time while no reviewer ran is recorded as `hold_expired` when the listener's replay of add
events shows it to us (best effort: nothing was charged either way).

What cannot be promised: the rules are applied at check time. A moderator who bans or locks
between the check and the settle, or an author whose own earlier posts settle in between,
still gets a normal (charged) rejection from reconciliation, as without hold mode. The
reviewer counts its own approvals that are not reconciled yet when it prices, so one author's
burst is priced as if each post had already been accepted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from forum import nostr, protocol
from forum.ingest import ledger, rules
from forum.ingest import verdict as one_verdict
from forum.ingest.invoices import intent_close, intent_preimage, intents_by_hash
from forum.ingest.lookups import LiveLookups
from forum.ingest.rejections import reason_for_code, rejection_record
from forum.ingest.rules import Finding
from forum.ingest.status import status_broadcast_on_commit
from forum.models import Board, Event, InvoiceIntent, LedgerEntry, Rejection
from forum.selectors.status import rejection_status
from lightning.types import KEYSEND_PREIMAGE_RECORD, Invoice, LightningError

log = logging.getLogger(__name__)

Reason = Rejection.Reason
Status = LedgerEntry.Status


class HoldClient(Protocol):
    """The node calls the reviewer makes (`lightning.client.LightningClient` has them)."""

    def lookup_invoice(self, payment_hash: str) -> Invoice: ...
    def list_invoices(self, **kw: Any) -> Any: ...
    def settle_invoice(self, preimage: bytes) -> None: ...
    def cancel_invoice(self, payment_hash: str) -> None: ...


def hold_mode_enabled() -> bool:
    return bool(getattr(settings, "HOLD_MODE", False))


def hold_seconds() -> float:
    """The node's keysend hold time (lnd's --keysend-hold-time must match HOLD_SECONDS)."""
    return float(getattr(settings, "HOLD_SECONDS", 60))


def scan_seconds() -> float:
    return float(getattr(settings, "HOLD_SCAN_SECONDS", 2.0))


# How long an approval counts for pricing before reconciliation is expected to have its say.
APPROVAL_TTL_SECONDS = 60.0


def expiry_margin() -> float:
    """How long before the node's own deadline an incomplete part set is given up."""
    return min(5.0, hold_seconds() / 3)


def simnet_apply(net: Any) -> None:
    """Give the simnet forum node lnd's ``--keysend-hold-time`` as hold mode wants it (0: off).

    Set on every start (embedded or `manage.py simnet`): a topology only applies to a new
    data dir, and the setting may have changed since.
    """
    seconds = int(hold_seconds()) if hold_mode_enabled() else 0
    net.network.set_keysend_hold(settings.LND_NODE_NAME, seconds)


# --- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What to do with one held message: settle it (no finding), cancel it (a finding), or
    keep holding it (`wait`: a reply whose thread or parent is not published yet)."""

    finding: Finding | None = None
    event_ref: str = ""  # the event id the payment names or carries, if any
    pubkey: str = ""
    board: Board | None = None
    wait: bool = False

    @property
    def settle(self) -> bool:
        return self.finding is None and not self.wait


def _duplicate(what: str = "this event") -> Finding:
    return Finding(Reason.DUPLICATE, {"what": what})


class HeldLookups(LiveLookups):
    """The forum as reconciliation will see it once this reviewer's approvals are recorded:
    `in_flight` approved posts of the author on the board count for escalation before this
    one (they settle first)."""

    def __init__(self, in_flight: int = 0) -> None:
        self.in_flight = in_flight

    def accepted_times(
        self, pubkey: str, board_id: int, since: datetime
    ) -> list[tuple[datetime, int | None]]:
        taken = super().accepted_times(pubkey, board_id, since)
        return [*taken, *[(since, None)] * self.in_flight]


def event_verdict(
    parsed: nostr.Event, *, paid_msat: int, at: datetime, in_flight: int = 0, taken: bool = False
) -> Verdict:
    """Would `parsed`, paid `paid_msat` and settled at `at`, be accepted? The one verdict
    (`verdict.decide`), asked before the settle; no writes.

    `in_flight` counts the author's posts on the same board already approved for settling but
    not reconciled yet: they will count for escalation before this one. `taken`: another
    payment for this very event was approved or settled and is not reconciled yet, so this one
    is a duplicate whatever the database says now.
    """
    base = {"event_ref": parsed.id, "pubkey": parsed.pubkey}
    if taken:
        return Verdict(_duplicate(), **base)
    lookups = HeldLookups(in_flight)
    # The settle comes within the hold time: the date must still be in range by then.
    decided = one_verdict.decide(
        parsed,
        paid_msat=paid_msat,
        at=at,
        settle_index=None,
        lookups=lookups,
        settle_slack=timedelta(seconds=hold_seconds()),
    )
    if not decided.settles:
        return Verdict(decided.finding, **base, board=decided.board)
    root_ref, parent_ref = one_verdict.reply_refs(parsed)
    if root_ref and rules.reply_parent_missing(
        root_ref=root_ref, parent_ref=parent_ref, lookups=lookups
    ):
        # Settled now it would wait for its parent and, if that never came, be rejected with
        # the sats kept. Held instead until the parent is published or the hold time is up.
        return Verdict(**base, board=decided.board, wait=True)
    return Verdict(**base, board=decided.board)


def target_verdict(message: protocol.TopUpMessage | protocol.TipMessage) -> Verdict:
    """A top-up or tip settles when the event it names can take it (as reconciliation would)."""
    decided = one_verdict.target_decide(message, lookups=LiveLookups())
    event = decided.existing
    base = {"event_ref": message.event_id, "pubkey": event.pubkey if event else ""}
    return Verdict(None if decided.settles else decided.finding, **base, board=decided.board)


def held_amount_msat(invoice: Invoice) -> int:
    """What the held HTLCs carry (lnd may report amt_paid only once settled); for a cancelled
    invoice, what its HTLCs offered."""
    held = sum(h.amt_msat for h in invoice.htlcs if h.state in ("ACCEPTED", "SETTLED"))
    offered = held or sum(h.amt_msat for h in invoice.htlcs)
    return max(offered, invoice.amt_paid_msat)


def _accept_time(invoice: Invoice) -> float:
    times = [h.accept_time for h in invoice.htlcs if h.accept_time]
    return float(min(times)) if times else time.time()


# --- recording a cancelled attempt ---------------------------------------------------------


def hold_attempt_record(
    *,
    invoice: Invoice,
    node_pubkey: str,
    finding: Finding,
    event_ref: str = "",
    pubkey: str = "",
    board: Board | None = None,
    at: datetime | None = None,
    records: Mapping[int, bytes] | None = None,
) -> tuple[LedgerEntry, bool]:
    """The ledger row (status cancelled) and rejection of a turned-away payment; idempotent.

    Call inside a transaction; returns (row, created). Nothing here touches the node.
    `records`: what an invoice the forum issued stands for (its intent's records).
    """
    at = at or timezone.now()
    existing = LedgerEntry.objects.filter(payment_hash=invoice.payment_hash).first()
    if existing is not None:
        return existing, False
    records = invoice.custom_records if records is None else records
    derived = ledger.ledger_classify(records=records)
    amount = held_amount_msat(invoice)
    # Another reviewer (a listener that lost its lease) may have recorded it first.
    entry, created = ledger.ledger_insert_once(
        invoice=invoice,
        node_pubkey=node_pubkey,
        purpose=derived.purpose,
        amount_msat=amount,
        settle_index=None,
        settled_at=at,
        pubkey=pubkey or derived.pubkey,
        event_id=event_ref or derived.event_id,
        status=Status.CANCELLED,
        records=records,
        # Nothing to reconcile: the payment never settled.
        reconcile_state=LedgerEntry.ReconcileState.DONE,
        reconciled_at=at,
    )
    if not created:
        return entry, False
    rejection_record(
        reason=finding.reason,
        entry=entry,
        amount_msat=amount,
        event_ref=entry.event_id,
        pubkey=entry.pubkey,
        board=board,
        at=at,
        charged=False,
        **finding.context,
    )
    return entry, True


def _status_rejected_on_commit(entries: list[LedgerEntry], rejection: Rejection) -> None:
    """Tell the composer (by event id and by each payment hash) what happened, after commit."""
    hashes = [e.payment_hash for e in entries]
    key = rejection.event_ref or hashes[0]
    payload = rejection_status(
        key,
        rejection,
        paid_msat=sum(e.amount_msat for e in entries),
        payment_hash=hashes[0] if len(hashes) == 1 else None,
        charged=False,  # hold mode: the payment was cancelled, the sats went back
    )
    status_broadcast_on_commit(keys=hashes, event_id=key, payload=payload)


# --- hold invoices the forum issued (posts paid by invoice) ---------------------------------


def _records(invoice: Invoice) -> dict[int, bytes] | None:
    """What a held payment carries: a keysend its onion records; a hold invoice the forum
    issued its intent's records (`forum.ingest.invoices`); None for anyone else's invoice."""
    if invoice.is_keysend:
        return invoice.custom_records
    intent = InvoiceIntent.objects.filter(payment_hash=invoice.payment_hash, is_hold=True).first()
    return None if intent is None else ledger.records_from_json(intent.custom_records)


def _preimage(invoice: Invoice) -> bytes:
    if invoice.is_keysend:
        return bytes(invoice.custom_records.get(KEYSEND_PREIMAGE_RECORD, b""))
    key = (
        InvoiceIntent.objects.filter(payment_hash=invoice.payment_hash, is_hold=True)
        .values_list("preimage_key", flat=True)
        .first()
    )
    return intent_preimage(key) if key else b""


def _held_intents(invoices: Iterable[Invoice]) -> list[Invoice]:
    """The held (ACCEPTED) hold invoices among `invoices` that the forum issued."""
    accepted = [i for i in invoices if not i.is_keysend and i.state == "ACCEPTED"]
    ours = intents_by_hash(i.payment_hash for i in accepted)
    return [i for i in accepted if i.payment_hash in ours and ours[i.payment_hash].is_hold]


# --- the reviewer --------------------------------------------------------------------------


@dataclass
class _HeldPart:
    invoice: Invoice
    part: protocol.PartMessage
    accepted_at: float  # unix seconds, the node's clock


@dataclass
class _Payment:
    """The payments (one, or a part set) this reviewer settles for one event."""

    hashes: frozenset[str]
    since: float  # monotonic


@dataclass
class HoldReviewer:
    """Decides the node's held keysends for one listener session (a thread; see module doc)."""

    client: HoldClient
    node_pubkey: str
    stop: threading.Event
    decided: int = 0
    _queue: queue.Queue[Invoice] = field(default_factory=queue.Queue, repr=False)
    _parts: dict[str, dict[str, _HeldPart]] = field(default_factory=dict, repr=False)
    # (pubkey, board id) -> {event id: when approved (monotonic)} for posts settled here and
    # not reconciled yet.
    _approved: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict, repr=False)
    # event id -> the payment settled for it that the ledger does not show yet: the bridge
    # between our settle and the listener's row, so a copy in between is a duplicate.
    _paid: dict[str, _Payment] = field(default_factory=dict, repr=False)
    # Payment hashes this reviewer settled that the ledger does not show yet. A stale look at
    # one (a queued add event, a scan listed just before the settle) must not judge it again:
    # recording a cancellation for a settled payment would hide it from the ledger.
    _settled: dict[str, float] = field(default_factory=dict, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    # Lookups of OPEN add events run here, so a slow node never holds up the stream.
    _lookups: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="hold-lookup"),
        repr=False,
    )

    # -- threads ----------------------------------------------------------------------------

    def start(self) -> HoldReviewer:
        self._thread = threading.Thread(target=self._run, name="hold-reviewer", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        self._lookups.shutdown(wait=False, cancel_futures=True)

    def submit(self, invoice: Invoice) -> None:
        """An invoice event from the listener's stream; never blocks the stream."""
        if not invoice.is_keysend or invoice.settled:
            return  # AddHoldInvoice invoices belong to whoever made them
        if invoice.state in ("ACCEPTED", "CANCELED"):
            self._queue.put(invoice)
            return
        # OPEN: lnd adds a keysend's invoice as its HTLC arrives; ACCEPTED follows at once.
        # After the session ended the pool refuses work: the next session's scan finds it.
        with contextlib.suppress(RuntimeError):
            self._lookups.submit(self._await_accepted, invoice.payment_hash)

    def _await_accepted(self, payment_hash: str) -> None:
        delay, deadline = 0.02, time.monotonic() + 10
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                invoice = self.client.lookup_invoice(payment_hash)
            except LightningError as exc:
                log.warning("hold: lookup of %s failed (%s); the scan retries", payment_hash, exc)
                return
            if invoice.state != "OPEN":
                if invoice.state != "SETTLED":
                    self._queue.put(invoice)
                return
            self.stop.wait(delay)
            delay = min(delay * 2, 0.5)

    def _run(self) -> None:
        try:
            self._guarded(self.scan)  # what was held while nobody listened
            next_scan = time.monotonic() + scan_seconds()
            while not self.stop.is_set():
                try:
                    invoice = self._queue.get(timeout=max(0.0, next_scan - time.monotonic()))
                except queue.Empty:
                    invoice = None
                if invoice is not None and not self.stop.is_set():
                    self._guarded(self.review, invoice)
                if time.monotonic() >= next_scan:
                    self._guarded(self.scan)
                    next_scan = time.monotonic() + scan_seconds()
        finally:
            connection.close()  # this thread's connection ends with it

    def _guarded(self, func: Any, *args: Any) -> None:
        try:
            func(*args)
        except LightningError as exc:
            log.warning("hold: node call failed (%s: %s); retried later", type(exc).__name__, exc)
        except DatabaseError:
            log.exception("hold: database error; retried later")
            connection.close()
        except Exception:
            log.exception("hold: review failed; retried later")

    # -- scanning ---------------------------------------------------------------------------

    def pending(self) -> list[Invoice]:
        """Every held keysend the node reports now (ListInvoices pending_only, paged)."""
        held: list[Invoice] = []
        offset = 0
        while True:
            page = self.client.list_invoices(
                pending_only=True, index_offset=offset, num_max_invoices=500
            )
            held.extend(i for i in page.invoices if i.is_keysend and i.state == "ACCEPTED")
            held.extend(_held_intents(page.invoices))
            if len(page.invoices) < 500 or page.last_index_offset <= offset:
                return held
            offset = page.last_index_offset

    def scan(self) -> None:
        """Review everything held (idempotent), then give up part sets about to expire.

        Each payment is reviewed on its own: one that fails is retried by the next scan and
        cannot keep the others, or the expiry of part sets, from being decided.
        """
        try:
            self._guarded(self._paid_prune)
            self._guarded(self.intents_expire)
            for invoice in self.pending():
                if self.stop.is_set():
                    return
                self._guarded(self.review, invoice)
        finally:
            self.expire_part_sets()

    def intents_expire(self) -> int:
        """Close the hold invoices the forum issued that expired unpaid (cancelled at the
        node too, so no payment can arrive late); each gets its `expired` status."""
        grace = timezone.now() - timedelta(seconds=2)
        due = list(
            InvoiceIntent.objects.filter(
                state=InvoiceIntent.State.OPEN, is_hold=True, expires_at__lt=grace
            ).values_list("payment_hash", "event_id")[:200]
        )
        closed = 0
        for payment_hash, event_id in due:
            try:
                invoice = self.client.lookup_invoice(payment_hash)
            except LightningError as exc:
                if exc.code != "NOT_FOUND":
                    raise
                invoice = None
            if invoice is not None and invoice.state in ("ACCEPTED", "SETTLED"):
                continue  # paid in time: reviewed, or recorded by the listener
            if invoice is not None and invoice.state == "OPEN":
                self._node_cancel([invoice])  # lnd's expiry watcher may not have run yet
            with transaction.atomic():
                if intent_close(payment_hash=payment_hash, state=InvoiceIntent.State.EXPIRED):
                    status_broadcast_on_commit(keys=[payment_hash, event_id])
                    closed += 1
        return closed

    # -- one payment ------------------------------------------------------------------------

    def review(self, invoice: Invoice) -> None:
        """Decide one held payment (or record one the node cancelled while nobody decided)."""
        recorded = (
            LedgerEntry.objects.filter(payment_hash=invoice.payment_hash)
            .values_list("status", flat=True)
            .first()
        )
        records = _records(invoice)
        if records is None:
            return  # a hold invoice someone else issued on this node: not ours to decide
        if invoice.state == "CANCELED":
            if recorded is None and invoice.htlcs:
                self._record_expired(invoice)
            return
        if invoice.state != "ACCEPTED" or recorded == Status.SETTLED:
            return
        if invoice.payment_hash in self._settled:
            return  # settled here a moment ago; the listener records it
        if recorded == Status.CANCELLED:
            self._node_cancel([invoice])  # decided before a crash: repeat, never reconsider
            return
        try:
            message = protocol.decode_records(records)
        except protocol.ProtocolError as exc:
            finding = Finding(reason_for_code(exc.code), {"detail": exc.message})
            self._cancel([invoice], Verdict(finding, event_ref=exc.event_id or ""))
            return
        if isinstance(message, protocol.PartMessage):
            self._part_review(invoice, message)
            return
        if message is None or isinstance(message, protocol.CreditMessage):
            # A donation or someone else's records: not ours to judge; a credit funds a balance.
            verdict = Verdict()
        elif isinstance(message, protocol.EventMessage):
            verdict = self._event_verdict(
                message.event, held_amount_msat(invoice), payments=[invoice]
            )
        else:
            verdict = target_verdict(message)
        self._decide([invoice], verdict, pays_event=isinstance(message, protocol.EventMessage))

    def _decide(self, invoices: list[Invoice], verdict: Verdict, *, pays_event: bool) -> None:
        """Settle, cancel, or keep holding; `pays_event`: the payments carry the event itself
        (not a top-up or tip naming it)."""
        if verdict.settle:
            self._settle(invoices, verdict, pays_event=pays_event)
        elif verdict.finding is not None:
            self._cancel(invoices, verdict)
        elif self._past_deadline(invoices):
            # Waited for the reply's thread or parent as long as the node holds: give up.
            finding = Finding(Reason.ORPHAN_TIMEOUT, {"minutes": self._hold_minutes()})
            self._cancel(invoices, replace(verdict, finding=finding, wait=False))
        # else: still held; the next scan looks again.

    @staticmethod
    def _past_deadline(invoices: list[Invoice], now: float | None = None) -> bool:
        """Has the first of `invoices` been held nearly as long as the node will hold it?"""
        first = min(_accept_time(i) for i in invoices)
        return (now or time.time()) - first >= hold_seconds() - expiry_margin()

    @staticmethod
    def _hold_minutes() -> int:
        return max(1, round(hold_seconds() / 60))

    def _event_verdict(
        self, parsed: nostr.Event, paid_msat: int, *, payments: list[Invoice]
    ) -> Verdict:
        in_flight = 0
        slug = parsed.tag_value("h") or ""
        board_id = Board.objects.filter(slug=slug).values_list("pk", flat=True).first()
        if board_id is not None:
            in_flight = self._in_flight(parsed.pubkey, board_id, exclude=parsed.id)
        taken = self._taken(parsed.id, own={i.payment_hash for i in payments})
        return event_verdict(
            parsed, paid_msat=paid_msat, at=timezone.now(), in_flight=in_flight, taken=taken
        )

    # -- payments approved but not reconciled yet ---------------------------------------------

    def _taken(self, event_id: str, *, own: set[str]) -> bool:
        """Is `event_id` already paid by a payment other than `own` that is not reconciled yet?

        Three stages of one event's payment, from our settle to its Event row: settled by this
        reviewer and not in the ledger yet (`_paid`); in the ledger, not reconciled (a whole
        event's row, or a complete set of parts); reconciled (`event_verdict` sees the Event).
        """
        self._paid_prune()
        mine = self._paid.get(event_id)
        if mine is not None and not (mine.hashes & own):
            return True
        settled = LedgerEntry.objects.filter(
            direction=LedgerEntry.Direction.IN, status=Status.SETTLED, event_id=event_id
        ).exclude(payment_hash__in=own)
        open_rows = settled.exclude(reconcile_state=LedgerEntry.ReconcileState.DONE)
        if open_rows.filter(purpose=LedgerEntry.Purpose.MESSAGE).exists():
            return True
        if not open_rows.filter(purpose=LedgerEntry.Purpose.PART).exists():
            return False
        # Parts waiting for reconciliation: taken if they make a whole set (not yet assembled).
        parts = self._settled_parts(event_id)
        return bool(parts) and len(parts) >= next(iter(parts.values()))[0].count

    def _paid_prune(self) -> None:
        """Forget payments the ledger now shows (settled, or cancelled at the hold time)."""
        if not self._paid and not self._settled:
            return
        hashes = set(self._settled).union(*(p.hashes for p in self._paid.values()))
        recorded = set(
            LedgerEntry.objects.filter(payment_hash__in=hashes).values_list(
                "payment_hash", flat=True
            )
        )
        # A settle that never reached the ledger (the listener session ended in between) is
        # not kept forever: the listener records a settled invoice within moments.
        stale = time.monotonic() - 2 * max(hold_seconds(), APPROVAL_TTL_SECONDS)
        for event_id, payment in list(self._paid.items()):
            if payment.hashes <= recorded or payment.since < stale:
                del self._paid[event_id]
        for payment_hash, since in list(self._settled.items()):
            if payment_hash in recorded or since < stale:
                del self._settled[payment_hash]

    def _in_flight(self, pubkey: str, board_id: int, *, exclude: str) -> int:
        approved = self._approved.get((pubkey, board_id))
        if not approved:
            return 0
        # Reconciled (accepted, or rejected after all): the database says what counts now.
        # An approval reconciliation has not reached in a minute is left to the database too,
        # so a lost one cannot raise this author's prices for the rest of the session.
        decided = Event.objects.filter(event_id__in=list(approved)).filter(
            Q(accepted_at__isnull=False) | Q(state=Event.State.REJECTED)
        )
        stale = time.monotonic() - APPROVAL_TTL_SECONDS
        for event_id in set(decided.values_list("event_id", flat=True)):
            approved.pop(event_id, None)
        for event_id, when in list(approved.items()):
            if when < stale:
                approved.pop(event_id)
        return len(approved.keys() - {exclude})

    # -- multipart --------------------------------------------------------------------------

    def _part_review(self, invoice: Invoice, part: protocol.PartMessage) -> None:
        # Nothing is stored for a part until it is known not to be a repeat: a refused part
        # must leave no trace in `_parts` (an empty set there once stopped all expiry).
        held = self._parts.get(part.event_id, {})
        own = {invoice.payment_hash}
        indexes = {p.part.index for h, p in held.items() if h != invoice.payment_hash}
        if part.index in indexes or part.index in self._settled_parts(part.event_id):
            what = f"part {part.index + 1} of {part.count}"
            self._cancel([invoice], Verdict(_duplicate(what), event_ref=part.event_id))
            return
        if self._event_paid(part.event_id, own=own | set(held)):
            self._cancel([invoice], Verdict(_duplicate(), event_ref=part.event_id))
            return
        held = self._parts.setdefault(part.event_id, {})
        held[invoice.payment_hash] = _HeldPart(invoice, part, _accept_time(invoice))
        self._part_set_try(part.event_id)

    def _event_paid(self, event_id: str, *, own: set[str]) -> bool:
        """Does a part of `event_id` come too late: the event paid in full by other payments?"""
        if self._taken(event_id, own=own):
            return True
        state = Event.objects.filter(event_id=event_id).values("state", "waiting_for").first()
        if state is None or state["state"] == Event.State.REJECTED:
            return False
        return not (state["state"] == Event.State.PENDING and state["waiting_for"] == "underpaid")

    def _settled_parts(self, event_id: str) -> dict[int, tuple[protocol.PartMessage, int]]:
        """Parts of `event_id` the forum was already paid for (before hold mode, or a race)."""
        found: dict[int, tuple[protocol.PartMessage, int]] = {}
        rows = LedgerEntry.objects.filter(
            event_id=event_id, purpose=LedgerEntry.Purpose.PART, status=Status.SETTLED
        ).values_list("custom_records", "amount_msat")
        for raw, amount in rows:
            try:
                other = protocol.decode_records(ledger.records_from_json(raw))
            except protocol.ProtocolError:
                continue
            if isinstance(other, protocol.PartMessage):
                found.setdefault(other.index, (other, amount))
        return found

    def _part_set_try(self, event_id: str) -> None:
        held = self._parts.get(event_id)
        if not held:
            return
        settled = self._settled_parts(event_id)
        members = sorted(held.values(), key=lambda h: h.part.index)
        invoices = [h.invoice for h in members]
        parts = [h.part for h in members] + [p for p, _ in settled.values()]
        try:
            parsed = protocol.join_parts(parts)
        except protocol.ProtocolError as exc:
            if exc.code == "incomplete_parts":
                return  # wait for the rest (or `expire_part_sets`)
            finding = Finding(reason_for_code(exc.code), {"detail": exc.message})
            del self._parts[event_id]
            self._cancel(invoices, Verdict(finding, event_ref=event_id))
            return
        # lnd may have cancelled a part we still list (it expired): then the set is broken.
        current = [self.client.lookup_invoice(i.payment_hash) for i in invoices]
        if any(i.state != "ACCEPTED" for i in current):
            del self._parts[event_id]
            count = members[0].part.count
            received = count - sum(i.state != "ACCEPTED" for i in current)
            finding = Finding(Reason.INCOMPLETE_PARTS, self._incomplete_context(received, count))
            # Every part gets its row, the ones the node already cancelled too.
            self._cancel(current, Verdict(finding, event_ref=event_id, pubkey=parsed.pubkey))
            return
        paid = sum(held_amount_msat(i) for i in current) + sum(a for _, a in settled.values())
        verdict = self._event_verdict(parsed, paid, payments=current)
        if verdict.wait and not self._past_deadline(current):
            return  # a reply whose parent is not published: the set stays held and is retried
        del self._parts[event_id]
        self._decide(current, verdict, pays_event=True)

    @staticmethod
    def _incomplete_context(received: int, count: int) -> dict[str, Any]:
        return {"received": received, "count": count, "minutes": max(1, round(hold_seconds() / 60))}

    def expire_part_sets(self, *, now: float | None = None) -> int:
        """Cancel, together, every part set whose first part's hold time is about to end.

        Each set on its own: one that cannot be decided now (node or database trouble) is
        dropped from memory and found again, still held, by the next scan.
        """
        now = now or time.time()
        limit = hold_seconds() - expiry_margin()
        expired = 0
        for event_id, held in list(self._parts.items()):
            if not held:
                del self._parts[event_id]
                continue
            first = min(h.accepted_at for h in held.values())
            if now - first < limit:
                continue
            del self._parts[event_id]
            try:
                self._part_set_give_up(event_id, held)
            except (LightningError, DatabaseError) as exc:
                log.warning("hold: giving up part set %s failed (%s); retried", event_id, exc)
            except Exception:
                log.exception("hold: giving up part set %s failed; retried", event_id)
            else:
                expired += 1
        return expired

    def _part_set_give_up(self, event_id: str, held: dict[str, _HeldPart]) -> None:
        members = sorted(held.values(), key=lambda h: h.part.index)
        count = members[0].part.count
        indexes = {h.part.index for h in members} | set(self._settled_parts(event_id))
        if len(indexes) >= count:
            # Complete, and still waiting for the reply's thread or parent.
            finding = Finding(Reason.ORPHAN_TIMEOUT, {"minutes": self._hold_minutes()})
        else:
            finding = Finding(
                Reason.INCOMPLETE_PARTS, self._incomplete_context(len(indexes), count)
            )
        self._cancel([h.invoice for h in members], Verdict(finding, event_ref=event_id))

    # -- outcomes ---------------------------------------------------------------------------

    def _settle(self, invoices: list[Invoice], verdict: Verdict, *, pays_event: bool) -> None:
        if pays_event and verdict.event_ref:
            # Before the first settle: a copy reviewed after it, even after a failed settle
            # here, must see the event as taken. Ours (these hashes) still settle on retry.
            hashes = frozenset(i.payment_hash for i in invoices)
            self._paid[verdict.event_ref] = _Payment(hashes, time.monotonic())
        for invoice in invoices:
            preimage = _preimage(invoice)
            if hashlib.sha256(preimage).hexdigest() != invoice.payment_hash:
                # lnd checks this before holding; a node that did not cannot be settled by us.
                log.warning("hold: %s carries no matching preimage", invoice.payment_hash)
                if not invoice.is_keysend:
                    # Our own invoice, issued under another SECRET_KEY: it can never settle, so
                    # the payer gets the HTLC back now rather than when its CLTV runs out.
                    log.error("hold: SECRET_KEY changed since invoice %s", invoice.payment_hash)
                    self._cancel([invoice], Verdict(Finding(Reason.HOLD_EXPIRED)))
                continue
            try:
                self.client.settle_invoice(bytes(preimage))
            except LightningError as exc:
                if "already canceled" not in exc.message:
                    raise  # the node is unreachable: the next scan tries again
                # The hold time ran out first: nothing was charged; keep the attempt on record.
                self._record_expired(self.client.lookup_invoice(invoice.payment_hash))
                continue
            self._settled[invoice.payment_hash] = time.monotonic()
            self.decided += 1
            log.info("hold.settled %s", invoice.payment_hash)
        if pays_event and verdict.pubkey and verdict.board is not None and verdict.event_ref:
            key = (verdict.pubkey, verdict.board.pk)
            self._approved.setdefault(key, {})[verdict.event_ref] = time.monotonic()

    def _cancel(self, invoices: list[Invoice], verdict: Verdict) -> None:
        assert verdict.finding is not None
        # Never a cancellation on record for a payment that settled (here, or at the node as
        # a fresh lookup shows): its ledger row must be the settled one.
        invoices = [
            i for i in invoices if i.payment_hash not in self._settled and i.state != "SETTLED"
        ]
        if not invoices:
            return
        at = timezone.now()
        with transaction.atomic():
            entries, rejection = [], None
            for invoice in invoices:
                entry, created = hold_attempt_record(
                    invoice=invoice,
                    node_pubkey=self.node_pubkey,
                    finding=verdict.finding,
                    event_ref=verdict.event_ref,
                    pubkey=verdict.pubkey,
                    board=verdict.board,
                    at=at,
                    records=_records(invoice),
                )
                if not invoice.is_keysend:
                    intent_close(
                        payment_hash=invoice.payment_hash,
                        state=InvoiceIntent.State.CANCELLED,
                        reason=verdict.finding.reason,
                    )
                if created:
                    entries.append(entry)
                    rejection = entry.rejections.order_by("-id").first()
            if entries and rejection is not None:
                _status_rejected_on_commit(entries, rejection)
        # Recorded first: a crash from here on cancels again on restart, never settles.
        self._node_cancel(invoices)
        log.info(
            "hold.cancelled %s reason=%s",
            ",".join(i.payment_hash for i in invoices),
            verdict.finding.reason,
        )

    def _node_cancel(self, invoices: Iterable[Invoice]) -> None:
        for invoice in invoices:
            try:
                self.client.cancel_invoice(invoice.payment_hash)
                self.decided += 1
            except LightningError as exc:
                # Already cancelled (the hold time ran out) is fine. Already settled means a
                # stale second look at a payment this reviewer settled a moment ago: nothing
                # to undo. Anything else (node unreachable) is retried by the next scan.
                if "already settled" in exc.message:
                    log.warning("hold: %s was settled before its cancel", invoice.payment_hash)
                elif "already canceled" not in exc.message and exc.code != "NOT_FOUND":
                    raise

    def _record_expired(self, invoice: Invoice) -> None:
        """A held payment the node cancelled while nobody decided: record the attempt."""
        records = _records(invoice) or {}
        try:
            message = protocol.decode_records(records)
        except protocol.ProtocolError:
            message = None  # garbage that expired: still worth a row below
        else:
            if message is None:
                return  # not a forum message: nothing for moderators to see
        event_ref = ""
        if isinstance(message, protocol.EventMessage):
            event_ref = message.event.id
        elif message is not None:
            event_ref = message.event_id
        finding = Finding(Reason.HOLD_EXPIRED)
        with transaction.atomic():
            entry, created = hold_attempt_record(
                invoice=invoice,
                node_pubkey=self.node_pubkey,
                finding=finding,
                event_ref=event_ref,
                records=records,
            )
            if created:
                _status_rejected_on_commit([entry], entry.rejections.order_by("-id").first())


class _NoReviewer:
    """What the listener gets when hold mode is off: submit does nothing."""

    def submit(self, invoice: Invoice) -> None:
        return None

    def join(self, timeout: float | None = None) -> None:
        return None


def session_reviewer(
    *, client: HoldClient, node_pubkey: str, session: threading.Event
) -> HoldReviewer | _NoReviewer:
    """For a listener session: a running reviewer that stops with `session` (hold mode), or a
    no-op. Its first act is to re-examine everything the node holds."""
    if not hold_mode_enabled():
        return _NoReviewer()
    return HoldReviewer(client=client, node_pubkey=node_pubkey, stop=session).start()
