"""Prices: a board's base price times its escalation factor per recent post by the same author.

price(author, board, t) = base x factor ^ n, where n counts the author's events on that board
that were *accepted* (valid and paid in full) with settle time in [t - window, t) and a settle
index below the one being priced. Counting by the ledger's settle order, not by publish time,
is what makes the verdict independent of which worker reconciles first: an accepted reply that
still waits for its thread counts, and a later hide or orphan expiry does not un-count it.
The board's settings are those in force at t (a price change applies to payments settled after
it, even when reconciled later).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from forum import nostr
from forum.ingest.lookups import LiveLookups, Lookups
from forum.models import Board

# 21 million BTC in msat: nothing costs more, and the integer stays inside a BigIntegerField.
MAX_PRICE_MSAT = 21_000_000 * 100_000_000 * 1000


@dataclass(frozen=True)
class Price:
    price_msat: int
    base_msat: int
    factor: int
    recent_posts: int
    window_seconds: int

    @property
    def price_sats(self) -> int:
        """Whole sats to send (rounded up: a keysend amount in sats must cover the msat)."""
        return -(-self.price_msat // 1000)

    def as_dict(self) -> dict:
        return {**asdict(self), "price_sats": self.price_sats}


def base_price_msat(*, board: Board, kind: int) -> int:
    return board.thread_price_msat if kind == nostr.KIND_THREAD else board.reply_price_msat


def side_price_msat(
    *, kind: int, at: datetime | None = None, lookups: Lookups | None = None
) -> int:
    """The board-independent price of a profile (0), deletion (5) or edit (1010) at `at`:
    the console's site settings then in force, never escalated."""
    lookups = lookups or LiveLookups()
    site = lookups.site_as_of(at or timezone.now())
    if kind == nostr.KIND_PROFILE:
        return site.profile_price_msat
    if kind == nostr.KIND_DELETION:
        return site.deletion_price_msat
    return site.edit_price_msat


def escalate(*, base_msat: int, factor: int, count: int) -> int:
    price = base_msat
    for _ in range(count):
        price *= max(factor, 1)
        if price >= MAX_PRICE_MSAT:
            return MAX_PRICE_MSAT
    return price


def recent_accepted_count(
    *, board: Board, pubkey: str, at: datetime, settle_index: int | None, lookups: Lookups
) -> int:
    """The author's accepted events on `board` in the window before `at` (and `settle_index`)."""
    if board.escalation_window_seconds <= 0 or board.pk is None:
        return 0
    since = at - timedelta(seconds=board.escalation_window_seconds)
    count = 0
    for accepted_at, accepted_index in lookups.accepted_times(pubkey, board.pk, since):
        if accepted_at < since:
            continue
        if settle_index is None or accepted_index is None:
            count += accepted_at <= at
        else:
            # Equal only for relay charges (forum/ingest/spend.py), which share the index of
            # the last payment recorded before them and sort after it: anything accepted at
            # that index was judged before this one (keysend indices are unique).
            count += accepted_index <= settle_index
    return count


def price_for(
    *,
    board: Board,
    kind: int,
    pubkey: str,
    at: datetime | None = None,
    settle_index: int | None = None,
    lookups: Lookups | None = None,
) -> Price:
    """What `pubkey` pays for a `kind` event on `board` settled at `at` (now: the quote)."""
    lookups = lookups or LiveLookups()
    if at is None:
        at = timezone.now()
    else:
        board = lookups.board_as_of(board, at)
    count = recent_accepted_count(
        board=board, pubkey=pubkey, at=at, settle_index=settle_index, lookups=lookups
    )
    base = base_price_msat(board=board, kind=kind)
    return Price(
        price_msat=escalate(base_msat=base, factor=board.escalation_factor, count=count),
        base_msat=base,
        factor=board.escalation_factor,
        recent_posts=count,
        window_seconds=board.escalation_window_seconds,
    )
