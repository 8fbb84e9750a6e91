"""The attempt counter behind every rate limit: atomic under concurrency, on both stores.

`throttle.attempt_counter()` is Redis when `REDIS_URL` is set, else a database row; each store
is tested here directly, so both are covered whichever the run is configured with.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import close_old_connections

from forum.services.moderation import throttle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["database", "redis"])
def counter(request) -> throttle.AttemptCounter:
    if request.param == "redis":
        return throttle.RedisCounter(request.getfixturevalue("redis_url"))
    return throttle.DatabaseCounter()


def _key() -> str:
    return throttle.counter_key("test", uuid.uuid4().hex)


def test_concurrent_adds_each_see_a_different_total(counter):
    key = _key()

    def add(_: int) -> int:
        try:
            return counter.add(key, 1, window_seconds=60).total
        finally:
            close_old_connections()

    with ThreadPoolExecutor(20) as pool:
        totals = list(pool.map(add, range(60)))
    # A read-then-write counter would hand two requests the same total (both "under the
    # limit"); an atomic one hands out every number once.
    assert sorted(totals) == list(range(1, 61))


def test_a_window_ends_and_a_new_one_starts(counter):
    key = _key()
    first = counter.add(key, 1, window_seconds=1)
    assert first.total == 1 and first.retry_after == 1
    assert counter.add(key, 1, window_seconds=1).total == 2
    time.sleep(1.1)
    assert counter.add(key, 1, window_seconds=1).total == 1


def test_give_back_and_clear(counter):
    key = _key()
    counter.add(key, 3, window_seconds=60)
    assert counter.add(key, -1, window_seconds=60).total == 2
    counter.clear(key)
    assert counter.add(key, 1, window_seconds=60).total == 1


@pytest.mark.parametrize(
    ("ip", "bucket"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("", "unknown"),
        ("not an address", "not an address"),
    ],
)
def test_address_buckets(ip, bucket):
    assert throttle.address_bucket(ip) == bucket
