"""What a pipeline stage did, for its caller to act on after commit (stages never enqueue)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# One realtime message: (group, {"type": ..., "payload": ...}).
Message = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class StatusNote:
    """A composer's status to send: for `keys` (payment hashes and event ids).

    With `payload` it is sent as is (built from what the batch just did); without it, each
    key's status is read back after commit (rare outcomes: garbage, unknown targets).
    """

    keys: tuple[str, ...]
    event_id: str = ""
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class Recorded:
    """The ledger stage: settled invoices written (new rows only) in one transaction."""

    payment_hashes: tuple[str, ...] = ()
    statuses: tuple[StatusNote, ...] = ()
    messages: tuple[Message, ...] = ()

    @property
    def created(self) -> int:
        return len(self.payment_hashes)


@dataclass(frozen=True)
class Reconciled:
    """The reconcile stage: one batch of ledger rows judged and written."""

    rows: int = 0
    published: tuple[str, ...] = ()
    rejected: int = 0
    errors: int = 0
    statuses: tuple[StatusNote, ...] = ()
    messages: tuple[Message, ...] = ()
    tip_forwards: tuple[str, ...] = ()  # tips whose forward was planned: send them
    # Public pages whose content changed (board slugs, thread event ids): bump their versions.
    boards_changed: tuple[str, ...] = ()
    threads_changed: tuple[str, ...] = ()
    more: bool = False  # pending rows remain: run another batch
    extra: dict[str, Any] = field(default_factory=dict)
