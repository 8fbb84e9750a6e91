"""Create boards and change their settings (prices, escalation, size limit).

The quote API and reconciliation read `Board` rows live, so a change applies to payments that
settle after it commits. Every change is audited with the values before and after, which also
makes the audit log a price history (`forum.ingest.lookups.board_settings_at`).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from forum.models import BOARD_EDITABLE_FIELDS, Board
from forum.services.moderation.audit import audit_record
from forum.services.versions import versions_bump, versions_bump_all

EDITABLE_FIELDS = BOARD_EDITABLE_FIELDS


def _validate(values: dict[str, Any]) -> None:
    for name in ("thread_price_msat", "reply_price_msat"):
        if name in values and values[name] < 1:
            # A keysend must carry at least 1 msat; a free board would be an open spam door.
            raise ValidationError({name: "A price must be at least 1 msat."})
    if values.get("escalation_factor", 1) < 1:
        raise ValidationError({"escalation_factor": "The factor must be at least 1."})
    if "max_content_length" in values and values["max_content_length"] < 1:
        raise ValidationError({"max_content_length": "Allow at least one character."})


def board_create(
    *, actor: AbstractBaseUser | None, slug: str, title: str, reason: str = "", **values: Any
) -> Board:
    """Create a board with `slug`, `title` and any of `EDITABLE_FIELDS`; audited."""
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    _validate(values)
    with transaction.atomic():
        if Board.objects.filter(slug=slug).exists():
            raise ValidationError({"slug": "A board with this slug exists."})
        board = Board(slug=slug, title=title, **values)
        board.full_clean()
        board.save()
        audit_record(
            actor=actor,
            action="board.create",
            target_type="board",
            target_id=board.slug,
            reason=reason,
            details={"after": {name: getattr(board, name) for name in EDITABLE_FIELDS}},
        )
        versions_bump(board=board.slug)
    return board


def board_update(
    *, actor: AbstractBaseUser | None, board: Board, reason: str = "", **values: Any
) -> bool:
    """Change some of `EDITABLE_FIELDS`. Returns False if nothing differs from what is stored."""
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    _validate(values)
    with transaction.atomic():
        locked = Board.objects.select_for_update().get(pk=board.pk)
        before = {
            name: getattr(locked, name) for name in values if getattr(locked, name) != values[name]
        }
        if not before:
            return False
        after = {name: values[name] for name in before}
        for name, value in after.items():
            setattr(locked, name, value)
        locked.full_clean()
        locked.save(update_fields=[*after, "updated_at"])
        audit_record(
            actor=actor,
            action="board.update",
            target_type="board",
            target_id=locked.slug,
            reason=reason,
            details={"before": before, "after": after},
        )
        versions_bump_all()  # titles and prices show on every page of the board, and home
    for name, value in after.items():
        setattr(board, name, value)
    return True
