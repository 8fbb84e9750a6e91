"""Console login rate limiting, in the cache (Redis when configured, else per-process memory).

Two buckets: failures per (client IP, username), so one account is not guessed at, and per IP
alone with a higher limit, so one client cannot spray many usernames. A success clears the
(IP, username) bucket. Fixed windows: the first failure starts a window of `WINDOW_SECONDS`.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

MAX_FAILURES = 5
MAX_FAILURES_PER_IP = 20
WINDOW_SECONDS = 300


def _key(*parts: str) -> str:
    # Hashed: usernames are user input and cache keys have a limited alphabet and length.
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"mod-login:{len(parts)}:{digest}"


def _keys(ip: str, username: str) -> tuple[tuple[str, int], tuple[str, int]]:
    return (
        (_key(ip, username.strip().lower()), MAX_FAILURES),
        (_key(ip), MAX_FAILURES_PER_IP),
    )


def login_throttled(*, ip: str, username: str) -> bool:
    """True if this client must wait before trying this username again."""
    return any((cache.get(key) or 0) >= limit for key, limit in _keys(ip, username))


def login_failed(*, ip: str, username: str) -> None:
    for key, _limit in _keys(ip, username):
        # add() starts the window only once; incr() keeps its expiry.
        cache.add(key, 0, WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, WINDOW_SECONDS)


def login_succeeded(*, ip: str, username: str) -> None:
    cache.delete(_keys(ip, username)[0][0])
