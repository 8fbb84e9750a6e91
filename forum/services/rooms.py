"""Private rooms that self-destruct: renting one by keysend, the password, and destruction.

A room is a `Board` with `is_listed=False`, a `password_verifier` and an `expires_at`. Anyone
rents one by paying a room-create event (kind `KIND_ROOM_CREATE`, see docs/protocol.md) of at
least `ROOM_PRICE_SATS`; reconciliation (`forum.ingest`, the room-create spec in `forum.ingest.rooms`) judges that
event like any post, and it ends like any post: published (the room exists from the payment's settle time for its
lifetime), waiting for a top-up (underpaid), or rejected (`malformed` for a bad name, verifier,
lifetime or a slug already taken; `banned`).

The password never reaches the forum when the room is made: the event carries a salted scrypt
verifier (`scrypt$N$r$p$salt$hash`, computed by the client), and `verifier_check` compares a
password typed on the room's page against it with `hashlib.scrypt` and a constant-time compare.

At expiry `room_destroy` deletes everything the room held — threads, posts, events, parts,
rejections, audit details, the room's name and description — and strips its ledger rows down to
amount and payment hash (records, author and event id cleared): revenue still adds up, nothing
of the content remains. The board row stays as a tombstone (slug, `destroyed_at`) so its URL can
say the room self-destructed, and so the slug is never handed out again.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from forum import nostr
from forum.ingest.rooms import (  # noqa: F401 (re-exported: the room API in one place)
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MIN_LIFETIME_SECONDS,
    SCRYPT_MAX_MEMORY_BYTES,
    SCRYPT_MAX_WORK,
    RoomSpec,
    default_lifetime,
    max_lifetime,
    price_msat,
    room_slug_taken,
    room_spec,
    verifier_cost_check,
)
from forum.models import (
    Author,
    Board,
    Event,
    LedgerEntry,
    MessagePart,
    ModerationAction,
    Post,
    Rejection,
    Thread,
    TipForward,
)
from forum.room_events import (  # noqa: F401 (re-exported: the room API in one place)
    KIND_ROOM_CREATE,
    SLUG_RE,
    Verifier,
    VerifierError,
    room_event,
    verifier_check,
    verifier_make,
    verifier_parse,
)
from forum.selectors.rooms import room_expired as is_expired  # noqa: F401 (the room API)
from forum.services.moderation import throttle

log = logging.getLogger(__name__)

Reason = Rejection.Reason

# --- reading rooms ------------------------------------------------------------------------------


def is_room(board: Board) -> bool:
    """Rooms are the boards with a password (a destroyed room keeps neither)."""
    return bool(board.password_verifier) or board.expires_at is not None


# --- destruction --------------------------------------------------------------------------------


def room_destroy(*, slug: str, now: datetime | None = None) -> bool:
    """Delete the room's content and keep a tombstone; False if there was nothing to destroy.

    Locking contract: the board row is locked for the whole deletion; reconciliation finds the
    board gone (`destroyed_at` set) for anything that settles after, and rejects it as
    `unknown_board` like any post to a board that does not exist.
    """
    now = now or timezone.now()
    with transaction.atomic():
        board = Board.objects.select_for_update().filter(slug=slug).first()
        if board is None or board.destroyed_at is not None or not is_room(board):
            return False
        counts = _purge(board, Event.objects.filter(board=board))
        Board.objects.filter(pk=board.pk).update(
            title="",
            description="",
            password_verifier="",
            thread_count=0,
            post_count=0,
            last_activity_at=None,
            destroyed_at=now,
        )
    log.info("room %s destroyed: %s", slug, counts)
    return True


def _purge(board: Board, events) -> dict[str, int]:
    """Delete `events` (an Event queryset) of `board` and everything about them; strip the
    ledger rows that paid for them. The caller holds the board's row lock."""
    event_ids = events.values("event_id")
    rejections = Rejection.objects.filter(
        Q(board=board) | Q(event__in=events) | Q(event_ref__in=event_ids)
    )
    parts = MessagePart.objects.filter(event_id__in=event_ids)
    forwards = TipForward.objects.filter(tip_entry__event_id__in=event_ids)
    ledger_rows = LedgerEntry.objects.filter(
        Q(event_id__in=event_ids)
        | Q(pk__in=rejections.exclude(ledger_entry=None).values("ledger_entry"))
        | Q(pk__in=parts.values("ledger_entry"))
        | Q(pk__in=forwards.exclude(forward_entry=None).values("forward_entry"))
    )
    # Money stays on record (amount, hash, times); what it paid for does not.
    stripped = ledger_rows.update(custom_records={}, pubkey="", event_id="", reconcile_error="")
    _audit_scrub(board)
    _authors_uncount(board)
    counts = {
        "ledger_rows_stripped": stripped,
        "rejections": rejections.delete()[0],
        "parts": parts.delete()[0],
        # Posts before threads before events: each delete is then a plain one.
        "posts": Post.objects.filter(board=board).delete()[0],
        "threads": Thread.objects.filter(board=board).delete()[0],
    }
    pubkeys = set(events.values_list("pubkey", flat=True))
    counts["events"] = events.delete()[0]
    _authors_forget(pubkeys)
    return counts


