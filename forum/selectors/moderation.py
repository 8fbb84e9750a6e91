"""Reads for the moderation console: the queue, search, authors, rejections, revenue, audit log.

Everything here is a read; pages call these and nothing else touches the ORM for the console.
Lists are bounded (limits or pagination) and fetch their related rows in the same query.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from forum import nostr, protocol
from forum.models import (
    Author,
    Ban,
    Board,
    Event,
    LedgerEntry,
    ModerationAction,
    Post,
    Rejection,
    Thread,
)

NO_BOARD = ""  # revenue of payments that name no board (donations, undecodable messages)


@dataclass(frozen=True)
class QueueFilters:
    board: str = ""  # slug
    pubkey: str = ""  # hex, full or a prefix
    reason: str = ""  # rejection reason code
    q: str = ""  # text search in titles and contents


def _pubkey_q(prefix: str, field_name: str) -> Q:
    prefix = prefix.strip().lower()
    if len(prefix) == 64:
        return Q(**{field_name: prefix})
    return Q(**{f"{field_name}__startswith": prefix})


def queue_threads(filters: QueueFilters, *, limit: int = 30) -> list[Thread]:
    """Newest threads across boards, hidden ones included (the console shows them marked)."""
    qs = Thread.objects.select_related("board", "author", "event").order_by("-published_at", "-id")
    if filters.board:
        qs = qs.filter(board__slug=filters.board)
    if filters.pubkey:
        qs = qs.filter(_pubkey_q(filters.pubkey, "author__pubkey"))
    if filters.q:
        qs = qs.filter(Q(title__icontains=filters.q) | Q(content__icontains=filters.q))
    return list(qs[:limit])


def queue_posts(filters: QueueFilters, *, limit: int = 50) -> list[Post]:
    """Newest replies across boards, hidden ones included."""
    qs = Post.objects.select_related(
        "board", "author", "event", "thread", "thread__event"
    ).order_by("-published_at", "-id")
    if filters.board:
        qs = qs.filter(board__slug=filters.board)
    if filters.pubkey:
        qs = qs.filter(_pubkey_q(filters.pubkey, "author__pubkey"))
    if filters.q:
        qs = qs.filter(content__icontains=filters.q)
    return list(qs[:limit])


class Charged(models.TextChoices):
    """Which rejected payments to list: the forum kept the sats, or hold mode turned them away."""

    KEPT = "yes", "kept (charged, refundable)"
    REFUSED = "no", "refused (cancelled, not charged)"


def rejections_list(
    filters: QueueFilters, *, refundable_only: bool = False, charged: str = ""
) -> QuerySet:
    """Rejected payments, newest first, with what the refund button needs.

    `charged`: `Charged.KEPT` lists only payments the forum settled and kept, `Charged.REFUSED`
    only the ones hold mode cancelled (the sender kept the sats), anything else both.
    """
    qs = Rejection.objects.select_related("board", "event", "refund_entry", "ledger_entry")
    if charged == Charged.KEPT:
        qs = qs.exclude(ledger_entry__status=LedgerEntry.Status.CANCELLED)
    elif charged == Charged.REFUSED:
        qs = qs.filter(ledger_entry__status=LedgerEntry.Status.CANCELLED)
    if filters.board:
        qs = qs.filter(board__slug=filters.board)
    if filters.pubkey:
        qs = qs.filter(_pubkey_q(filters.pubkey, "pubkey"))
    if filters.reason:
        qs = qs.filter(reason=filters.reason)
    if refundable_only:
        qs = qs.filter(
            refund_entry__isnull=True,
            resolved_at__isnull=True,
            amount_msat__gt=0,
            event__isnull=False,
        ).exclude(event__ln_node="")
    return qs.order_by("-created_at", "-id")


@dataclass(frozen=True)
class CarriedMessage:
    """What a rejected payment carried, read back from its records when no Event row says it
    (hold mode cancels before an Event row is made; undecodable payments never get one)."""

    what: str  # "event", "part", "topup", "tip", "none" (a plain keysend) or "undecodable"
    event_id: str = ""  # the event carried, or the one a part, top-up or tip names
    kind: int | None = None
    title: str = ""
    excerpt: str = ""
    ln_node: str = ""
    parts: str = ""  # "2 of 3 parts arrived", for a part whose set is incomplete
    error: str = ""  # why it could not be decoded or verified


@dataclass(frozen=True)
class RejectionRow:
    """One line of the rejected-payments table."""

    rejection: Rejection
    charged: bool  # False: hold mode cancelled it, the sender kept the sats
    carried: CarriedMessage | None  # None when the rejection has its Event row
    blocker: str  # why the refund button is not offered ("" when it is)


def _carried_event(event: nostr.Event) -> CarriedMessage:
    return CarriedMessage(
        what="event",
        event_id=event.id,
        kind=event.kind,
        title=event.tag_value("title") or "",
        excerpt=event.content[:140],
        ln_node=nostr.ln_node(event) or "",
    )


def _carried(entry: LedgerEntry | None, parts: dict[str, list[protocol.PartMessage]]):
    if entry is None:
        return CarriedMessage(what="undecodable", error="no payment recorded")
    try:
        message = protocol.decode_records(protocol.records_from_json(entry.custom_records or {}))
    except (protocol.ProtocolError, nostr.EventError) as exc:
        return CarriedMessage(what="undecodable", event_id=entry.event_id, error=exc.message)
    if message is None:
        return CarriedMessage(what="none")
    if isinstance(message, protocol.EventMessage):
        return _carried_event(message.event)
    if isinstance(message, protocol.TopUpMessage):
        return CarriedMessage(what="topup", event_id=message.event_id)
    if isinstance(message, protocol.TipMessage):
        return CarriedMessage(what="tip", event_id=message.event_id)
    if isinstance(message, protocol.CreditMessage):
        return CarriedMessage(what="credit")
    siblings = parts.get(message.event_id, [message])
    try:
        return _carried_event(protocol.join_parts(siblings))
    except (protocol.ProtocolError, nostr.EventError) as exc:
        arrived = len({part.index for part in siblings})
        return CarriedMessage(
            what="part",
            event_id=message.event_id,
            parts=f"{arrived} of {message.count} parts arrived",
            error="" if arrived < message.count else exc.message,
        )


def rejection_rows(
    rejections: Iterable[Rejection], *, blocker: Callable[[Rejection], str]
) -> list[RejectionRow]:
    """The table's rows: charged or not, and what each payment carried, decoded from its
    records when there is no Event row (the parts of a multipart set in one query)."""
    rejections = list(rejections)
    part_ids = {
        r.ledger_entry.event_id
        for r in rejections
        if r.event_id is None
        and r.ledger_entry is not None
        and r.ledger_entry.purpose == LedgerEntry.Purpose.PART
        and r.ledger_entry.event_id
    }
    parts: dict[str, list[protocol.PartMessage]] = defaultdict(list)
    if part_ids:
        rows = LedgerEntry.objects.filter(
            purpose=LedgerEntry.Purpose.PART, event_id__in=part_ids
        ).values_list("custom_records", flat=True)
        for records in rows:
            try:
                message = protocol.decode_records(protocol.records_from_json(records))
            except (protocol.ProtocolError, nostr.EventError):
                continue
            if isinstance(message, protocol.PartMessage):
                parts[message.event_id].append(message)
    result = []
    for rejection in rejections:
        entry = rejection.ledger_entry
        result.append(
            RejectionRow(
                rejection=rejection,
                charged=not (entry is not None and entry.status == LedgerEntry.Status.CANCELLED),
                carried=None if rejection.event_id is not None else _carried(entry, parts),
                blocker=blocker(rejection),
            )
        )
    return result


def console_counts(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The numbers on top of the moderation home."""
    now = now or timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    cancelled = Q(ledger_entry__status=LedgerEntry.Status.CANCELLED)
    rejections = Rejection.objects.aggregate(
        today=Count("id", filter=Q(created_at__gte=day_start) & ~cancelled),
        refused_today=Count("id", filter=Q(created_at__gte=day_start) & cancelled),
        refundable=Count(
            "id",
            filter=Q(refund_entry__isnull=True, resolved_at__isnull=True, amount_msat__gt=0)
            & Q(event__isnull=False)
            & ~Q(event__ln_node=""),
        ),
    )
    threads = Thread.objects.aggregate(
        hidden=Count("id", filter=Q(is_hidden=True)),
        locked=Count("id", filter=Q(is_locked=True)),
    )
    return {
        "rejections_today": rejections["today"],  # kept: the forum has the sats
        "refused_today": rejections["refused_today"],  # hold mode: cancelled, not charged
        "refundable_rejections": rejections["refundable"],
        "hidden_threads": threads["hidden"],
        "locked_threads": threads["locked"],
        "hidden_posts": Post.objects.filter(is_hidden=True).count(),
        "active_bans": Ban.objects.active(at=now).values("pubkey").distinct().count(),
    }


