"""Prices: a board's base price times its escalation factor per recent post by the same author.

price(author, board, t) = base x factor ^ n, where n counts the author's events on that board
that were *accepted* (valid and paid in full) with settle time in [t - window, t) and a settle
index below the one being priced. Counting by the ledger's settle order, not by publish time,
is what makes the verdict independent of which worker reconciles first: an accepted reply that
still waits for its thread counts, and a later hide or orphan expiry does not un-count it.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from forum import nostr
from forum.models import Board, Event

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


def escalate(*, base_msat: int, factor: int, count: int) -> int:
    price = base_msat
    for _ in range(count):
        price *= max(factor, 1)
        if price >= MAX_PRICE_MSAT:
            return MAX_PRICE_MSAT
    return price


def recent_accepted_count(
    *, board: Board, pubkey: str, at: datetime, settle_index: int | None
) -> int:
    """The author's accepted events on `board` in the window before `at` (and `settle_index`)."""
    if board.escalation_window_seconds <= 0:
        return 0
    rows = Event.objects.filter(
        pubkey=pubkey,
        board=board,
        accepted_at__gte=at - timedelta(seconds=board.escalation_window_seconds),
    )
    if settle_index is None:
        rows = rows.filter(accepted_at__lte=at)
    else:
        rows = rows.filter(accepted_settle_index__lt=settle_index)
    return rows.count()


def board_as_of(board: Board, at: datetime) -> Board:
    """`board` with the settings it had at `at` (an unsaved copy if a moderator changed them since).

    A price change applies to payments settled after it, even when reconciliation runs later
    (a queue backlog, a retry, a rebuild): the audit log's before-values say what held at `at`.
    """
    from forum.selectors.moderation import board_settings_at

    then = board_settings_at(board, at)
    if all(getattr(board, name) == value for name, value in then.items()):
        return board
    past = copy.copy(board)
    for name, value in then.items():
        setattr(past, name, value)
    return past


def price_for(
    *,
    board: Board,
    kind: int,
    pubkey: str,
    at: datetime | None = None,
    settle_index: int | None = None,
) -> Price:
    """What `pubkey` pays for a `kind` event on `board` settled at `at` (now: the quote)."""
    if at is None:
        at = timezone.now()
    else:
        board = board_as_of(board, at)
    count = recent_accepted_count(board=board, pubkey=pubkey, at=at, settle_index=settle_index)
    base = base_price_msat(board=board, kind=kind)
    return Price(
        price_msat=escalate(base_msat=base, factor=board.escalation_factor, count=count),
        base_msat=base,
        factor=board.escalation_factor,
        recent_posts=count,
        window_seconds=board.escalation_window_seconds,
    )
