"""HEAD against the real server (daphne, as `make run` starts it): the GET's status and
headers, and not one byte of body on the wire."""

from __future__ import annotations

import contextlib
import http.client
import re
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.slow]

# Headers that differ between any two responses, HEAD or not.
_PER_RESPONSE = {"date", "set-cookie"}


def _request(server_url: str, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(server_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders() if k.lower() not in _PER_RESPONSE}
        # http.client reads no body for HEAD: read what the socket really holds after it.
        body = response.read()
        if method == "HEAD":
            assert connection.sock is not None, "the server closed instead of keeping alive"
            connection.sock.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                body += connection.sock.recv(65536)
        return response.status, headers, body
    finally:
        connection.close()


def test_public_pages_answer_head_like_get(forum_server):
    board_html = forum_server.get("/b/general/")
    thread = re.search(r'href="(/t/[0-9a-f]{64}/)"', board_html).group(1)
    thread_html = forum_server.get(thread)
    author = re.search(r'href="(/a/[^"]+/)"', thread_html).group(1)
    raw_json = re.search(r'href="(/e/[0-9a-f]{64}\.json)"', thread_html).group(1)
    for path in ["/", "/b/general/", thread, author, "/how-to-post/", raw_json]:
        get_status, get_headers, get_body = _request(forum_server.url, "GET", path)
        head_status, head_headers, head_body = _request(forum_server.url, "HEAD", path)
        assert get_status == 200, path
        assert head_status == get_status, path
        assert head_headers == get_headers, path
        assert int(head_headers["content-length"]) == len(get_body), path
        assert head_body == b"", path
