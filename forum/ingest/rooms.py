"""Renting a private room, as the pipeline judges it: the room-create event's spec and price.

Pure of state except the settings it reads; `forum.services.rooms` owns the rest of a room's
life (unlocking, destruction) and re-exports these.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from forum import nostr
from forum.models import Board
from forum.room_events import SLUG_RE, Verifier, VerifierError, verifier_parse

MAX_NAME_LENGTH = 120  # Board.title
MAX_DESCRIPTION_LENGTH = 2_000
MIN_LIFETIME_SECONDS = 60


def price_msat() -> int:
    return int(getattr(settings, "ROOM_PRICE_SATS", 10_000)) * 1000


def default_lifetime() -> int:
    return int(getattr(settings, "ROOM_LIFETIME_SECONDS", 24 * 3600))


def max_lifetime() -> int:
    return int(getattr(settings, "ROOM_MAX_LIFETIME_SECONDS", 7 * 24 * 3600))


# --- the room-create event ------------------------------------------------------------------


@dataclass(frozen=True)
class RoomSpec:
    slug: str
    name: str
    description: str
    verifier: str
    lifetime_seconds: int


# What one password check may cost the server. Each unlock attempt runs the room's scrypt:
# 128 * N * r bytes of memory and N * r * p units of work. The cap is twice the work and the
# same memory as `verifier_make`'s default (N=2^14, r=8, p=1: 16 MiB); `verifier_parse`
# alone would allow 128 MiB per check (N=2^16, r=16), eight checks at once a gigabyte.
SCRYPT_MAX_MEMORY_BYTES = 16 * 2**20
SCRYPT_MAX_WORK = 2 * 2**14 * 8


def verifier_cost_check(verifier: Verifier) -> None:
    """`VerifierError` if checking a password against `verifier` would cost over the cap."""
    n, r, p = verifier.n, verifier.r, verifier.p
    memory = 128 * n * r
    if memory > SCRYPT_MAX_MEMORY_BYTES or n * r * p > SCRYPT_MAX_WORK:
        raise VerifierError(
            f"scrypt N={n}, r={r}, p={p} costs too much to check on every unlock: 128*N*r"
            f" must be at most {SCRYPT_MAX_MEMORY_BYTES // 2**20} MiB (this is"
            f" {memory / 2**20:g} MiB) and N*r*p at most {SCRYPT_MAX_WORK}"
            f" (N=16384, r=8, p=1 fits)"
        )


def room_spec(parsed: nostr.Event) -> RoomSpec:
    """The room a kind-9311 event asks for; `ValueError` with a sentence if it is malformed."""
    slug = (parsed.tag_value("d") or f"r-{parsed.id[:16]}").strip()
    if SLUG_RE.fullmatch(slug) is None:
        raise ValueError("the d tag (room slug) must be 3-64 of a-z, 0-9 and -")
    name = (parsed.tag_value("name") or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a room needs a name tag of 1 to {MAX_NAME_LENGTH} characters")
    if len(parsed.content) > MAX_DESCRIPTION_LENGTH:
        raise ValueError(f"the description is over {MAX_DESCRIPTION_LENGTH} characters")
    verifier = parsed.tag_value("verifier") or ""
    try:
        verifier_cost_check(verifier_parse(verifier))
    except VerifierError as exc:
        raise ValueError(f"bad verifier tag: {exc}") from None
    raw_lifetime = parsed.tag_value("lifetime")
    lifetime = default_lifetime()
    if raw_lifetime is not None:
        if not raw_lifetime.isdigit():
            raise ValueError("the lifetime tag must be a number of seconds")
        lifetime = int(raw_lifetime)
    if not MIN_LIFETIME_SECONDS <= lifetime <= max_lifetime():
        raise ValueError(f"the lifetime must be {MIN_LIFETIME_SECONDS} to {max_lifetime()} s")
    return RoomSpec(slug, name, parsed.content.strip(), verifier, lifetime)


def room_slug_taken(board: Board | None, spec: RoomSpec) -> bool:
    """Whether `board` (the board with the spec's slug, if any) bars this room-create event."""
    return board is not None and _own_room(board, spec) is None


def _own_room(board: Board, spec: RoomSpec) -> Board | None:
    """`board` if it is the live room this very event opened (rebuild_from_node replays it).

    The verifier carries a random salt, so an equal verifier means the same event; a destroyed
    room has none left, so a replay of its event finds the slug taken.
    """
    same = board.password_verifier and board.password_verifier == spec.verifier
    return board if same and board.destroyed_at is None else None
