"""Console sign-in: moderators only, failures rate limited per IP and username."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from forum.services.moderation import throttle

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def login(client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(
        reverse("mod:login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_moderator_signs_in_and_out(client, moderator):
    response = login(client, "mod", PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("mod:home")
    assert client.get(reverse("mod:home")).status_code == 200
    assert client.post(reverse("mod:logout")).status_code == 302
    assert client.get(reverse("mod:home")).status_code == 302


def test_next_is_followed(client, moderator):
    response = client.post(
        reverse("mod:login") + "?next=/mod/audit/",
        {"username": "mod", "password": PASSWORD, "next": "/mod/audit/"},
    )
    assert response["Location"] == "/mod/audit/"


def test_non_moderator_cannot_sign_in(client, member):
    response = login(client, "member", PASSWORD)
    assert response.status_code == 200
    assert "not a moderator" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_five_failures_lock_out_that_ip_and_username(client, moderator):
    for _ in range(throttle.MAX_FAILURES):
        assert login(client, "mod", "wrong").status_code == 200
    # Even the right password is refused while throttled.
    response = login(client, "mod", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    # Another client IP is not affected.
    assert login(client, "mod", PASSWORD, ip="10.0.0.2").status_code == 302


def test_success_resets_the_count(client, moderator):
    for _ in range(throttle.MAX_FAILURES - 1):
        login(client, "mod", "wrong")
    assert login(client, "mod", PASSWORD).status_code == 302
    client.logout()
    for _ in range(throttle.MAX_FAILURES - 1):
        login(client, "mod", "wrong")
    assert login(client, "mod", PASSWORD).status_code == 302


def test_one_ip_spraying_usernames_is_limited(client, db):
    for i in range(throttle.MAX_FAILURES_PER_IP):
        login(client, f"user{i}", "wrong")
    assert login(client, "someone-else", "wrong").status_code == 429
