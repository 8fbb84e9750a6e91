"""Attempt counting for everything the forum rate-limits, and the console login's buckets.

`attempt_counter()` is the one way to count attempts: it adds to a fixed-window counter and
returns the new total in the same atomic step (Redis `INCRBY` in a script when `REDIS_URL` is
set, else one upsert on a `ThrottleCounter` row), so a caller counts an attempt *before*
doing the expensive part and a burst of simultaneous requests cannot all read "under the
limit". `address_bucket()` turns a client address into what a limit is kept per (an IPv6
client usually holds a whole /64).

Console login: two buckets, failures per (client IP, username), so one account is not guessed
at, and per IP alone with a higher limit, so one client cannot spray many usernames. A success
clears the (IP, username) bucket. Fixed windows: the first failure starts a window of
`WINDOW_SECONDS`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from dataclasses import dataclass
from functools import cache as memoise
from typing import Protocol

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from forum.models import ThrottleCounter

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


# --- counting attempts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """A counter's total after an `add`, and the seconds until its window ends."""

    total: int
    retry_after: int


class AttemptCounter(Protocol):
    def add(self, key: str, amount: int, *, window_seconds: int) -> Count:
        """Add `amount` (may be negative) to `key`'s window, starting one if there is none."""
        ...

    def clear(self, key: str) -> None:
        """Forget `key`'s window."""
        ...


def counter_key(*parts: str) -> str:
    """A fixed-length key for a counter (parts may be user input: room slugs, usernames)."""
    return "throttle:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def _seconds_left(expires_ms: int, now_ms: int) -> int:
    return max(1, math.ceil((expires_ms - now_ms) / 1000))


# The count and the window's start in one step: INCRBY alone would leave a key made by an
# increment that raced its expiry without a TTL, a lockout that never ends.
_REDIS_ADD = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {total, ttl}
"""


class RedisCounter:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._script = self._redis.register_script(_REDIS_ADD)

    def add(self, key: str, amount: int, *, window_seconds: int) -> Count:
        total, ttl_ms = self._script(keys=[key], args=[amount, window_seconds * 1000])
        return Count(int(total), _seconds_left(int(ttl_ms), 0))

    def clear(self, key: str) -> None:
        self._redis.delete(key)


class DatabaseCounter:
    """One upsert per attempt, read back in the same transaction: the row lock (PostgreSQL) or
    the database's write lock (SQLite) makes concurrent adds queue, so no two see one total."""

    def add(self, key: str, amount: int, *, window_seconds: int) -> Count:
        now_ms = int(time.time() * 1000)
        ends_ms = now_ms + window_seconds * 1000
        q = connection.ops.quote_name
        table, k, n, ends = (
            q(name) for name in (ThrottleCounter._meta.db_table, "key", "count", "expires_ms")
        )
        over = f"{table}.{ends} <= %s"  # the stored window is over: start a new one
        upsert = (
            f"INSERT INTO {table} ({k}, {n}, {ends}) VALUES (%s, %s, %s)"
            f" ON CONFLICT ({k}) DO UPDATE SET"
            f" {n} = CASE WHEN {over} THEN excluded.{n} ELSE {table}.{n} + excluded.{n} END,"
            f" {ends} = CASE WHEN {over} THEN excluded.{ends} ELSE {table}.{ends} END"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(upsert, [key, amount, ends_ms, now_ms, now_ms])
            cursor.execute(f"SELECT {n}, {ends} FROM {table} WHERE {k} = %s", [key])
            total, expires_ms = cursor.fetchone()
        if expires_ms == ends_ms:  # this add opened a window: a moment to drop stale ones
            ThrottleCounter.objects.filter(expires_ms__lt=now_ms).delete()
        return Count(int(total), _seconds_left(int(expires_ms), now_ms))

    def clear(self, key: str) -> None:
        ThrottleCounter.objects.filter(key=key).delete()


@memoise
def _redis_counter(url: str) -> RedisCounter:
    return RedisCounter(url)


def attempt_counter() -> AttemptCounter:
    """Redis when the deployment has it (shared by every process), else the database."""
    url = getattr(settings, "REDIS_URL", "")
    return _redis_counter(url) if url else DatabaseCounter()


def address_bucket(ip: str) -> str:
    """What a per-client limit is kept per: an IPv4 address, or an IPv6 address's /64 (one
    subscriber is usually given a whole /64, so single addresses in it cost nothing)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class CheckSlots:
    """A process-wide bound on expensive checks running at once (each scrypt check holds its
    verifier's memory, up to tens of MiB, while it runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphores: dict[int, threading.BoundedSemaphore] = {}

    def _semaphore(self, size: int) -> threading.BoundedSemaphore:
        with self._lock:
            if size not in self._semaphores:
                self._semaphores[size] = threading.BoundedSemaphore(size)
            return self._semaphores[size]

    def acquire(self, *, size: int, wait_seconds: float) -> threading.BoundedSemaphore | None:
        """A held slot (release it), or None if none freed up within `wait_seconds`."""
        semaphore = self._semaphore(size)
        return semaphore if semaphore.acquire(timeout=wait_seconds) else None
