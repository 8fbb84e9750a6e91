"""Lock and unlock threads: replies settled while a thread is locked are rejected `thread_locked`.

The forum core reads `Thread.is_locked` when it reconciles a reply; this module only flips the
flag (under a row lock), audits it and tells open pages.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from forum.models import Thread
from forum.services.moderation.audit import audit_record
from forum.services.moderation.hide import _broadcast_thread_updated


def thread_set_flag(
    *,
    actor: AbstractBaseUser | None,
    thread: Thread,
    flag: str,
    value: bool,
    action: str,
    reason: str = "",
) -> bool:
    """Set one boolean thread flag idempotently, with an audit row and a broadcast on commit."""
    with transaction.atomic():
        locked = (
            Thread.objects.select_for_update(of=("self",))
            .select_related("event", "board")
            .get(pk=thread.pk)
        )
        if getattr(locked, flag) == value:
            return False
        setattr(locked, flag, value)
        locked.save(update_fields=[flag])
        audit_record(
            actor=actor,
            action=action,
            target_type="thread",
            target_id=locked.event.event_id,
            reason=reason,
            details={"title": locked.title, "board": locked.board.slug},
        )
        _broadcast_thread_updated(locked)
        setattr(thread, flag, value)
        return True


def thread_lock(*, actor: AbstractBaseUser | None, thread: Thread, reason: str = "") -> bool:
    """Lock a thread. Returns False if it was already locked."""
    return thread_set_flag(
        actor=actor,
        thread=thread,
        flag="is_locked",
        value=True,
        action="thread.lock",
        reason=reason,
    )


def thread_unlock(*, actor: AbstractBaseUser | None, thread: Thread, reason: str = "") -> bool:
    """Unlock a thread. Returns False if it was not locked."""
    return thread_set_flag(
        actor=actor,
        thread=thread,
        flag="is_locked",
        value=False,
        action="thread.unlock",
        reason=reason,
    )
