"""Hold mode: each held keysend is checked before it settles; what would be rejected is
cancelled instead, so it costs its sender nothing.

How held payments reach us. With lnd's ``--keysend-hold-time`` (simnet: the node's
``keysend_hold_seconds``) a keysend's invoice stays ACCEPTED, its records readable in
``htlcs[].custom_records``, until ``SettleInvoice``/``CancelInvoice``, or until the hold time runs
out and lnd cancels it. The listener hands each add event of its stream to
`HoldReviewer.submit` (the reviewer looks the invoice up until it is ACCEPTED); the reviewer
also scans ``ListInvoices(pending_only)`` when a listener session starts and every
`HOLD_SCAN_SECONDS`, which finds what was held while nobody was listening.

The decision runs the reconciler's own rules (`rules.event_content_check`, `rules.gate_check`,
`pricing.price_for` at this moment, duplicates of known events) on the decoded records:

- valid, or no forum message at all (a donation), or a top-up/tip naming an event that can take
  it: `SettleInvoice` with the keysend preimage. The listener then sees the SETTLED invoice and
  the normal path follows (ledger row, reconciliation, publishing);
- invalid: a ledger row with status `cancelled` (never revenue, never reconciled) and a
  `Rejection` saying nothing was charged are committed, the composer is told, then the node
  cancels the payment and the sats go back;
- a part of a multipart set: held until the set is complete, then the joined event is checked
  and every part settled, or all of them cancelled (invalid, a duplicate part, or the first
  part's hold time about to run out: `incomplete_parts`).

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
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from forum import nostr, protocol
from forum.ingest import ledger, verdict
from forum.ingest.lookups import LiveLookups, Lookups
from forum.ingest.rules import Finding
from forum.models import Board, Event, LedgerEntry, Rejection
from forum.selectors.status import status_unknown
from forum.services.rejections import reason_for_code, rejection_record
from forum.services.status import status_broadcast_on_commit
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
class Decision:
    """What to do with one held message: settle it (finding None) or cancel it (a finding)."""

    finding: Finding | None = None
    event_ref: str = ""  # the event id the payment names or carries, if any
    pubkey: str = ""
    board: Board | None = None

    @property
    def settle(self) -> bool:
        return self.finding is None


class HeldLookups(LiveLookups):
    """The forum as reconciliation will see it once the reviewer's approvals are recorded:
    an approved event is taken (a second payment of it is a duplicate), and counts for its
    author's escalation from now on."""

    def __init__(self, approved: dict[tuple[str, int], dict[str, float]]) -> None:
        self.approved = approved

    def event(self, event_id: str) -> Event | None:
        found = super().event(event_id)
        if found is None and any(event_id in ids for ids in self.approved.values()):
            return Event(event_id=event_id, state=Event.State.PUBLISHED)
        return found

    def accepted_times(
        self, pubkey: str, board_id: int, since: datetime
    ) -> list[tuple[datetime, int | None]]:
        taken = super().accepted_times(pubkey, board_id, since)
        now = timezone.now()
        return [*taken, *((now, None) for _ in self.approved.get((pubkey, board_id), {}))]


def event_decision(
    parsed: nostr.Event, *, paid_msat: int, at: datetime, lookups: Lookups
) -> Decision:
    """Would `parsed`, paid `paid_msat` and settled at `at`, be accepted? The one verdict."""
    base = {"event_ref": parsed.id, "pubkey": parsed.pubkey}
    decided = verdict.decide(parsed, paid_msat=paid_msat, at=at, settle_index=None, lookups=lookups)
    return Decision(None if decided.settles else decided.finding, **base, board=decided.board)


