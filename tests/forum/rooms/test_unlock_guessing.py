"""Room password guessing under load: a burst is counted before it is checked, scrypt checks
run a few at a time, and a member who knows the password still gets in.

Requests run 20 at once from real threads through Django's test client (one client per
request, so nothing is shared but the server). The checks are counted by wrapping the room service's
`verifier_check` around the real scrypt: how many ran, and how many ran at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone

from forum.models import Board
from forum.services import rooms
from tests.forum.rooms.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

ATTACKER = "203.0.113.7"
MEMBER = "198.51.100.9"


@dataclass
class CheckCounter:
    """Wraps the real scrypt check: counts calls and the most that ran at the same time."""

    calls: int = 0
    running: int = 0
    most_at_once: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._real = rooms.verifier_check

    def __call__(self, *, verifier: str, password: str) -> bool:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return self._real(verifier=verifier, password=password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def checks(monkeypatch) -> Iterator[CheckCounter]:
    counter = CheckCounter()
    monkeypatch.setattr(rooms, "verifier_check", counter)
    yield counter


@pytest.fixture
def room(db) -> Board:
    return Board.objects.create(
        slug="vault",
        title="Vault",
        is_listed=False,
        password_verifier=rooms.verifier_make(password=PASSWORD),
        expires_at=timezone.now() + timedelta(hours=1),
    )


def _unlock(address: str, password: str):
    try:
        return Client(REMOTE_ADDR=address).post("/r/vault/unlock", {"password": password})
    finally:
        close_old_connections()  # each worker thread has its own database connection


def _burst(requests: list[tuple[str, str]]) -> list:
    # 20 at a time: each thread holds a database connection, and PostgreSQL's are few.
    with ThreadPoolExecutor(20) as pool:
        return list(pool.map(lambda args: _unlock(*args), requests))


def test_a_burst_from_one_address_checks_its_budget_only_and_a_member_still_gets_in(
    room, checks, settings
):
    budget = settings.ROOM_UNLOCK_MAX_FAILURES
    answers = _burst([(ATTACKER, f"guess-{i}") for i in range(100)])

    assert checks.calls <= budget
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {403, 429}
    assert statuses.count(403) == checks.calls
    refused = [answer for answer in answers if answer.status_code == 429]
    assert len(refused) >= 100 - budget
    assert all(int(answer["Retry-After"]) > 0 for answer in refused)
    assert all("Wait" in answer.content.decode() for answer in refused)

    # The attacker is out of guesses; a member at another address is not.
    assert _unlock(ATTACKER, PASSWORD).status_code == 429
    member = _unlock(MEMBER, PASSWORD)
    assert member.status_code == 302 and member["Location"] == "/r/vault/"


def test_scrypt_checks_run_a_few_at_a_time(room, checks, settings):
    """30 addresses guess at once: memory is bounded by the checks that run together."""
    answers = _burst([(f"192.0.2.{i}", "wrong") for i in range(30)])
    assert checks.most_at_once <= settings.ROOM_UNLOCK_CONCURRENCY
    assert checks.calls >= settings.ROOM_UNLOCK_CONCURRENCY
    for answer in answers:
        assert answer.status_code in (403, 429)
        if answer.status_code == 429:  # not checked: the server was busy; it says so
            assert "checking other passwords" in answer.content.decode()
            assert int(answer["Retry-After"]) > 0
    assert statuses_checked(answers) == checks.calls


def statuses_checked(answers: list) -> int:
    return sum(1 for answer in answers if answer.status_code == 403)


def test_a_room_wide_budget_stops_guessing_spread_over_many_addresses(room, checks, settings):
    settings.ROOM_UNLOCK_MAX_FAILURES = 2  # per address; the room allows ten times that
    for i in range(10):
        for _ in range(2):
            assert _unlock(f"192.0.2.{i}", "wrong").status_code == 403
    assert checks.calls == 20
    refused = _unlock("192.0.2.200", "wrong")
    assert refused.status_code == 429 and checks.calls == 20


def test_ipv6_addresses_of_one_network_share_a_budget(room, checks, settings):
    settings.ROOM_UNLOCK_MAX_FAILURES = 3
    for host in range(1, 4):
        assert _unlock(f"2001:db8:1:2::{host}", "wrong").status_code == 403
    # Another address in the same /64: the same subscriber, the same budget.
    assert _unlock("2001:db8:1:2:ffff::1", "wrong").status_code == 429
    assert _unlock("2001:db8:1:3::1", PASSWORD).status_code == 302


def test_a_right_password_is_not_a_guess(room, checks, settings):
    settings.ROOM_UNLOCK_MAX_FAILURES = 3
    for _ in range(5):
        assert _unlock(MEMBER, PASSWORD).status_code == 302
    for _ in range(3):
        assert _unlock(MEMBER, "wrong").status_code == 403
    assert _unlock(MEMBER, "wrong").status_code == 429
