"""The one verdict: is this message, paid this much and settled at this moment, to be published?

Every path that takes money for a message asks here and nowhere else: the batch reconciler
(a payment that settled), the hold reviewer (a payment the node still holds: settle or cancel),
room renting, top-ups and tips. The answer depends only on the message, the amount, the settle
time and index, and what `Lookups` report, so hold mode and settle-then-reconcile reach the
same verdict for the same message by construction.

Order of the checks: duplicate or top-up of a known event, then content (kind, board, sizes,
shape), then gate (ban, thread lock, board agreement), then price in settle order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from forum import nostr, protocol
from forum.ingest import kinds, pricing, rooms, rules
from forum.ingest.lookups import Lookups
from forum.ingest.rules import Finding
from forum.models import Board, Event, Post, Rejection, Thread
from forum.room_events import KIND_ROOM_CREATE

Reason = Rejection.Reason


class Action(enum.StrEnum):
    ACCEPT = "accept"  # valid and paid in full: publish it (a reply may wait for its parent)
    TOPUP = "topup"  # the event waits underpaid: this payment of it again is its top-up
    UNDERPAID = "underpaid"  # valid, paid too little: kept waiting for a top-up (hold: cancel)
    REJECT = "reject"  # a finding says why (duplicate included)


@dataclass(frozen=True)
class Verdict:
    action: Action
    finding: Finding | None = None
    board: Board | None = None
    price_msat: int = 0
    existing: Event | None = None

    @property
    def settles(self) -> bool:
        """Hold mode: settle the payment (otherwise cancel it; nothing is charged)."""
        return self.action in (Action.ACCEPT, Action.TOPUP)


def underpaid_context(*, price_msat: int, paid_msat: int) -> dict[str, int]:
    return {
        "price_sats": -(-price_msat // 1000),
        "paid_sats": paid_msat // 1000,
        "short_sats": -(-(price_msat - paid_msat) // 1000),
    }


def reply_refs(parsed: nostr.Event) -> tuple[str, str]:
    """(root, parent) event ids of a reply; empty for anything else or a malformed reply."""
    if parsed.kind != nostr.KIND_REPLY:
        return "", ""
    try:
        target = nostr.reply_target(parsed)
    except nostr.EventError:
        return "", ""
    return target.root_id, target.parent_id


def decide(
    parsed: nostr.Event,
    *,
    paid_msat: int,
    at: datetime,
    settle_index: int | None,
    lookups: Lookups,
    settle_slack: timedelta = timedelta(0),
) -> Verdict:
    """The verdict on a complete, authentic event (signature and id already checked).

    `settle_slack`: hold mode judges before the settle, which follows within the hold time.
    """
    existing = lookups.event(parsed.id)
    if existing is not None and existing.state != Event.State.REJECTED:
        if existing.state == Event.State.PENDING and existing.waiting_for == "underpaid":
            return Verdict(Action.TOPUP, board=existing.board, existing=existing)
        finding = Finding(Reason.DUPLICATE, {"what": "this event"})
        return Verdict(Action.REJECT, finding, board=existing.board, existing=existing)
    # New, or rejected before (banned, unknown board, ...): a new payment gets a fresh hearing.
    checked = rules.event_content_check(parsed, at=at, lookups=lookups, settle_slack=settle_slack)
    board = checked.board
    if checked.finding is not None:
        return Verdict(Action.REJECT, checked.finding, board=board, existing=existing)
    root_ref, parent_ref = reply_refs(parsed)
    finding = rules.gate_check(
        pubkey=parsed.pubkey,
        kind=parsed.kind,
        root_ref=root_ref,
        parent_ref=parent_ref,
        board_id=board.pk if board is not None else None,
        at=at,
        lookups=lookups,
    )
    if finding is not None:
        return Verdict(Action.REJECT, finding, board=board, existing=existing)
    if parsed.kind == KIND_ROOM_CREATE:
        price_msat = rooms.price_msat()
    elif parsed.kind in kinds.SIDE_KINDS:
        price_msat = pricing.side_price_msat(kind=parsed.kind, at=at, lookups=lookups)
    else:
        assert board is not None
        price_msat = pricing.price_for(
            board=board,
            kind=parsed.kind,
            pubkey=parsed.pubkey,
            at=at,
            settle_index=settle_index,
            lookups=lookups,
        ).price_msat
    if paid_msat < price_msat:
        context = underpaid_context(price_msat=price_msat, paid_msat=paid_msat)
        return Verdict(
            Action.UNDERPAID,
            Finding(Reason.UNDERPAID, context),
            board=board,
            price_msat=price_msat,
            existing=existing,
        )
    return Verdict(Action.ACCEPT, board=board, price_msat=price_msat, existing=existing)


def topup_decide(event: Event, *, paid_msat: int, at: datetime, lookups: Lookups) -> Verdict:
    """An underpaid event now paid `paid_msat` in all: accepted at the top-up's settle time,
    at the price fixed when it first settled, unless a ban or lock came in between."""
    if paid_msat < event.price_msat:
        context = underpaid_context(price_msat=event.price_msat, paid_msat=paid_msat)
        finding = Finding(Reason.UNDERPAID, context)
        return Verdict(Action.UNDERPAID, finding, board=event.board, price_msat=event.price_msat)
    finding = rules.gate_check(
        pubkey=event.pubkey,
        kind=event.kind,
        root_ref=event.root_ref,
        parent_ref=event.parent_ref,
        board_id=event.board_id,
        at=at,
        lookups=lookups,
    )
    if finding is not None:
        return Verdict(Action.REJECT, finding, board=event.board, existing=event)
    return Verdict(Action.ACCEPT, board=event.board, price_msat=event.price_msat, existing=event)


def target_decide(
    message: protocol.TopUpMessage | protocol.TipMessage, *, lookups: Lookups
) -> Verdict:
    """A top-up or tip names an event: can that event take the money?"""
    event = lookups.event(message.event_id)
    board = event.board if event is not None and event.board_id else None
    if isinstance(message, protocol.TipMessage):
        finding = rules.tip_target_check(event, lookups=lookups)
        if finding is None:
            return Verdict(Action.ACCEPT, board=board, existing=event)
        return Verdict(Action.REJECT, finding, board=board, existing=event)
    if event is None:
        return Verdict(Action.REJECT, Finding(Reason.UNKNOWN_TARGET, {"why": "not known here"}))
    if event.state == Event.State.PUBLISHED:
        return Verdict(Action.ACCEPT, board=board, existing=event)
    if event.state == Event.State.PENDING and event.waiting_for == "underpaid":
        return Verdict(Action.TOPUP, board=board, existing=event)
    finding = Finding(Reason.UNKNOWN_TARGET, {"why": "not waiting for a top-up"})
    return Verdict(Action.REJECT, finding, board=board, existing=event)


@dataclass(frozen=True)
class Placement:
    """Where an accepted reply goes: its thread and parent post once both are published."""

    thread: Thread | None = None
    parent: Post | None = None
    finding: Finding | None = None

    @property
    def ready(self) -> bool:
        return self.thread is not None and self.finding is None


def reply_placement(
    *, root_ref: str, parent_ref: str, board_id: int | None, lookups: Lookups
) -> Placement:
    """The thread and parent of an accepted reply: none while one is not published (it waits),
    or a finding when they can no longer take it (locked or hidden since, another board)."""
    thread = lookups.thread(root_ref)
    if thread is None:
        return Placement()
    parent = None
    if parent_ref != root_ref:
        parent = lookups.post(parent_ref)
        if parent is None:
            return Placement()
    finding = rules.reply_place_check(
        root_ref=root_ref, parent_ref=parent_ref, board_id=board_id, lookups=lookups
    )
    if finding is None and parent is not None and parent.thread_id != thread.pk:
        finding = Finding(Reason.MALFORMED, {"detail": "the reply's parent is in another thread"})
    return Placement(thread, parent, finding)
