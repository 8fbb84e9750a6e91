"""Versions of the public pages: what the page cache and HTTP validators are keyed by.

A cached public page (home, a board, a thread) is stored under the versions it depends on, and
is never invalidated by time: anything that changes what such a page shows bumps a version
(after commit), and the next request looks under the new key. The writers call one function:

- `versions_bump(board=..., thread=...)`: publishing, hiding, locking, pinning, tips;
- `versions_bump_all()`: changes that touch every page (board settings, a rebuild).

Versions live in the `pages` cache (locmem in the embedded default, Redis with `REDIS_URL`).
A version is `<unix ns>.<random>`: a bump never repeats an earlier value, so a version that
was evicted and recreated cannot bring back a page rendered for an earlier state, and the
time part gives `Last-Modified`.

Ordering makes this safe without locks: a bump runs after its transaction commits, and a
reader reads the versions *before* it queries the database. A reader that saw the new version
therefore sees the committed rows; one that saw the old version stores its page under the old
key, which no later reader asks for.

Private rooms never reach this cache: only the public views read or write it (a bump for a
room's board or thread only makes a page nobody caches look changed).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.cache import caches
from django.db import transaction

log = logging.getLogger(__name__)

CACHE_ALIAS = "pages"
_GLOBAL = "v:all"
_HOME = "v:home"


def page_cache():
    """The cache for versions, cached pages and post cards."""
    return caches[CACHE_ALIAS]


def board_key(slug: str) -> str:
    return f"v:b:{slug}"


def thread_key(event_id: str) -> str:
    return f"v:t:{event_id}"


def _fresh() -> str:
    return f"{time.time_ns()}.{secrets.token_hex(4)}"


# Memory hygiene only (a version that expires is recreated with a new value: a cache miss,
# never a stale page); it also bounds the keys that requests for unknown ids create.
VERSION_SECONDS = 7 * 24 * 3600


def _bump_now(keys: list[str]) -> None:
    # `set`, not `incr`: a missing key (evicted, or a fresh cache) needs no special case.
    page_cache().set_many({key: _fresh() for key in keys}, timeout=VERSION_SECONDS)


def _after_commit(bump: Callable[[], None]) -> None:
    """Bump after the transaction commits (the bump that makes the cache right for everyone).

    Inside a transaction, bump at once as well: reads in the same transaction (the writer's own
    follow-up request, a test) see the change before anyone else can, and a reader elsewhere
    that caches pre-commit rows under this early version is superseded by the commit's bump.
    """
    if transaction.get_connection().in_atomic_block:
        try:
            bump()
        except Exception:  # an unreachable cache must never fail the write that bumps it
            log.warning("page version bump failed (the bump after commit follows)", exc_info=True)
    transaction.on_commit(bump, robust=True)


def _on_commit(keys: list[str]) -> None:
    _after_commit(lambda: _bump_now(keys))


def versions_bump(*, board: str | None = None, thread: str | None = None) -> None:
    """After commit, mark a board (slug) and/or a thread (its event id) changed.

    The home page shows every board's counters and the latest posts, so it changes too.
    """
    keys = [_HOME]
    if board:
        keys.append(board_key(board))
    if thread:
        keys.append(thread_key(thread))
    _on_commit(keys)


def versions_bump_many(*, boards: Iterable[str] = (), threads: Iterable[str] = ()) -> None:
    """After commit, mark many boards and threads changed in one cache round trip (a batch)."""
    _on_commit([_HOME, *map(board_key, set(boards)), *map(thread_key, set(threads))])


def versions_bump_event(*, event_id: str) -> None:
    """After commit, mark the pages that show a published event (a thread or a reply) changed."""

    def bump() -> None:
        from forum.models import Post, Thread

        row = (
            Thread.objects.filter(event__event_id=event_id)
            .values_list("board__slug", "event__event_id")
            .first()
        ) or (
            Post.objects.filter(event__event_id=event_id)
            .values_list("board__slug", "thread__event__event_id")
            .first()
        )
        if row is not None:
            _bump_now([_HOME, board_key(row[0]), thread_key(row[1])])

    _after_commit(bump)


def versions_bump_all() -> None:
    """After commit, mark every public page changed (board settings, rebuild, new templates)."""
    _on_commit([_GLOBAL])


def versions_reset_now() -> None:
    """Mark every public page changed at once, outside any transaction (tests, a deploy)."""
    _bump_now([_GLOBAL])


@dataclass(frozen=True)
class Versions:
    """The versions one page depends on, read in one cache round trip."""

    tokens: tuple[str, ...]

    @property
    def tag(self) -> str:
        return "|".join(self.tokens)

    @property
    def changed_at(self) -> float:
        """Unix time of the latest bump among them (seconds)."""
        return max(int(token.split(".", 1)[0]) for token in self.tokens) / 1e9


def versions_read(*, board: str | None = None, thread: str | None = None) -> Versions:
    """The current versions of the global, home or board and thread keys (created if missing).

    With neither argument: the home page's versions.
    """
    keys = [_GLOBAL]
    if board:
        keys.append(board_key(board))
    if thread:
        keys.append(thread_key(thread))
    if not board and not thread:
        keys.append(_HOME)
    cache = page_cache()
    try:
        found = cache.get_many(keys)
        missing = [key for key in keys if key not in found]
        if missing:
            for key in missing:
                cache.add(key, _fresh(), timeout=VERSION_SECONDS)  # first writer wins; re-read
            found.update(cache.get_many(missing))
    except Exception:  # the cache is down: new values, so pages render (and match nothing)
        log.warning("page versions unreadable", exc_info=True)
        found = {}
    return Versions(tuple(str(found.get(key) or _fresh()) for key in keys))
