"""The resume cursor behind invoice_events (pure)."""

from __future__ import annotations

from lightning.client import _IndexCursor


def test_contiguous_watermark_with_out_of_order_indices() -> None:
    cursor = _IndexCursor(3)
    # An add backlog can carry settle indices out of order (current states).
    for index in (6, 4):
        cursor.add(index)
    assert cursor.resume_index() == 4  # 5 not seen yet: resume from 4
    assert cursor.seen(6) and not cursor.seen(5)
    cursor.add(5)
    assert cursor.resume_index() == 6


def test_zero_start_pins_to_first_seen() -> None:
    cursor = _IndexCursor(0)
    assert cursor.resume_index() == 0  # nothing seen: still "no backlog"
    cursor.add(10)
    cursor.add(11)
    assert cursor.resume_index() == 11
    assert cursor.seen(3)  # below the pinned watermark counts as seen


def test_lazy_set_is_bounded() -> None:
    cursor = _IndexCursor(0)
    for index in range(100, 100 + 3000, 2):  # gaps never close
        cursor.add(index)
    assert len(cursor._above) <= _IndexCursor._MAX_PENDING + 1
