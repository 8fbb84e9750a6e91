"""The demo wallet endpoint: real keysend over simnet, CSRF, demo-mode only, forum node only."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from forum import nostr, protocol
from forum.services import demo

pytestmark = pytest.mark.django_db


def _records(board: str = "general") -> dict[str, str]:
    event = nostr.thread_event(nostr.generate_secret_key(), board=board, title="t", content="hi")
    return protocol.to_webln(protocol.encode_event(event))


def _post(client: Client, body: dict):
    return client.post(
        reverse("demo-keysend"), data=json.dumps(body), content_type="application/json"
    )


def test_demo_keysend_pays_the_forum_node_over_grpc(forum_node, settings):
    settings.DEMO_MODE = True
    records = _records()
    response = _post(
        Client(), {"destination": forum_node.pubkey, "amount": "21", "customRecords": records}
    )
    body = response.json()
    assert response.status_code == 200, body
    invoice = forum_node.client.lookup_invoice(body["payment_hash"])
    assert invoice.settled and invoice.amt_paid_msat == 21_000
    # The records arrive exactly as WebLN passed them (plain strings, UTF-8).
    assert {
        str(t): v.decode()
        for t, v in invoice.custom_records.items()
        if t in protocol.RECORD_TYPES.values()
    } == records


def test_demo_wallet_refuses_other_destinations_and_silly_amounts(forum_node, settings):
    settings.DEMO_MODE = True
    other = forum_node.net.nodes["bob"].pubkey
    response = _post(Client(), {"destination": other, "amount": 1, "customRecords": {}})
    assert response.status_code == 400 and "only pays the forum" in response.json()["error"]
    too_much = demo.MAX_DEMO_PAYMENT_SAT + 1
    response = _post(Client(), {"destination": forum_node.pubkey, "amount": too_much})
    assert response.status_code == 400


def test_demo_wallet_info(forum_node, settings):
    settings.DEMO_MODE = True
    body = Client().get(reverse("demo-wallet")).json()
    assert body["pubkey"] == forum_node.net.nodes["alice"].pubkey and body["balance_sat"] > 0


def test_demo_endpoints_404_when_demo_mode_is_off(settings):
    settings.DEMO_MODE = False
    client = Client()
    assert _post(client, {"destination": "02" + "00" * 32, "amount": 1}).status_code == 404
    assert client.get(reverse("demo-wallet")).status_code == 404
    html = client.get("/").content.decode()
    assert "demo-wallet.js" not in html and "demo mode" not in html


def test_demo_keysend_needs_the_csrf_token(settings):
    settings.DEMO_MODE = True
    strict = Client(enforce_csrf_checks=True)
    response = _post(strict, {"destination": "02" + "00" * 32, "amount": 1})
    assert response.status_code == 403
    # Cached public pages carry no token; scripts fetch one (and its cookie) from /csrf.
    assert 'name="csrf-token"' not in strict.get("/").content.decode()
    token = strict.get(reverse("csrf-token")).json()["token"]
    response = strict.post(
        reverse("demo-keysend"),
        data=json.dumps({"destination": "bad", "amount": 1}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code in (400, 200)  # past CSRF: refused on its merits


def test_seed_is_a_no_op_once_boards_exist(settings):
    from tests.forum.web import factories as f

    f.board("mine")
    assert demo.demo_seed() is False
