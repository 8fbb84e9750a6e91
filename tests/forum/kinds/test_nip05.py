"""NIP-05: a profile's name@domain checked against the domain's nostr.json (here a local HTTP
server), and the forum's own /.well-known/nostr.json for names a moderator assigns."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from forum import nostr
from forum.models import Author, SiteSettings
from forum.services.nip05 import author_nip05_assign, nip05_due
from forum.tasks import nip05_recheck_due, nip05_verify

pytestmark = pytest.mark.django_db(transaction=True)

PROFILE_MSAT = SiteSettings().profile_price_msat


class Domain:
    """What the fake domain answers: names -> pubkeys, or a body too big, or a slow answer."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.pad = 0  # bytes of padding in the document
        self.delay = 0.0
        self.requests: list[str] = []


@pytest.fixture
def domain(settings) -> Iterator[tuple[Domain, str]]:
    state = Domain()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            state.requests.append(self.path)
            url = urlparse(self.path)
            if url.path != "/.well-known/nostr.json":
                self.send_error(404)
                return
            time.sleep(state.delay)
            name = parse_qs(url.query).get("name", [""])[0]
            names = {name: state.names[name]} if name in state.names else {}
            body = json.dumps({"names": names, "pad": "x" * state.pad}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (the timeout case)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.NIP05_ALLOW_HTTP = True
    settings.NIP05_TIMEOUT_SECONDS = 1.0
    settings.NIP05_MAX_BYTES = 4096
    try:
        yield state, f"localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def publish_profile(poster, key: str, nip05: str) -> str:
    event = nostr.sign_event(
        key, kind=0, tags=[], content=json.dumps({"name": "Alice", "nip05": nip05})
    )
    poster.post(event, PROFILE_MSAT)
    return event.pubkey


def test_verified_identifier_is_shown(client, poster, board, alice_key, domain):
    state, host = domain
    pubkey = nostr.public_key(alice_key)
    state.names["alice"] = pubkey
    publish_profile(poster, alice_key, f"alice@{host}")
    assert nip05_verify(pubkey) is True
    author = Author.objects.get(pubkey=pubkey)
    assert author.nip05_verified == f"alice@{host}" and author.nip05_error == ""
    assert set(state.requests) == {"/.well-known/nostr.json?name=alice"}
    page = client.get(f"/a/{pubkey}/").content.decode()
    assert f"alice@{host} ✓" in page


def test_a_document_naming_another_key_does_not_verify(client, poster, board, alice_key, domain):
    state, host = domain
    state.names["alice"] = "f" * 64
    pubkey = publish_profile(poster, alice_key, f"alice@{host}")
    assert nip05_verify(pubkey) is False
    author = Author.objects.get(pubkey=pubkey)
    assert author.nip05_verified == ""
    assert "another key" in author.nip05_error
    page = client.get(f"/a/{pubkey}/").content.decode()
    assert "not verified" in page and "✓" not in page


def test_an_oversized_document_is_not_read(poster, board, alice_key, domain):
    state, host = domain
    state.names["alice"] = nostr.public_key(alice_key)
    state.pad = 10_000  # over NIP05_MAX_BYTES
    pubkey = publish_profile(poster, alice_key, f"alice@{host}")
    assert nip05_verify(pubkey) is False
    assert "over 4096 bytes" in Author.objects.get(pubkey=pubkey).nip05_error


def test_a_slow_domain_times_out(poster, board, alice_key, domain):
    state, host = domain
    state.names["alice"] = nostr.public_key(alice_key)
    state.delay = 3.0  # past NIP05_TIMEOUT_SECONDS
    pubkey = publish_profile(poster, alice_key, f"alice@{host}")
    assert nip05_verify(pubkey) is False
    assert "could not be reached" in Author.objects.get(pubkey=pubkey).nip05_error


def test_https_is_required_unless_allowed(settings, poster, board, alice_key, domain):
    state, host = domain
    state.names["alice"] = nostr.public_key(alice_key)
    settings.NIP05_ALLOW_HTTP = False
    pubkey = publish_profile(poster, alice_key, f"alice@{host}")
    assert nip05_verify(pubkey) is False  # the plain-http test server does not speak TLS
    assert state.requests == []


def test_identifiers_are_checked_again_periodically(settings, poster, board, alice_key, domain):
    state, host = domain
    pubkey = nostr.public_key(alice_key)
    state.names["alice"] = pubkey
    publish_profile(poster, alice_key, f"alice@{host}")
    Author.objects.filter(pubkey=pubkey).update(nip05_checked_at=None)  # as if not checked yet
    assert nip05_due() == [pubkey]
    assert nip05_recheck_due() == 1
    assert Author.objects.get(pubkey=pubkey).nip05_verified
    assert nip05_due() == []  # checked just now
    del state.names["alice"]  # the domain drops the name
    settings.NIP05_RECHECK_SECONDS = 0
    assert nip05_due() == [pubkey]
    nip05_recheck_due()
    assert Author.objects.get(pubkey=pubkey).nip05_verified == ""


def test_the_forum_serves_names_a_moderator_assigns(client, alice_key):
    pubkey = nostr.public_key(alice_key)
    assert author_nip05_assign(actor=None, pubkey=pubkey, name="Alice") is True
    response = client.get("/.well-known/nostr.json?name=alice")
    assert response.json() == {"names": {"alice": pubkey}}
    assert response["Access-Control-Allow-Origin"] == "*"
    assert client.get("/.well-known/nostr.json?name=bob").json() == {"names": {}}
