"""What every public page sends besides its content: the Content-Security-Policy, and HEAD
answered like GET (same status and headers, no body)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


def _directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.fixture
def public_urls() -> dict[str, str]:
    board = f.board("general")
    thread, root = f.thread(board, title="Hello", content="opening")
    f.replies(thread, root, 1)
    return {
        "home": "/",
        "board": reverse("board", args=["general"]),
        "thread": reverse("thread", args=[root.id]),
        "author": reverse("author", args=[root.pubkey]),
        "how-to-post": reverse("how-to-post"),
        "raw JSON": reverse("event-json", args=[root.id]),
    }


def test_pages_carry_a_policy_that_allows_only_local_scripts_and_no_inline_code(
    client, public_urls
):
    for name, url in public_urls.items():
        response = client.get(url)
        assert response.status_code == 200, name
        policy = _directives(response["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"], name
        # Local files only: no inline <script>, no on* handlers, no style="" attributes, no eval.
        assert policy["script-src"] == ["'self'"], name
        assert policy["style-src"] == ["'self'"], name
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"], name
        assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]
        # The live updates and the composer's status use websockets to this same host.
        assert policy["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"], name


def test_connect_src_names_the_host_the_page_was_served_from(client, settings):
    settings.ALLOWED_HOSTS = ["forum.example"]
    response = client.get("/", HTTP_HOST="forum.example")
    policy = _directives(response["Content-Security-Policy"])
    assert policy["connect-src"] == ["'self'", "ws://forum.example", "wss://forum.example"]


def test_a_refused_host_still_gets_a_policy(client, settings):
    settings.ALLOWED_HOSTS = ["forum.example"]
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    policy = _directives(response["Content-Security-Policy"])
    assert policy["connect-src"] == ["'self'"]


# Headers that differ between any two requests, HEAD or not.
_PER_RESPONSE = {"set-cookie", "date"}


def test_head_answers_like_get_without_a_body(client, public_urls):
    for name, url in public_urls.items():
        got = client.get(url)
        head = client.head(url)
        assert (head.status_code, name) == (got.status_code, name)
        same = {k.lower(): v for k, v in got.items() if k.lower() not in _PER_RESPONSE}
        assert {k.lower(): v for k, v in head.items() if k.lower() not in _PER_RESPONSE} == same
        assert int(head["Content-Length"]) == len(got.content) > 0, name
        assert head.content == b"", name


def test_head_of_a_missing_page_is_a_404_like_get(client):
    assert client.head("/b/nope/").status_code == client.get("/b/nope/").status_code == 404


def test_head_does_not_open_what_get_refuses(client):
    """Turning HEAD into GET must not let HEAD through where GET itself is refused."""
    assert client.get("/compose/records").status_code == 405
    assert client.head("/compose/records").status_code == 405
