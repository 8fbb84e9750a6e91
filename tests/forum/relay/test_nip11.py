"""NIP-11 on the HTTP side of /relay: the JSON document, CORS, the preflight, the browser page."""

from __future__ import annotations

import json
import time

import pytest

from forum.models import SiteSettings
from forum.relay import selectors
from tests.forum.relay.factories import make_board

pytestmark = pytest.mark.django_db

NODE = "03" + "cd" * 32
NOSTR_JSON = "application/nostr+json"


@pytest.fixture(autouse=True)
def node(monkeypatch):
    monkeypatch.setattr(selectors, "forum_node_pubkey", lambda: NODE)


def test_document_with_limitation_and_publication_fees(client, settings):
    settings.NOSTR_RELAY_LIMITS = {"max_subscriptions": 7}
    SiteSettings.objects.create(pk=1, profile_price_msat=7_000, edit_price_msat=2_500)
    make_board("general", position=0, thread_price_msat=12_000, reply_price_msat=3_000)
    make_board("big", position=1, thread_price_msat=99_000, max_content_length=50_000)
    response = client.get("/relay", HTTP_ACCEPT=NOSTR_JSON)
    assert response.status_code == 200
    assert response["Content-Type"] == NOSTR_JSON
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Vary"] == "Accept"
    document = json.loads(response.content)
    # 9: authors' deletions (kind 5) are served, and what they delete is not.
    assert {1, 9, 11, 45, 57} <= set(document["supported_nips"])
    assert document["software"] == "lnforum"
    assert document["version"] == "0.1.0"
    assert document["name"]
    assert len(document["name"]) < 30
    assert document["limitation"] == {
        "max_message_length": 65_536,
        "max_subscriptions": 7,
        "max_filters": 10,
        "max_limit": 500,
        "default_limit": 100,
        "max_subid_length": 64,
        "max_content_length": 50_000,
        "auth_required": False,
        "payment_required": False,
        "restricted_writes": True,
    }
    # Posts cost the default board's prices (the first listed one); profiles, deletions and
    # edits the console's, which belong to no board.
    assert document["fees"] == {
        "publication": [
            {"kinds": [11], "amount": 12_000, "unit": "msats"},
            {"kinds": [1111], "amount": 3_000, "unit": "msats"},
            {"kinds": [0], "amount": 7_000, "unit": "msats"},
            {"kinds": [5], "amount": 1_000, "unit": "msats"},
            {"kinds": [1010], "amount": 2_500, "unit": "msats"},
        ]
    }
    assert document["payments_url"] == "http://testserver/how-to-post/"
    assert document["balance_url"] == "http://testserver/api/balance?pubkey="
    assert document["lightning_node"] == NODE


def test_document_without_boards_or_node(client, monkeypatch):
    monkeypatch.setattr(selectors, "forum_node_pubkey", lambda: None)
    response = client.get("/relay", HTTP_ACCEPT=f"{NOSTR_JSON}, application/json;q=0.5")
    document = json.loads(response.content)
    # No board to post on; a profile, deletion or edit still has its price (the defaults here).
    assert document["fees"] == {
        "publication": [
            {"kinds": [0], "amount": 5_000, "unit": "msats"},
            {"kinds": [5], "amount": 1_000, "unit": "msats"},
            {"kinds": [1010], "amount": 2_000, "unit": "msats"},
        ]
    }
    assert "lightning_node" not in document
    assert "max_content_length" not in document["limitation"]


def test_cors_preflight(client):
    response = client.options(
        "/relay",
        HTTP_ORIGIN="https://client.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="accept",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert response["Access-Control-Allow-Headers"] == "*"
    assert response.content == b""


def test_browser_gets_a_page_explaining_the_relay(client):
    response = client.get("/relay", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Access-Control-Allow-Origin"] == "*"
    page = response.content.decode()
    assert "ws://testserver/relay" in page
    assert "application/nostr+json" in page
    assert "http://testserver/how-to-post/" in page


def test_other_methods_are_refused(client):
    assert client.post("/relay").status_code == 405


def test_node_pubkey_lookup_never_raises(settings, tmp_path, monkeypatch):
    monkeypatch.undo()  # the real lookup, not the fixture's stand-in
    selectors.reset_node_pubkey_cache()
    settings.SIMNET_ENABLED = True
    settings.LND_GRPC_HOST = ""
    settings.LND_CONNECT = ""
    settings.SIMNET_DATA_DIR = tmp_path  # no simnet running here: no nodes file
    try:
        assert selectors.forum_node_pubkey() is None
        (tmp_path / "nodes.json").write_text(json.dumps({settings.LND_NODE_NAME: {"pubkey": NODE}}))
        assert selectors.forum_node_pubkey() is None  # failures are cached for a while too
        selectors.reset_node_pubkey_cache()
        assert selectors.forum_node_pubkey() == NODE

        settings.SIMNET_ENABLED = False
        settings.LND_GRPC_HOST = "127.0.0.1:1"  # nothing listens there
        selectors.reset_node_pubkey_cache()
        assert selectors.forum_node_pubkey() is None
    finally:
        selectors.reset_node_pubkey_cache()
        from forum.services import node

        node.reset_clients()  # drop the client built for the dead address


def test_a_slow_node_lookup_is_not_waited_for(settings, monkeypatch):
    monkeypatch.undo()
    from forum.services import node

    def slow_nodes() -> dict:
        time.sleep(0.5)
        return {settings.LND_NODE_NAME: {"pubkey": NODE}}

    monkeypatch.setattr(node, "simnet_nodes", slow_nodes)
    settings.SIMNET_ENABLED = True
    settings.LND_GRPC_HOST = ""
    settings.LND_CONNECT = ""
    selectors.reset_node_pubkey_cache()
    try:
        started = time.monotonic()
        assert selectors.forum_node_pubkey(wait_seconds=0.05) is None
        assert time.monotonic() - started < 0.4
        # The lookup finishes in the background and fills the cache for the next caller.
        deadline = time.monotonic() + 5
        while selectors.forum_node_pubkey(wait_seconds=0.05) != NODE:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        selectors.reset_node_pubkey_cache()