def boards_for_filter() -> list[Board]:
    return list(Board.objects.filter(destroyed_at__isnull=True).order_by("position", "slug"))


def boards_list() -> list[Board]:
    return list(Board.objects.order_by("position", "slug"))


def active_bans(*, now: dt.datetime | None = None) -> list[Ban]:
    return list(Ban.objects.active(at=now).select_related("created_by").order_by("-created_at"))


# --- authors -------------------------------------------------------------------------------


@dataclass
class AuthorOverview:
    pubkey: str
    author: Author | None
    threads: list[Thread]
    posts: list[Post]
    rejections: list[Rejection]
    payments: list[LedgerEntry]
    bans: list[Ban]
    active_ban: Ban | None
    paid_msat: int
    refunded_msat: int


def author_overview(pubkey: str, *, limit: int = 200) -> AuthorOverview:
    """Everything one pubkey posted and paid, for the author page of the console."""
    author = Author.objects.filter(pubkey=pubkey).first()
    threads = list(
        Thread.objects.filter(event__pubkey=pubkey)
        .select_related("board", "event")
        .order_by("-published_at")[:limit]
    )
    posts = list(
        Post.objects.filter(event__pubkey=pubkey)
        .select_related("board", "event", "thread", "thread__event")
        .order_by("-published_at")[:limit]
    )
    rejections = list(
        Rejection.objects.filter(pubkey=pubkey)
        .select_related("board", "event", "refund_entry", "ledger_entry")
        .order_by("-created_at")[:limit]
    )
    # Hold mode's cancelled attempts moved no money: they show as rejections, not payments.
    paid_rows = LedgerEntry.objects.filter(pubkey=pubkey, status=LedgerEntry.Status.SETTLED)
    payments = list(paid_rows.order_by("-settled_at")[:limit])
    sums = paid_rows.aggregate(
        paid=Sum("amount_msat", filter=Q(direction=LedgerEntry.Direction.IN)),
        refunded=Sum(
            "amount_msat",
            filter=Q(direction=LedgerEntry.Direction.OUT, purpose=LedgerEntry.Purpose.REFUND),
        ),
    )
    bans = list(
        Ban.objects.filter(pubkey=pubkey).select_related("created_by").order_by("-created_at")
    )
    active = Ban.objects.active().filter(pubkey=pubkey).order_by("-created_at").first()
    return AuthorOverview(
        pubkey=pubkey,
        author=author,
        threads=threads,
        posts=posts,
        rejections=rejections,
        payments=payments,
        bans=bans,
        active_ban=active,
        paid_msat=sums["paid"] or 0,
        refunded_msat=sums["refunded"] or 0,
    )