def rooms_scrub_destroyed() -> int:
    """After `rebuild_from_node`: the node still holds a destroyed room's payments, and their
    replay leaves its messages behind as rejected events (`unknown_board`, or the room-create
    event finding its slug taken). Purge them again; returns how many events went."""
    purged = 0
    for slug in Board.objects.filter(destroyed_at__isnull=False).values_list("slug", flat=True):
        with transaction.atomic():
            board = Board.objects.select_for_update().get(slug=slug)
            pks = _leftover_event_pks(slug)
            if pks:
                purged += _purge(board, Event.objects.filter(pk__in=pks))["events"]
    return purged


def _leftover_event_pks(slug: str) -> list[int]:
    """Events outside any board that name `slug`: posts (`h` tag) or its room-create event."""
    pks = []
    candidates = Event.objects.filter(board__isnull=True, raw_json__contains=json.dumps(slug))
    for pk, raw in candidates.values_list("pk", "raw_json"):
        try:
            parsed = nostr.parse_event(raw)
        except nostr.EventError:
            continue
        named = parsed.tag_value("h")
        if parsed.kind == KIND_ROOM_CREATE:
            named = parsed.tag_value("d") or f"r-{parsed.id[:16]}"
        if named == slug:
            pks.append(pk)
    return pks


def _authors_uncount(board: Board) -> None:
    """Take the room's threads and replies off their authors' public counters."""
    for row in Thread.objects.filter(board=board).values("author").order_by():
        Author.objects.filter(pk=row["author"], thread_count__gt=0).update(
            thread_count=F("thread_count") - 1
        )
    for row in Post.objects.filter(board=board).values("author").order_by():
        Author.objects.filter(pk=row["author"], reply_count__gt=0).update(
            reply_count=F("reply_count") - 1
        )


def _authors_forget(pubkeys: set[str]) -> None:
    """Authors known only from the room leave no trace of having been here."""
    for pubkey in pubkeys:
        if not Event.objects.filter(pubkey=pubkey).exists():
            Author.objects.filter(pubkey=pubkey).delete()


def _audit_scrub(board: Board) -> None:
    """Audit rows about the room's posts keep who did what and when, not what it was about."""
    targets = (
        Q(target_type="board", target_id=board.slug)
        | Q(target_type="thread", target_id__in=_as_text(Thread.objects.filter(board=board)))
        | Q(target_type="post", target_id__in=_as_text(Post.objects.filter(board=board)))
        | Q(
            target_type="rejection",
            target_id__in=_as_text(
                Rejection.objects.filter(Q(board=board) | Q(event__board=board))
            ),
        )
    )
    ModerationAction.objects.filter(targets).update(reason="", details={"room": "self-destructed"})


