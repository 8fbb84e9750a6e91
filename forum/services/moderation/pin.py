"""Pin and unpin threads: pinned threads are listed first on their board."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from forum.models import Thread
from forum.services.moderation.lock import thread_set_flag


def thread_pin(*, actor: AbstractBaseUser | None, thread: Thread, reason: str = "") -> bool:
    """Pin a thread. Returns False if it was already pinned."""
    return thread_set_flag(
        actor=actor, thread=thread, flag="is_pinned", value=True, action="thread.pin", reason=reason
    )


def thread_unpin(*, actor: AbstractBaseUser | None, thread: Thread, reason: str = "") -> bool:
    """Unpin a thread. Returns False if it was not pinned."""
    return thread_set_flag(
        actor=actor,
        thread=thread,
        flag="is_pinned",
        value=False,
        action="thread.unpin",
        reason=reason,
    )