# --- revenue -------------------------------------------------------------------------------


@dataclass
class RevenueRow:
    """Money in and out for one day or one board. Net = received - refunded - forwarded - fees."""

    key: Any  # a date, or a board slug ("" for no board)
    received_msat: int = 0
    # Credits fund relay balances: money in, but revenue only when spent (a `spend` row on the
    # board of the event it paid); credited - spent is what the balances still hold.
    credited_msat: int = 0
    refunded_msat: int = 0
    forwarded_msat: int = 0
    fees_msat: int = 0

    @property
    def net_msat(self) -> int:
        return self.received_msat - self.refunded_msat - self.forwarded_msat - self.fees_msat

    def add(self, direction: str, purpose: str, amount: int, fee: int) -> None:
        if purpose == LedgerEntry.Purpose.CREDIT:
            self.credited_msat += amount
        elif direction == LedgerEntry.Direction.IN:
            self.received_msat += amount
        elif purpose == LedgerEntry.Purpose.REFUND:
            self.refunded_msat += amount
            self.fees_msat += fee
        elif purpose == LedgerEntry.Purpose.TIP_FORWARD:
            self.forwarded_msat += amount
            self.fees_msat += fee
        else:
            # Any other outgoing payment is still money that left the forum.
            self.forwarded_msat += amount
            self.fees_msat += fee


