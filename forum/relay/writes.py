"""The relay's write path: an EVENT paid from its author's balance (docs/relay.md).

The consumer (an adapter) calls these on the relay's own threads:

1. `event_submit`: the one verdict (`verdict.decide`) asked now, with the balance now as
   the amount, as a cheap first look. A refusal is answered at once and nothing is
   recorded or charged. Otherwise the event is charged: a `spend` ledger row at this
   moment's place in the settle order (`forum.ingest.balance.spend_record`).
2. The caller queues a reconcile batch; the reconciler judges the row in settle order with the
   balance at its place (`forum.ingest.spend`), which is the answer that counts.
3. `spend_outcome`: what the reconciler decided, as the `OK` answer (None while pending).

`EventBucket` is the per-connection rate limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.utils import timezone

from forum import nostr
from forum.ingest import verdict
from forum.ingest.balance import CREDIT_RECORD, NoCursor, balance_of, spend_record
from forum.ingest.lookups import LiveLookups
from forum.ingest.rejections import rejection_message
from forum.ingest.verdict import Action
from forum.models import Event, LedgerEntry, Rejection

Reason = Rejection.Reason
DUPLICATE = "duplicate: already have this event"


@dataclass(frozen=True)
class Answer:
    """An `OK` answer, or (`payment_hash` set) a charge whose verdict is still to come."""

    accepted: bool
    message: str = ""
    payment_hash: str = ""


def fund_hint(*, pubkey: str, node_pubkey: str | None, base_url: str) -> str:
    """How to top up a balance, for the `blocked:` answer."""
    node = f"node {node_pubkey}" if node_pubkey else "the forum's Lightning node"
    return (
        f"a keysend to {node} with the credit record ({CREDIT_RECORD}) naming your pubkey"
        f" (see {base_url}/how-to-post/#balance), or an invoice: POST {{pubkey, amount_sats}} to"
        f" {base_url}/api/balance/invoice; your balance: {base_url}/api/balance?pubkey={pubkey}"
    )


def balance_blocked(*, balance_msat: int, price_msat: int, fund: str) -> str:
    return (
        f"blocked: not enough balance: balance {balance_msat} msat, this costs {price_msat} msat;"
        f" top up by {fund}"
    )[:1000]


def _parent_unknown(parsed: nostr.Event, lookups: LiveLookups) -> bool:
    """A reply whose thread the forum has never heard of: a relay cannot hold the payment
    until it comes (a keysend reply waits for its thread; a balance is not charged for it)."""
    root, _ = verdict.reply_refs(parsed)
    if not root:
        return False
    known = lookups.event(root)
    if known is not None and known.state != Event.State.REJECTED:
        return False
    # Charged over the relay a moment ago and not judged yet: its spend row names it.
    return not LedgerEntry.objects.filter(
        event_id=root, reconcile_state=LedgerEntry.ReconcileState.PENDING
    ).exists()


def event_submit(parsed: nostr.Event, *, node_pubkey: str | None, base_url: str) -> Answer:
    """Refuse at once (nothing recorded) or charge the event to its author's balance."""
    lookups = LiveLookups()
    existing = lookups.event(parsed.id)
    if existing is not None and existing.state == Event.State.PUBLISHED:
        return Answer(True, DUPLICATE)  # NIP-01: a duplicate is OK true, and costs nothing
    balance = balance_of(parsed.pubkey).balance_msat
    decided = verdict.decide(
        parsed, paid_msat=balance, at=timezone.now(), settle_index=None, lookups=lookups
    )
    if decided.action == Action.REJECT:
        assert decided.finding is not None
        if decided.finding.reason == Reason.DUPLICATE:
            return Answer(True, DUPLICATE)
        context = {"event_id": parsed.id, **decided.finding.context}
        text = rejection_message(decided.finding.reason, **context)
        return Answer(False, f"{text} Nothing was charged.")
    price = decided.price_msat
    if decided.action == Action.TOPUP and decided.existing is not None:
        price = max(decided.existing.price_msat - decided.existing.paid_msat, 0)
    if balance < price or decided.action == Action.UNDERPAID:
        fund = fund_hint(pubkey=parsed.pubkey, node_pubkey=node_pubkey, base_url=base_url)
        return Answer(False, balance_blocked(balance_msat=balance, price_msat=price, fund=fund))
    if _parent_unknown(parsed, lookups):
        return Answer(
            False,
            "invalid: the thread this replies to is not on this forum; send the thread first"
            " (nothing was charged)",
        )
    try:
        entry = spend_record(parsed, node_pubkey=node_pubkey)
    except NoCursor:
        return Answer(False, "error: the forum's node has not started yet; try again later")
    return Answer(False, payment_hash=entry.payment_hash)


def spend_outcome(payment_hash: str) -> Answer | None:
    """The verdict on a charge as an `OK` answer; None while it waits for the reconciler."""
    row = (
        LedgerEntry.objects.filter(payment_hash=payment_hash)
        .values("pk", "event_id", "amount_msat", "reconcile_state")
        .first()
    )
    if row is None or row["reconcile_state"] != LedgerEntry.ReconcileState.DONE:
        return None
    rejection = Rejection.objects.filter(ledger_entry_id=row["pk"]).order_by("-pk").first()
    if rejection is not None:
        if rejection.reason == Reason.DUPLICATE:
            return Answer(True, DUPLICATE)
        return Answer(False, rejection.message)
    state, waiting = Event.objects.filter(event_id=row["event_id"]).values_list(
        "state", "waiting_for"
    ).first() or ("", "")
    if state == Event.State.PENDING and waiting == "parent":
        return Answer(
            True,
            f"accepted: charged {row['amount_msat']} msat; it is shown when the post it replies"
            " to arrives",
        )
    if state == Event.State.REJECTED:
        return Answer(False, "error: refused after it was charged; see the event's status")
    return Answer(True, "")


class EventBucket:
    """A token bucket: `rate` EVENTs a second, bursts of `burst`, per connection."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
