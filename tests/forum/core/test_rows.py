"""The batch's row writer (`forum.ingest.rows`): COPY on PostgreSQL, bulk_create elsewhere,
and the `any` lookup. Each test runs on whichever database the suite uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from forum.ingest.rows import rows_insert, values_insert
from forum.models import Author, Board, Event, EventTag, Thread

pytestmark = pytest.mark.django_db

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _event(n: int, board: Board) -> Event:
    return Event(
        event_id=f"{n:064x}", pubkey="ab" * 32, kind=11, created_at=1, raw_json="{}", board=board
    )


def test_rows_get_their_ids_and_related_rows_name_them() -> None:
    board = Board.objects.create(slug="b", title="B")
    author = Author.objects.create(pubkey="cd" * 32, first_seen_at=AT)
    events = [_event(n, board) for n in range(3)]
    # Built before their events have ids, as a batch builds them.
    threads = [
        Thread(event=e, board=board, author=author, title=f"t{n}", content="c", settled_at=AT,
               last_activity_at=AT)
        for n, e in enumerate(events)
    ]  # fmt: skip
    rows_insert(Event, events)
    assert all(e.pk is not None for e in events)
    rows_insert(Thread, threads)
    stored = {t.event.event_id: t.title for t in Thread.objects.select_related("event")}
    assert stored == {f"{n:064x}": f"t{n}" for n in range(3)}
    # The cached related object is kept: no query to read it back.
    assert threads[0].event is events[0] and threads[0].event_id == events[0].pk


def test_ignore_conflicts_skips_rows_a_unique_constraint_refuses() -> None:
    Author.objects.create(pubkey="01" * 32, first_seen_at=AT)
    rows_insert(
        Author,
        [Author(pubkey="01" * 32, first_seen_at=AT), Author(pubkey="02" * 32, first_seen_at=AT)],
        ignore_conflicts=True,
    )
    assert sorted(Author.objects.values_list("pubkey", flat=True)) == ["01" * 32, "02" * 32]


def test_values_insert_writes_plain_rows() -> None:
    board = Board.objects.create(slug="b", title="B")
    event = _event(7, board)
    rows_insert(Event, [event])
    values_insert(EventTag, ("event_id", "key"), [(event.pk, "k1"), (event.pk, "k2")])
    assert sorted(EventTag.objects.filter(event=event).values_list("key", flat=True)) == [
        "k1",
        "k2",
    ]


def test_any_lookup_is_in() -> None:
    board = Board.objects.create(slug="b", title="B")
    events = [_event(n, board) for n in range(4)]
    rows_insert(Event, events)
    wanted = [events[1].event_id, events[3].event_id, "nope"]
    assert set(Event.objects.filter(event_id__any=wanted).values_list("pk", flat=True)) == {
        events[1].pk,
        events[3].pk,
    }
    assert not Event.objects.filter(event_id__any=[]).exists()
    assert Event.objects.filter(board_id__any=[board.pk]).count() == 4


def test_a_refused_row_raises_djangos_integrity_error() -> None:
    """Callers catch Django's errors (the ledger's racing writers, the batch's transient
    retry): COPY's must arrive as those, not as the driver's."""
    from django.db import IntegrityError, transaction

    Author.objects.create(pubkey="03" * 32, first_seen_at=AT)
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(Author, [Author(pubkey="03" * 32, first_seen_at=AT)])