@dataclass
class Revenue:
    start: dt.date
    end: dt.date  # inclusive
    days: list[RevenueRow] = field(default_factory=list)  # every day, oldest first, zeros kept
    boards: list[RevenueRow] = field(default_factory=list)  # by net, largest first
    total: RevenueRow = field(default_factory=lambda: RevenueRow(key="total"))


def _board_slug_of_entry() -> Subquery:
    # Ledger rows name their event by id (no FK: the event may arrive later, in parts).
    return Subquery(Event.objects.filter(event_id=OuterRef("event_id")).values("board__slug")[:1])


def revenue(*, start: dt.date, end: dt.date, board: str = "") -> Revenue:
    """Revenue per day and per board between `start` and `end` (UTC days, inclusive).

    A refund or tip forward counts on the day it was sent, against the board of the event it
    refers to; its routing fee counts as money out too.
    """
    since = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    qs = (
        # Cancelled attempts (hold mode) were never charged: not revenue.
        LedgerEntry.objects.filter(
            settled_at__gte=since, settled_at__lt=until, status=LedgerEntry.Status.SETTLED
        )
        .annotate(day=TruncDate("settled_at", tzinfo=dt.UTC), board_slug=_board_slug_of_entry())
        .values("day", "board_slug", "direction", "purpose")
        .annotate(amount=Sum("amount_msat"), fee=Sum("fee_msat"))
        .order_by()
    )
    if board:
        qs = qs.filter(board_slug=board)
    by_day: dict[dt.date, RevenueRow] = {}
    day = start
    while day <= end:
        by_day[day] = RevenueRow(key=day)
        day += dt.timedelta(days=1)
    by_board: dict[str, RevenueRow] = defaultdict(lambda: RevenueRow(key=""))
    result = Revenue(start=start, end=end)
    for row in qs:
        args = (row["direction"], row["purpose"], row["amount"] or 0, row["fee"] or 0)
        row_day = row["day"]
        if isinstance(row_day, dt.datetime):
            row_day = row_day.date()
        by_day.setdefault(row_day, RevenueRow(key=row_day)).add(*args)
        slug = row["board_slug"] or NO_BOARD
        by_board[slug].key = slug
        by_board[slug].add(*args)
        result.total.add(*args)
    result.days = [by_day[d] for d in sorted(by_day)]
    result.boards = sorted(by_board.values(), key=lambda r: (-r.net_msat, r.key))
    return result


def revenue_today(*, now: dt.datetime | None = None) -> RevenueRow:
    today = (now or timezone.now()).astimezone(dt.UTC).date()
    return revenue(start=today, end=today).total


# --- audit log -----------------------------------------------------------------------------


def audit_log(*, action: str = "", actor: str = "", target: str = "") -> QuerySet:
    """Every moderation action, newest first (paginated by the view)."""
    qs = ModerationAction.objects.all().order_by("-created_at", "-id")
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_name=actor)
    if target:
        qs = qs.filter(target_id__startswith=target)
    return qs


def audit_actions() -> list[str]:
    return list(
        ModerationAction.objects.order_by("action").values_list("action", flat=True).distinct()
    )
