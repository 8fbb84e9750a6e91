"""Moderation services: every change a moderator can make, one module per verb.

Each mutation takes keyword-only arguments, is idempotent (returns whether it changed
anything), writes a `ModerationAction` in the same transaction, and broadcasts only after
commit. Permission checks (`forum.permissions.check_*`) are the caller's job, as in Zulip's
`check_*` / `do_*` split: services also run from commands and tests with no request.
"""

from forum.services.moderation.audit import audit_record
from forum.services.moderation.ban import author_ban, author_unban, normalize_pubkey
from forum.services.moderation.boards import board_create, board_update
from forum.services.moderation.hide import (
    author_hide_all,
    post_hide,
    post_unhide,
    thread_hide,
    thread_unhide,
)
from forum.services.moderation.lock import thread_lock, thread_unlock
from forum.services.moderation.pin import thread_pin, thread_unpin
from forum.services.moderation.refund import (
    RefundError,
    RefundFailed,
    RefundImpossible,
    refund_blocker,
    rejection_refund,
)

__all__ = [
    "RefundError",
    "RefundFailed",
    "RefundImpossible",
    "audit_record",
    "author_ban",
    "author_hide_all",
    "author_unban",
    "board_create",
    "board_update",
    "normalize_pubkey",
    "post_hide",
    "post_unhide",
    "refund_blocker",
    "rejection_refund",
    "thread_hide",
    "thread_lock",
    "thread_pin",
    "thread_unhide",
    "thread_unlock",
    "thread_unpin",
]
