"""Hostile JSON bodies get a 400 with a reason on every JSON endpoint, never a 500.

`/compose/records` (the composer) and `/demo/keysend` (the demo wallet) are the forum's views
that read a JSON request body; both go through `forum.views.jsonbody`.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from forum import nostr

NESTED = "[" * 100_000 + "]" * 100_000  # ~200 kB: under the body limit, past the recursion limit


def _event() -> dict:
    secret = nostr.generate_secret_key()
    return nostr.thread_event(secret, board="general", title="t", content="hello").to_dict()


def _post(client, name: str, body: str):
    return client.post(reverse(name), data=body, content_type="application/json")


def _records_body(amount: str) -> str:
    return f'{{"event": {json.dumps(_event())}, "amount_msat": {amount}}}'


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("Infinity", "Infinity is not valid JSON"),
        ("-Infinity", "-Infinity is not valid JSON"),
        ("NaN", "NaN is not valid JSON"),
        ("1e400", "amount_msat must be a whole number"),
        ("1.5", "amount_msat must be a whole number"),
        ("true", "amount_msat must be a whole number"),
        ('"12abc"', "amount_msat must be a whole number"),
        ("1" + "0" * 5000, "too many digits"),
        ("0", "amount_msat must be from 1"),
    ],
)
def test_compose_records_refuses_bad_amounts_with_a_reason(client, amount, reason):
    response = _post(client, "compose-records", _records_body(amount))
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_compose_records_still_accepts_an_integral_amount_given_as_text(client):
    pytest.importorskip("forum.protocol")
    response = _post(client, "compose-records", _records_body('"21000"'))
    assert response.status_code == 200, response.content
    assert response.json()["payments"][0]["amount_sat"] == 21


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (NESTED, "nested too deeply"),
        ('{"event": ' + NESTED + ', "amount_msat": 1000}', "nested too deeply"),
        ("{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        ("[1, 2]", "must be a JSON object"),
        ('{"amount_msat": 1, "amount_msat": 2}', "duplicate key"),
    ],
)
def test_compose_records_refuses_broken_json_with_a_reason(client, body, reason):
    response = _post(client, "compose-records", body)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_compose_records_refuses_an_oversized_body(client):
    response = _post(client, "compose-records", json.dumps({"pad": "x" * 300_000}))
    assert response.status_code == 413
    assert "too large" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"destination": "02", "amount": Infinity, "customRecords": {}}', "not valid JSON"),
        ('{"destination": "02", "amount": 1e400, "customRecords": {}}', "amount must be"),
        ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
        ('{"destination": "02", "amount": 10, "customRecords": [1]}', "customRecords"),
    ],
)
def test_demo_keysend_refuses_hostile_json_with_a_reason(client, settings, body, reason):
    settings.DEMO_MODE = True
    response = _post(client, "demo-keysend", body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