def target_decision(message: protocol.TopUpMessage | protocol.TipMessage) -> Decision:
    """A top-up or tip settles when the event it names can take it (as reconciliation would)."""
    decided = verdict.target_decide(message, lookups=LiveLookups())
    event = decided.existing
    base = {"event_ref": message.event_id, "pubkey": event.pubkey if event else ""}
    return Decision(None if decided.settles else decided.finding, **base, board=decided.board)


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
) -> tuple[LedgerEntry, bool]:
    """The ledger row (status cancelled) and rejection of a turned-away payment; idempotent.

    Call inside a transaction; returns (row, created). Nothing here touches the node.
    """
    at = at or timezone.now()
    existing = LedgerEntry.objects.filter(payment_hash=invoice.payment_hash).first()
    if existing is not None:
        return existing, False
    derived = ledger.ledger_classify(records=invoice.custom_records)
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
    payload = {
        **status_unknown(key),
        "state": "rejected",
        "reason": rejection.reason,
        "message": rejection.message,
        "event_id": rejection.event_ref or None,
        "payment_hash": hashes[0] if len(hashes) == 1 else None,
        "board": rejection.board.slug if rejection.board_id else None,
        "paid_msat": sum(e.amount_msat for e in entries),
        # Hold mode: the payment was cancelled, the sats went back.
        "charged": False,
    }
    status_broadcast_on_commit(keys=hashes, event_id=key, payload=payload)


# --- the reviewer --------------------------------------------------------------------------


