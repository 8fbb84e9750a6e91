"""Real Chromium: an author sees their relay balance on their own page (the key this browser
keeps), funded by a keysend with the credit record and spent by a post sent over /relay;
anyone else sees no balance there."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from forum import nostr, protocol

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "0c" * 32
PUB = nostr.public_key(SECRET)


def _json(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return json.loads(response.read())


def _fund(base: str, amount_sat: int) -> None:
    """The demo wallet's keysend with the credit record, as any wallet would send it."""
    node = _json(base, "/api/quote?board=general")["node_pubkey"]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    token = json.loads(opener.open(base + "/csrf", timeout=10).read())["token"]
    records = {str(k): v.decode() for k, v in protocol.encode_credit(PUB).items()}
    request = urllib.request.Request(
        base + "/demo/keysend",
        data=json.dumps(
            {"destination": node, "amount": amount_sat, "customRecords": records}
        ).encode(),
        headers={"Content-Type": "application/json", "X-CSRFToken": token},
        method="POST",
    )
    opener.open(request, timeout=60).read()
    deadline = time.monotonic() + 30
    while _json(base, f"/api/balance?pubkey={PUB}")["credited_msat"] < amount_sat * 1000:
        assert time.monotonic() < deadline, "the credit was not recorded"
        time.sleep(0.2)


def _post_over_relay(base: str, event: nostr.Event) -> list:
    with connect(base.replace("http://", "ws://") + "/relay") as ws:
        ws.send(json.dumps(["EVENT", event.to_dict()]))
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message[0] == "OK":
                return message


def test_the_owner_sees_the_balance_on_their_author_page(new_page, forum_server):
    base = forum_server.url
    _fund(base, 2_000)
    thread = nostr.thread_event(SECRET, board="general", title="Posted from a client", content="hi")
    assert _post_over_relay(base, thread)[2] is True
    left = _json(base, f"/api/balance?pubkey={PUB}")["balance_msat"]
    assert 0 < left < 2_000_000

    page = new_page()
    page.goto(base + "/")
    page.evaluate("(secret) => localStorage.setItem('lnforum.secret_key', secret)", SECRET)
    page.goto(f"{base}/a/{nostr.npub_encode(PUB)}/")
    page.wait_for_selector("#relay-balance:not([hidden])")
    section = page.inner_text("#relay-balance")
    assert f"Your relay balance: {left // 1000:,} sats" in section
    assert protocol.b64url_encode(bytes.fromhex(PUB)) in section  # the credit record to send
    assert "paid" in section and "funded" in section
    assert page.js_errors == []

    stranger = new_page()
    stranger.goto(f"{base}/a/{nostr.npub_encode(PUB)}/")
    stranger.wait_for_load_state("networkidle")
    assert stranger.locator("#relay-balance").is_hidden()
