"""Reads about tip forwards for the moderation console (`/mod/tips/`)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, Sum

from forum.models import TipForward

State = TipForward.State


@dataclass(frozen=True)
class TipForwardSummary:
    """Counts and sums by state, plus the rows a moderator should look at first."""

    pending: int
    sent: int
    failed: int
    forwarded_msat: int
    troubled: list[TipForward]  # failed, or pending after at least one failed attempt
    recent: list[TipForward]  # the latest forwards of any state


def tip_forwards_summary(*, limit: int = 50) -> TipForwardSummary:
    """Three queries: the aggregate, the troubled rows, the recent rows (with their tips)."""
    totals = TipForward.objects.aggregate(
        pending=Count("pk", filter=Q(state=State.PENDING)),
        sent=Count("pk", filter=Q(state=State.SENT)),
        failed=Count("pk", filter=Q(state=State.FAILED)),
        forwarded=Sum("amount_msat", filter=Q(state=State.SENT)),
    )
    rows = TipForward.objects.select_related("tip_entry", "forward_entry")
    troubled = rows.filter(Q(state=State.FAILED) | Q(state=State.PENDING, attempts__gt=0))
    return TipForwardSummary(
        pending=totals["pending"],
        sent=totals["sent"],
        failed=totals["failed"],
        forwarded_msat=totals["forwarded"] or 0,
        troubled=list(troubled.order_by("-state", "next_attempt_at", "-pk")[:limit]),
        recent=list(rows.order_by("-created_at", "-pk")[:limit]),
    )