@dataclass
class _HeldPart:
    invoice: Invoice
    part: protocol.PartMessage
    accepted_at: float  # unix seconds, the node's clock


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
            if len(page.invoices) < 500 or page.last_index_offset <= offset:
                return held
            offset = page.last_index_offset

    def scan(self) -> None:
        """Review everything held (idempotent), then give up part sets about to expire."""
        for invoice in self.pending():
            if self.stop.is_set():
                return
            self.review(invoice)
        self.expire_part_sets()

    # -- one payment ------------------------------------------------------------------------

    def review(self, invoice: Invoice) -> None:
        """Decide one held payment (or record one the node cancelled while nobody decided)."""
        recorded = (
            LedgerEntry.objects.filter(payment_hash=invoice.payment_hash)
            .values_list("status", flat=True)
            .first()
        )
        if invoice.state == "CANCELED":
            if recorded is None and invoice.htlcs:
                self._record_expired(invoice)
            return
        if invoice.state != "ACCEPTED" or recorded == Status.SETTLED:
            return
        if recorded == Status.CANCELLED:
            self._node_cancel([invoice])  # decided before a crash: repeat, never reconsider
            return
        records = invoice.custom_records
        try:
            message = protocol.decode_records(records)
        except protocol.ProtocolError as exc:
            finding = Finding(reason_for_code(exc.code), {"detail": exc.message})
            self._cancel([invoice], Decision(finding, event_ref=exc.event_id or ""))
            return
        if isinstance(message, protocol.PartMessage):
            self._part_review(invoice, message)
            return
        if message is None:
            decision = Decision()  # a donation or someone else's records: not ours to judge
        elif isinstance(message, protocol.EventMessage):
            decision = self._event_decision(message.event, held_amount_msat(invoice))
        else:
            decision = target_decision(message)
        if decision.settle:
            self._settle([invoice], decision)
        else:
            self._cancel([invoice], decision)

    def _event_decision(self, parsed: nostr.Event, paid_msat: int) -> Decision:
        self._approved_prune()
        lookups = HeldLookups(self._approved)
        return event_decision(parsed, paid_msat=paid_msat, at=timezone.now(), lookups=lookups)

    def _approved_prune(self) -> None:
        """Forget approvals reconciliation has decided (the database says what counts now),
        and those it has not reached in APPROVAL_TTL_SECONDS (so a lost one cannot raise an
        author's prices, or block a resend, for the rest of the session)."""
        every = [event_id for ids in self._approved.values() for event_id in ids]
        if not every:
            return
        decided = set(
            Event.objects.filter(event_id__in=every)
            .filter(Q(accepted_at__isnull=False) | Q(state=Event.State.REJECTED))
            .values_list("event_id", flat=True)
        )
        stale = time.monotonic() - APPROVAL_TTL_SECONDS
        for key, approved in list(self._approved.items()):
            for event_id, when in list(approved.items()):
                if event_id in decided or when < stale:
                    approved.pop(event_id)
            if not approved:
                del self._approved[key]

    # -- multipart --------------------------------------------------------------------------

    def _part_review(self, invoice: Invoice, part: protocol.PartMessage) -> None:
        held = self._parts.setdefault(part.event_id, {})
        taken = {p.part.index for h, p in held.items() if h != invoice.payment_hash}
        if part.index in taken or part.index in self._settled_parts(part.event_id):
            finding = Finding(Reason.DUPLICATE, {"what": f"part {part.index + 1} of {part.count}"})
            self._cancel([invoice], Decision(finding, event_ref=part.event_id))
            return
        held[invoice.payment_hash] = _HeldPart(invoice, part, _accept_time(invoice))
        self._part_set_try(part.event_id)

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
        held = self._parts[event_id]
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
            self._cancel(invoices, Decision(finding, event_ref=event_id))
            return
        del self._parts[event_id]
        # lnd may have cancelled a part we still list (it expired): then the set is broken.
        current = [self.client.lookup_invoice(i.payment_hash) for i in invoices]
        if any(i.state != "ACCEPTED" for i in current):
            count = members[0].part.count
            received = count - sum(i.state != "ACCEPTED" for i in current)
            finding = Finding(Reason.INCOMPLETE_PARTS, self._incomplete_context(received, count))
            live = [i for i in current if i.state == "ACCEPTED"]
            if live:
                self._cancel(live, Decision(finding, event_ref=event_id, pubkey=parsed.pubkey))
            return
        paid = sum(held_amount_msat(i) for i in current) + sum(a for _, a in settled.values())
        decision = self._event_decision(parsed, paid)
        if decision.settle:
            self._settle(current, decision)
        else:
            self._cancel(current, decision)

    @staticmethod
    def _incomplete_context(received: int, count: int) -> dict[str, Any]:
        return {"received": received, "count": count, "minutes": max(1, round(hold_seconds() / 60))}

    def expire_part_sets(self, *, now: float | None = None) -> int:
        """Cancel, together, every part set whose first part's hold time is about to end."""
        now = now or time.time()
        limit = hold_seconds() - expiry_margin()
        expired = 0
        for event_id, held in list(self._parts.items()):
            first = min(h.accepted_at for h in held.values())
            if now - first < limit:
                continue
            del self._parts[event_id]
            members = sorted(held.values(), key=lambda h: h.part.index)
            count = members[0].part.count
            received = len({h.part.index for h in members} | set(self._settled_parts(event_id)))
            finding = Finding(Reason.INCOMPLETE_PARTS, self._incomplete_context(received, count))
            self._cancel([h.invoice for h in members], Decision(finding, event_ref=event_id))
            expired += 1
        return expired

    # -- outcomes ---------------------------------------------------------------------------

    def _settle(self, invoices: list[Invoice], decision: Decision) -> None:
        for invoice in invoices:
            preimage = invoice.custom_records.get(KEYSEND_PREIMAGE_RECORD, b"")
            if hashlib.sha256(preimage).hexdigest() != invoice.payment_hash:
                # lnd checks this before holding; a node that did not cannot be settled by us.
                log.warning("hold: %s carries no matching preimage", invoice.payment_hash)
                continue
            try:
                self.client.settle_invoice(bytes(preimage))
            except LightningError as exc:
                if "already canceled" not in exc.message:
                    raise  # the node is unreachable: the next scan tries again
                # The hold time ran out first: nothing was charged; keep the attempt on record.
                self._record_expired(self.client.lookup_invoice(invoice.payment_hash))
                continue
            self.decided += 1
            log.info("hold.settled %s", invoice.payment_hash)
        if decision.pubkey and decision.board is not None and decision.event_ref:
            key = (decision.pubkey, decision.board.pk)
            self._approved.setdefault(key, {})[decision.event_ref] = time.monotonic()

    def _cancel(self, invoices: list[Invoice], decision: Decision) -> None:
        assert decision.finding is not None
        at = timezone.now()
        with transaction.atomic():
            entries, rejection = [], None
            for invoice in invoices:
                entry, created = hold_attempt_record(
                    invoice=invoice,
                    node_pubkey=self.node_pubkey,
                    finding=decision.finding,
                    event_ref=decision.event_ref,
                    pubkey=decision.pubkey,
                    board=decision.board,
                    at=at,
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
            decision.finding.reason,
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
        try:
            message = protocol.decode_records(invoice.custom_records)
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
                invoice=invoice, node_pubkey=self.node_pubkey, finding=finding, event_ref=event_ref
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