def _as_text(qs) -> list[str]:
    # ModerationAction.target_id is text: compare with the primary keys as strings.
    return [str(pk) for pk in qs.values_list("pk", flat=True)]


def rooms_destroy_expired(*, now: datetime | None = None) -> int:
    """The beat task's body: destroy every room past its expiry (idempotent)."""
    now = now or timezone.now()
    slugs = list(
        Board.objects.filter(expires_at__lte=now, destroyed_at__isnull=True).values_list(
            "slug", flat=True
        )
    )
    destroyed = 0
    for slug in slugs:
        try:
            destroyed += room_destroy(slug=slug, now=now)
        except Exception:  # one room failing must not keep the others alive
            log.exception("destroying room %s failed", slug)
    return destroyed


# --- unlocking --------------------------------------------------------------------------------

# Every guess is counted before it is checked, in three fixed-window budgets (one atomic add
# each, see `throttle.attempt_counter`): per (room, client address), so one visitor cannot
# guess at a room; per client address over all rooms (three times that), so one visitor cannot
# keep the server busy by spreading over rooms; and per room from everyone (ten times that), so
# many addresses cannot spread the guessing. A client address is an IPv4 address or an IPv6
# /64. A right password is not a guess: it clears the (room, address) budget, as a login
# does, and gives back what it took from the other two. At most
# `ROOM_UNLOCK_CONCURRENCY` scrypt checks run at once in a process; a guess that waits longer
# than `UNLOCK_QUEUE_SECONDS` for one is not checked, not counted, and told to retry.
UNLOCK_QUEUE_SECONDS = 1.0
_check_slots = throttle.CheckSlots()


class Unlock(enum.Enum):
    OPEN = "open"  # the right password
    WRONG = "wrong"
    THROTTLED = "throttled"  # out of guesses for now: `retry_after`
    BUSY = "busy"  # not checked: too many checks running; retry in a moment


@dataclass(frozen=True)
class UnlockResult:
    outcome: Unlock
    retry_after: int = 0


def _unlock_budgets(*, address: str, slug: str) -> list[tuple[str, int]]:
    per_room_address = int(getattr(settings, "ROOM_UNLOCK_MAX_FAILURES", 10))
    return [
        (throttle.counter_key("room-unlock", slug, address), per_room_address),
        (throttle.counter_key("room-unlock-address", address), per_room_address * 3),
        (throttle.counter_key("room-unlock-room", slug), per_room_address * 10),
    ]


def room_unlock(*, board: Board, password: str, ip: str) -> UnlockResult:
    """Check a password typed on the room's page, within the client's and the room's budgets."""
    if is_expired(board) or not board.password_verifier:
        return UnlockResult(Unlock.WRONG)
    counter = throttle.attempt_counter()
    window = int(getattr(settings, "ROOM_UNLOCK_WINDOW_SECONDS", 300))
    taken: list[str] = []

    def give_back() -> None:
        for key in taken:
            counter.add(key, -1, window_seconds=window)

    for key, limit in _unlock_budgets(address=throttle.address_bucket(ip), slug=board.slug):
        count = counter.add(key, 1, window_seconds=window)
        taken.append(key)
        if count.total > limit:
            # The budgets before this one keep the attempt (it was one); this one is full.
            return UnlockResult(Unlock.THROTTLED, count.retry_after)
    slot = _check_slots.acquire(
        size=int(getattr(settings, "ROOM_UNLOCK_CONCURRENCY", 2)),
        wait_seconds=UNLOCK_QUEUE_SECONDS,
    )
    if slot is None:
        give_back()
        return UnlockResult(Unlock.BUSY, 2)
    try:
        opened = verifier_check(verifier=board.password_verifier, password=password)
    finally:
        slot.release()
    if not opened:
        return UnlockResult(Unlock.WRONG)
    # Only someone who knows the password can do this: their address starts afresh here.
    counter.clear(taken.pop(0))
    give_back()
    return UnlockResult(Unlock.OPEN)
