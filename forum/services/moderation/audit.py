"""The audit log: one append-only `ModerationAction` row per moderation change.

Every mutating moderation service calls `audit_record` inside its own transaction, so the row
exists if and only if the change does. Nothing updates or deletes these rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from forum.models import ModerationAction


def actor_name(actor: AbstractBaseUser | None) -> str:
    if actor is None:
        return "system"
    return actor.get_username() or f"user {actor.pk}"


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target_type: str,
    target_id: str | int,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> ModerationAction:
    return ModerationAction.objects.create(
        actor=actor,
        actor_name=actor_name(actor),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        reason=reason or "",
        details=details or {},
    )
