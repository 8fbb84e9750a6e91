"""Who may do what: `check_*` functions that raise `PermissionDenied`, plus the predicates.

The moderation console is for staff and for members of the "moderator" group. Superusers are
staff. A per-board moderator role is not modelled: every moderator moderates every board.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

MODERATOR_GROUP = "moderator"

User = AbstractBaseUser | AnonymousUser


def is_moderator(user: User | None) -> bool:
    """Staff, superusers and members of the "moderator" group, if active and signed in."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    # Cached on the user object: a console page asks several times per request.
    cached = getattr(user, "_is_forum_moderator", None)
    if cached is None:
        cached = user.groups.filter(name=MODERATOR_GROUP).exists()
        user._is_forum_moderator = cached
    return cached


def check_moderator(user: User | None) -> None:
    """Anything in the console: viewing queues, the audit log, revenue."""
    if not is_moderator(user):
        raise PermissionDenied("Moderators only.")


def check_can_moderate_content(user: User | None) -> None:
    """Hide/unhide posts and threads, lock/unlock and pin/unpin threads."""
    check_moderator(user)


def check_can_ban(user: User | None) -> None:
    """Ban and unban pubkeys."""
    check_moderator(user)


def check_can_edit_boards(user: User | None) -> None:
    """Create boards and change their prices and limits: this is money, so staff-level too."""
    check_moderator(user)


def check_can_refund(user: User | None) -> None:
    """Send sats back for a rejected payment."""
    check_moderator(user)
