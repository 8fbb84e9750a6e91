"""Thread rankings: the "Hot" score and the "Top" periods (docs/community.md, "Ranking").

Hot is a pure function of a thread's totals and its age, written in a form that never needs a
periodic recomputation:

    hot = log2(1 + sats + REPLY_SATS x replies) + (published - EPOCH) / HALF_LIFE

Time enters as a term that grows with the thread's publish time, so every thread "decays" at
the same rate relative to newer ones: a thread published HALF_LIFE later needs half the weight
to rank level. The score of a thread therefore changes only when its weight changes (a reply
or a tip lands, a moderator hides a reply), which is when the publishing batch (or moderation)
calls `threads_hot_refresh`. Sorting by the stored column is an index scan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

# A reply counts as this many sats of interest beyond what it paid.
REPLY_SATS = 10
# Twelve hours newer doubles a thread's standing.
HALF_LIFE_SECONDS = 12 * 3600
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

# "Top" periods: threads published within the window, most sats first.
TOP_PERIODS: dict[str, timedelta | None] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "all": None,
}


def hot_score(*, sats_msat: int, replies: int, at: datetime) -> float:
    """The Hot rank of a thread with these totals, published (settled) at `at`."""
    weight = max(sats_msat, 0) / 1000 + REPLY_SATS * max(replies, 0)
    return math.log2(1 + weight) + (at - EPOCH).total_seconds() / HALF_LIFE_SECONDS


def threads_hot_refresh(pks: Iterable[int]) -> None:
    """Recompute the stored Hot rank of these threads from their totals now (two queries)."""
    from forum.models import Thread

    wanted = sorted(set(pks))
    if not wanted:
        return
    rows = list(
        Thread.objects.filter(pk__in=wanted).only("id", "sats_msat", "reply_count", "settled_at")
    )
    for row in rows:
        row.hot = hot_score(sats_msat=row.sats_msat, replies=row.reply_count, at=row.settled_at)
    Thread.objects.bulk_update(rows, ["hot"], batch_size=500)
