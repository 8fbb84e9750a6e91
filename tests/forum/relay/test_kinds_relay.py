"""Profiles, deletions and edits from a stock Nostr client (`nostr-sdk`) over the relay's
paid write path: the same verdict and settle-order prices as a keysend, OK true once applied,
and what another client then reads back from /relay."""

from __future__ import annotations

import asyncio
import json

import nostr_sdk as ns
import pytest

from forum import nostr
from forum.ingest.balance import balance_of
from forum.models import SiteSettings
from tests.forum.relay.factories import make_board
from tests.forum.relay.test_paid_writes import (
    PUB,
    SECRET,
    WAIT,
    connected,
    fund,
    page,
    relay_with_node,  # noqa: F401 (a fixture)
    send_all,
)

pytestmark = pytest.mark.django_db(transaction=True)

OTHER = "0b" * 32


def fetch(relay, filter_json: dict) -> list[dict]:
    async def scenario() -> list[dict]:
        client = await connected(relay)
        try:
            flt = ns.Filter.from_json(json.dumps(filter_json))
            events = await client.fetch_events(ns.ReqTarget.auto([flt]), timeout=WAIT)
            return [json.loads(event.as_json()) for event in events]
        finally:
            await client.disconnect()
            await client.shutdown()

    return asyncio.run(scenario())


def test_profile_deletion_and_edit_over_the_socket(relay_with_node, forum_node):  # noqa: F811
    make_board(thread_price_msat=10_000, reply_price_msat=1_000)
    site = SiteSettings()
    fund(forum_node, PUB, 50_000)
    profile = nostr.sign_event(SECRET, kind=0, tags=[], content=json.dumps({"name": "Sdk"}))
    root = nostr.thread_event(SECRET, board="general", title="Typo", content="helo")
    edit = nostr.sign_event(SECRET, kind=1010, tags=[["e", root.id]], content="hello")
    assert send_all(relay_with_node, [profile, root, edit]) == [(True, "")] * 3

    html = page(relay_with_node, f"/t/{root.id}/")
    assert "Sdk" in html and "hello" in html and "helo" not in html
    [meta] = fetch(relay_with_node, {"kinds": [0], "authors": [PUB]})
    assert meta["id"] == profile.id and json.loads(meta["content"])["name"] == "Sdk"
    assert [e["id"] for e in fetch(relay_with_node, {"kinds": [1010], "#e": [root.id]})] == [
        edit.id
    ]

    # Someone else's deletion is refused with its reason and costs nothing.
    fund(forum_node, nostr.public_key(OTHER), 5_000)
    forged = nostr.sign_event(OTHER, kind=5, tags=[["e", root.id]], content="")
    [(accepted, message)] = send_all(relay_with_node, [forged])
    assert not accepted and message.startswith("blocked:") and "only its author" in message
    assert balance_of(nostr.public_key(OTHER)).balance_msat == 5_000

    deletion = nostr.sign_event(SECRET, kind=5, tags=[["e", root.id]], content="")
    assert send_all(relay_with_node, [deletion]) == [(True, "")]
    assert fetch(relay_with_node, {"kinds": [11], "authors": [PUB]}) == []
    assert [e["id"] for e in fetch(relay_with_node, {"kinds": [5]})] == [deletion.id]
    spent = site.profile_price_msat + 10_000 + site.edit_price_msat + site.deletion_price_msat
    assert balance_of(PUB).balance_msat == 50_000 - spent
