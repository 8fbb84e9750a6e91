"""Errors look like the forum and say what to do; the favicon exists where browsers look."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.views.defaults import server_error

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_a_styled_404_with_a_way_back(client, settings):
    settings.DEBUG = False
    response = client.get("/b/no-such-board/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "forum/forum.css" in html and 'class="site-header"' in html
    assert "<h1>Page not found</h1>" in html
    assert 'href="/"' in html and "/b/no-such-board/" in html


def test_a_server_error_is_a_styled_500_that_needs_nothing_from_the_request():
    # Django renders 500.html without a request context (the error may be the database).
    response = server_error(RequestFactory().get("/anything/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "forum/forum.css" in html and "<h1>Something went wrong</h1>" in html
    assert 'href="/"' in html


def test_favicon_ico_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(response.streaming_content)
    assert "max-age" in response["Cache-Control"]
