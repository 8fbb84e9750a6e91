"""What the verdict may know about the forum: one interface, read live or prefetched per batch.

`verdict.decide` asks these questions and nothing else, so the hold reviewer (live reads, with
its own approvals not yet recorded counted as taken) and the batch reconciler (everything a
batch needs read in a handful of queries, then updated in memory as the batch goes) reach the
same verdict for the same message by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from forum.models import (
    BOARD_EDITABLE_FIELDS,
    Ban,
    Board,
    Event,
    ModerationAction,
    Post,
    SiteSettings,
    Thread,
)


class Lookups(Protocol):
    """The forum's state as the verdict sees it; event ids and pubkeys are lowercase hex."""

    def board(self, slug: str) -> Board | None:
        """The board with this slug, destroyed rooms included (callers check `destroyed_at`)."""

    def board_as_of(self, board: Board, at: datetime) -> Board:
        """`board` with the settings it had at `at` (prices follow settle time)."""

    def event(self, event_id: str) -> Event | None:
        """The forum's row for this event, whatever its state."""

    def thread(self, event_id: str) -> Thread | None:
        """The published thread opened by this event."""

    def post(self, event_id: str) -> Post | None:
        """The published reply of this event."""

    def active_ban(self, pubkey: str, at: datetime) -> Ban | None:
        """The newest ban of `pubkey` in force at `at`."""

    def accepted_times(
        self, pubkey: str, board_id: int, since: datetime
    ) -> Iterable[tuple[datetime, int | None]]:
        """(accepted_at, accepted_settle_index) of the author's events on the board accepted
        at or after `since` (escalation counts them)."""

    def site_as_of(self, at: datetime) -> SiteSettings:
        """The board-independent prices (profiles, deletions, edits) in force at `at`."""


def board_settings_at(board: Board, later_changes: Iterable[ModerationAction]) -> Board:
    """`board` with each change after the moment undone (newest first): the audit log's
    before-values of the first change after a moment are the values at that moment."""
    values = {name: getattr(board, name) for name in BOARD_EDITABLE_FIELDS}
    for change in sorted(later_changes, key=lambda c: (c.created_at, c.pk), reverse=True):
        values.update(change.details.get("before", {}))
    if all(getattr(board, name) == value for name, value in values.items()):
        return board
    past = Board(**{f.attname: getattr(board, f.attname) for f in Board._meta.concrete_fields})
    for name, value in values.items():
        setattr(past, name, value)
    return past


def site_settings_at(site: SiteSettings, later_changes: Iterable[ModerationAction]) -> SiteSettings:
    """`site` as it was before `later_changes` (the audit log's before-values, newest first)."""
    later = sorted(later_changes, key=lambda c: (c.created_at, c.pk), reverse=True)
    if not later:
        return site
    past = SiteSettings(**{f.attname: getattr(site, f.attname) for f in site._meta.concrete_fields})
    for change in later:
        for name, value in change.details.get("before", {}).items():
            if name in SiteSettings.EDITABLE_FIELDS:
                setattr(past, name, value)
    return past


def site_changes_after(at: datetime) -> list[ModerationAction]:
    return list(ModerationAction.objects.filter(action="site.update", created_at__gt=at))


def board_changes_after(slugs: Iterable[str], at: datetime) -> list[ModerationAction]:
    return list(
        ModerationAction.objects.filter(
            action="board.update", target_type="board", target_id__in=list(slugs), created_at__gt=at
        )
    )


class LiveLookups:
    """Each question is one small query: for the hold reviewer, quotes and one-off checks."""

    def board(self, slug: str) -> Board | None:
        return Board.objects.filter(slug=slug).first() if slug else None

    def board_as_of(self, board: Board, at: datetime) -> Board:
        return board_settings_at(board, board_changes_after([board.slug], at))

    def event(self, event_id: str) -> Event | None:
        return Event.objects.select_related("board").filter(event_id=event_id).first()

    def thread(self, event_id: str) -> Thread | None:
        return Thread.objects.select_related("event").filter(event__event_id=event_id).first()

    def post(self, event_id: str) -> Post | None:
        return (
            Post.objects.select_related("event", "thread").filter(event__event_id=event_id).first()
        )

    def active_ban(self, pubkey: str, at: datetime) -> Ban | None:
        return Ban.objects.active(at=at).filter(pubkey=pubkey).order_by("-created_at").first()

    def accepted_times(
        self, pubkey: str, board_id: int, since: datetime
    ) -> list[tuple[datetime, int | None]]:
        return list(
            Event.objects.filter(
                pubkey=pubkey, board_id=board_id, accepted_at__gte=since
            ).values_list("accepted_at", "accepted_settle_index")
        )

    def site_as_of(self, at: datetime) -> SiteSettings:
        return site_settings_at(SiteSettings.current(), site_changes_after(at))
