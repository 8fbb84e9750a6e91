"""Board settings: created and changed through audited, idempotent services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from forum.ingest.lookups import LiveLookups
from forum.models import Board, ModerationAction
from forum.services import moderation

pytestmark = pytest.mark.django_db


def test_board_create_and_update(moderator):
    board = moderation.board_create(
        actor=moderator, slug="market", title="Market", thread_price_msat=50_000
    )
    assert Board.objects.get(slug="market").thread_price_msat == 50_000
    with pytest.raises(ValidationError):
        moderation.board_create(actor=moderator, slug="market", title="Again")

    assert moderation.board_update(actor=moderator, board=board, thread_price_msat=50_000) is False
    assert moderation.board_update(
        actor=moderator, board=board, thread_price_msat=80_000, escalation_factor=3, reason="spam"
    )
    fresh = Board.objects.get(pk=board.pk)
    assert (fresh.thread_price_msat, fresh.escalation_factor) == (80_000, 3)
    update = ModerationAction.objects.get(action="board.update")
    assert update.details == {
        "before": {"thread_price_msat": 50_000, "escalation_factor": 2},
        "after": {"thread_price_msat": 80_000, "escalation_factor": 3},
    }
    assert ModerationAction.objects.count() == 2


@pytest.mark.parametrize(
    "bad", [{"thread_price_msat": 0}, {"reply_price_msat": -5}, {"escalation_factor": 0}]
)
def test_board_update_validates(moderator, bad):
    board = moderation.board_create(actor=moderator, slug="b", title="B")
    with pytest.raises(ValidationError):
        moderation.board_update(actor=moderator, board=board, **bad)
    assert ModerationAction.objects.count() == 1


def test_board_update_refuses_unknown_fields(moderator):
    board = moderation.board_create(actor=moderator, slug="b", title="B")
    with pytest.raises(TypeError):
        moderation.board_update(actor=moderator, board=board, thread_count=5)


def test_settings_at_a_past_time_come_from_the_audit_log(moderator):
    board = moderation.board_create(actor=moderator, slug="b", title="B", reply_price_msat=1_000)
    t0 = timezone.now()
    ModerationAction.objects.update(created_at=t0 - dt.timedelta(hours=1))
    moderation.board_update(actor=moderator, board=board, reply_price_msat=2_000)
    ModerationAction.objects.filter(action="board.update").update(created_at=t0)
    moderation.board_update(actor=moderator, board=board, reply_price_msat=3_000)
    assert LiveLookups().board_as_of(board, t0 - dt.timedelta(minutes=1)).reply_price_msat == 1_000
    assert (
        LiveLookups().board_as_of(board, t0 + dt.timedelta(microseconds=1)).reply_price_msat
        == 2_000
    )
    assert LiveLookups().board_as_of(board, timezone.now()).reply_price_msat == 3_000
