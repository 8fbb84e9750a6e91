"""Judging an EVENT the relay charged to a balance (a `spend` ledger row), in settle order.

The reconciler hands each spend row here (`spend_apply`) at its place in the order. The
balance at that place is what the author "paid"; the one verdict (`verdict.decide`) judges the
event with it exactly as it judges a keysend of that amount:

- ACCEPT: the price is taken (the row's `amount_msat`), and the event goes down the keysend
  path (`_deliver`) as if paid exactly the price, so publishing, escalation, waiting replies
  and counters are the same code.
- TOPUP (the event already waits underpaid after a keysend): the missing amount is taken if
  the balance covers it, and it completes the event like a top-up.
- anything else: nothing is taken (the row stays at 0) and the refusal is a rejection on the
  row with its reason; too little balance is `insufficient_balance` (`blocked:`), which says
  the balance, the price and how to top up.
"""

from __future__ import annotations

from typing import Any

from forum import nostr
from forum.ingest import verdict
from forum.ingest.balance import CREDIT_RECORD, balance_before
from forum.ingest.rules import Finding
from forum.ingest.verdict import Action
from forum.models import Event, LedgerEntry, Rejection

Reason = Rejection.Reason


def fund_sentence(node_pubkey: str, pubkey: str) -> str:
    return (
        f"a keysend to node {node_pubkey or 'the forum node'} with the credit record"
        f" ({CREDIT_RECORD}) naming {pubkey} (docs/protocol.md)"
    )


def insufficient(*, balance_msat: int, price_msat: int, node_pubkey: str, pubkey: str) -> Finding:
    return Finding(
        Reason.INSUFFICIENT_BALANCE,
        {
            "balance_msat": balance_msat,
            "price_msat": price_msat,
            "fund": fund_sentence(node_pubkey, pubkey),
        },
    )


def _charge(row: LedgerEntry, amount_msat: int) -> None:
    """Take `amount_msat` from the balance: the row's amount, written at once in the batch's
    transaction (rolled back with it), so the next spend's `balance_before` sees it."""
    row.amount_msat = amount_msat
    LedgerEntry.objects.filter(pk=row.pk).update(amount_msat=amount_msat)


def spend_apply(run: Any, row: LedgerEntry, parsed: nostr.Event) -> None:
    """Judge a spend row (`run` is the reconciler's batch, `reconcile._Run`)."""
    state = run.state
    at = row.settled_at
    balance = balance_before(parsed.pubkey, settle_index=row.settle_index, pk=row.pk)
    decided = verdict.decide(
        parsed, paid_msat=balance, at=at, settle_index=row.settle_index, lookups=state
    )
    keys = [row.payment_hash, parsed.id]
    if decided.action == Action.ACCEPT:
        price = decided.price_msat
        _charge(row, price)
        run._deliver(
            parsed, entry=row, paid_msat=price, at=at, settle_index=row.settle_index, keys=keys
        )
        event = run.event_rows.get(parsed.id)
        if event is not None and event.state == Event.State.REJECTED:
            # Refused after all where it was placed (a parent in another thread): give it back.
            _charge(row, 0)
            event.paid_msat = 0
            state.add(state.author(parsed.pubkey, seen_at=at), spent_msat=-price)
            rejection = run.event_rejection.get(parsed.id)
            if rejection is not None:
                rejection.amount_msat = 0
        return
    existing = decided.existing
    if decided.action == Action.TOPUP and existing is not None:
        short = max(existing.price_msat - existing.paid_msat, 0)
        if balance >= short:
            _charge(row, short)
            state.add(state.author(existing.pubkey, seen_at=at), spent_msat=short)
            run._topup_into(existing, entry=row, amount_msat=short, at=at)
            run._note(existing, keys)
            return
        finding = insufficient(
            balance_msat=balance, price_msat=short, node_pubkey=row.node_pubkey,
            pubkey=parsed.pubkey,
        )  # fmt: skip
    elif decided.action in (Action.UNDERPAID, Action.TOPUP):
        finding = insufficient(
            balance_msat=balance, price_msat=decided.price_msat, node_pubkey=row.node_pubkey,
            pubkey=parsed.pubkey,
        )  # fmt: skip
    else:
        assert decided.finding is not None
        finding = decided.finding
    rejection = run._reject(
        reason=finding.reason,
        entry=row,
        amount_msat=0,
        event=existing if existing is not None and existing.pk is not None else None,
        event_ref=parsed.id,
        pubkey=parsed.pubkey,
        board=decided.board,
        **finding.context,
    )
    # A duplicate says so to this charge only: the event's own status is unchanged.
    duplicate = existing is not None and existing.state != Event.State.REJECTED
    run._note_rejected([row.payment_hash] if duplicate else keys, rejection, row)
