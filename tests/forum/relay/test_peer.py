"""The relay against a real third-party Nostr client: rust-nostr's Python SDK (`nostr-sdk`).

The peer speaks NIP-01 over a real websocket to daphne serving our ASGI app, verifies every
event's id and signature itself, and parses our NIP-11 document with its own types, so these
tests catch protocol mistakes our own code would agree with on both sides.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import timedelta

import nostr_sdk as ns
import pytest
from django.db import connections

from forum.relay.info import RelayLimits
from tests.forum.relay.conftest import LiveRelay
from tests.forum.relay.factories import (
    ALICE,
    make_board,
    publish_via_core,
    reply,
    store,
    thread,
)

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = timedelta(seconds=5)


async def connected_client(relay: LiveRelay) -> ns.Client:
    client = ns.Client()
    # No automatic reconnection: a client that outlives its test would reconnect later and
    # replay its subscriptions into another test.
    opts = ns.RelayOptions().reconnect(False)
    await client.add_relay(ns.RelayUrl.parse(relay.ws_url), opts=opts)
    await client.try_connect(timeout=WAIT)
    return client


async def close_client(client: ns.Client) -> None:
    await client.unsubscribe_all()
    await client.disconnect()
    await client.shutdown()


async def fetch_ids(client: ns.Client, filter_json: dict) -> list[str]:
    flt = ns.Filter.from_json(json.dumps(filter_json))
    events = await client.fetch_events(ns.ReqTarget.auto([flt]), timeout=WAIT)
    return [event.id().to_hex() for event in events]


async def next_message(stream: ns.ClientNotificationStream, timeout: float = 5.0):
    """The next relay message (EVENT, EOSE, CLOSED, NOTICE, OK) the client saw, as an enum."""
    while True:
        notification = await asyncio.wait_for(stream.next(), timeout)
        if isinstance(notification, ns.ClientNotification.MESSAGE):
            return notification.message.as_enum()


async def until_eose(stream: ns.ClientNotificationStream, subid: str) -> list[str]:
    """Event ids the subscription received up to its EOSE."""
    ids = []
    while True:
        message = await next_message(stream)
        if isinstance(message, ns.RelayMessageEnum.EVENT_MSG) and message.subscription_id == subid:
            ids.append(message.event.id().to_hex())
        elif (
            isinstance(message, ns.RelayMessageEnum.END_OF_STORED_EVENTS)
            and message.subscription_id == subid
        ):
            return ids


def test_req_returns_stored_events_newest_first_then_eose(live_relay):
    board = make_board()
    root = thread(created_at=1_000)
    first = reply(root, content="first", created_at=1_001)
    second = reply(root, content="second", created_at=1_002)
    for event in (root, first, second):
        store(event, board)

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        client = await connected_client(live_relay)
        try:
            everything = await fetch_ids(client, {"kinds": [11, 1111]})
            replies = await fetch_ids(client, {"kinds": [1111], "#E": [root.id], "limit": 1})
            by_author = await fetch_ids(client, {"authors": [root.pubkey]})
            return everything, replies, by_author
        finally:
            await close_client(client)

    everything, replies, by_author = asyncio.run(scenario())
    assert sorted(everything) == sorted([root.id, first.id, second.id])
    assert replies == [second.id]  # limit 1: the newest
    assert by_author == [root.id]


def test_subscription_order_and_eose_on_the_wire(live_relay):
    board = make_board()
    root = thread(created_at=2_000)
    store(root, board)
    older = reply(root, created_at=2_001)
    newer = reply(root, created_at=2_002)
    store(older, board)
    store(newer, board)

    async def scenario() -> list[str]:
        client = await connected_client(live_relay)
        stream = client.notifications()
        try:
            flt = ns.Filter().kinds([ns.Kind(1111)])
            await client.subscribe(ns.ReqTarget.auto([flt]), id="ordered")
            return await until_eose(stream, "ordered")
        finally:
            await close_client(client)

    assert asyncio.run(scenario()) == [newer.id, older.id]


def test_live_event_is_delivered_then_close_stops_delivery(core_feed):
    board = make_board()
    root = thread(created_at=3_000)
    publish_via_core(root, board)
    live_one = reply(root, content="live one", created_at=3_001)
    live_two = reply(root, content="live two", created_at=3_002)

    def publish(event) -> None:
        # The forum core's publish service: rows, then `post.published` on the feed on commit.
        publish_via_core(event, board)
        connections.close_all()  # this helper thread's connection must not outlive the test

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        client = await connected_client(core_feed)
        stream = client.notifications()
        try:
            flt = ns.Filter().kinds([ns.Kind(1111)]).event(ns.EventId.parse(root.id))
            await client.subscribe(ns.ReqTarget.auto([flt]), id="live")
            stored = await until_eose(stream, "live")
            await asyncio.to_thread(publish, live_one)
            message = await next_message(stream)
            assert isinstance(message, ns.RelayMessageEnum.EVENT_MSG)
            live = [message.subscription_id, message.event.id().to_hex(), message.event.content()]

            await client.unsubscribe("live")
            # The relay handles one connection's messages in order: once a later REQ has its
            # EOSE, the CLOSE before it has taken effect.
            await fetch_ids(client, {"ids": [root.id]})
            await asyncio.to_thread(publish, live_two)
            after_close = []
            try:
                while True:
                    message = await next_message(stream, timeout=1.5)
                    if isinstance(message, ns.RelayMessageEnum.EVENT_MSG):
                        after_close.append(message.event.id().to_hex())
            except TimeoutError:
                pass
            return stored, live, after_close
        finally:
            await close_client(client)

    stored, live, after_close = asyncio.run(scenario())
    assert stored == []
    assert live == ["live", live_one.id, "live one"]
    assert live_two.id not in after_close


def test_publishing_without_a_balance_is_refused_with_blocked_and_the_price(live_relay):
    make_board(thread_price_msat=21_000)
    keys = ns.Keys.parse(ALICE)
    unsigned = (
        ns.EventBuilder(ns.Kind(11), "posted over the socket")
        .tags([ns.Tag.parse(["title", "Hi"]), ns.Tag.parse(["h", "general"])])
        .finalize_unsigned(keys.public_key())
    )
    event = keys.sign_event(unsigned)

    async def scenario() -> ns.SendEventOutput:
        client = await connected_client(live_relay)
        try:
            return await client.send_event(event)
        finally:
            await close_client(client)

    output = asyncio.run(scenario())
    assert output.success == []
    [message] = output.failed.values()
    assert message.startswith("blocked: ")
    assert "balance 0 msat, this costs 21000 msat" in message
    assert "keysend" in message
    assert f"http://127.0.0.1:{live_relay.port}/how-to-post/" in message


def test_hidden_and_unlisted_events_are_never_served(live_relay):
    general = make_board()
    room = make_board("room", is_listed=False)
    visible = thread(title="visible", created_at=4_000)
    hidden = thread(title="hidden", created_at=4_001)
    private = thread("room", title="private", created_at=4_002)
    store(visible, general)
    store(hidden, general, hidden=True)
    store(private, room)
    hidden_reply = reply(visible, created_at=4_003)
    store(hidden_reply, general, hidden=True)

    async def scenario() -> list[str]:
        client = await connected_client(live_relay)
        try:
            return await fetch_ids(client, {})
        finally:
            await close_client(client)

    assert asyncio.run(scenario()) == [visible.id]


def test_nip11_document_parses_with_the_peer_library(live_relay, settings):
    make_board(thread_price_msat=10_000, reply_price_msat=1_000)
    request = urllib.request.Request(
        live_relay.http_url, headers={"Accept": "application/nostr+json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read().decode()
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Content-Type"].startswith("application/nostr+json")

    document = ns.RelayInformationDocument.from_json(body)
    assert {1, 9, 11, 45, 57} <= set(document.supported_nips())
    limitation = document.limitation()
    assert limitation.max_subid_length == RelayLimits().max_subid_length
    assert limitation.restricted_writes is True
    assert limitation.payment_required is False
    publication = document.fees().publication
    assert [(fee.kinds, fee.amount, fee.unit) for fee in publication] == [
        ([11], 10_000, "msats"),
        ([1111], 1_000, "msats"),
        ([0], 5_000, "msats"),
        ([5], 1_000, "msats"),
        ([1010], 2_000, "msats"),
    ]
