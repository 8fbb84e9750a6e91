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
    """Recompute the stored Hot rank of these threads from their totals now (two queries:
    the totals, then one UPDATE from the new ranks; `bulk_update`'s CASE per row cost a
    publishing batch more than all its inserts)."""
    from django.db import connection

    from forum.models import Thread

    wanted = sorted(set(pks))
    if not wanted:
        return
    table = connection.ops.quote_name(Thread._meta.db_table)
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:  # the ids as one array: a thousand placeholders cost more to quote
            cursor.execute(
                f"SELECT id, sats_msat, reply_count, settled_at FROM {table} WHERE id = ANY(%s)",
                [wanted],
            )
            totals = cursor.fetchall()
        else:
            totals = list(
                Thread.objects.filter(pk__in=wanted).values_list(
                    "id", "sats_msat", "reply_count", "settled_at"
                )
            )
        ids = [pk for pk, *_ in totals]
        ranks = [
            hot_score(sats_msat=sats_msat, replies=replies, at=at)
            for _, sats_msat, replies, at in totals
        ]
        if not ids:
            return
        if postgres:
            source = "unnest(%s::bigint[], %s::double precision[]) AS v(id, hot)"
            values: list[object] = [ids, ranks]
        else:
            # VALUES names its columns column1, column2 on SQLite.
            rows = ", ".join("(%s, %s)" for _ in ids)
            source = f"(SELECT column1 AS id, column2 AS hot FROM (VALUES {rows}) AS x) AS v"
            values = [value for pair in zip(ids, ranks, strict=True) for value in pair]
        cursor.execute(
            f"UPDATE {table} SET hot = v.hot FROM {source} WHERE {table}.id = v.id", values
        )
