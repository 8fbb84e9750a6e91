"""A Nostr client (nostr-sdk) zaps a post: LNURL-pay, a zap request, an invoice paid over simnet,
and the kind 9735 receipt read live and stored from `/relay`, signed by the key that the LNURL
answer and NIP-11 (`self`) name."""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
from datetime import timedelta
from urllib.parse import quote

import bolt11
import nostr_sdk as ns
import pytest
from django.db import connections

from forum import nostr
from forum.models import Board, Thread
from tests.conftest import record_invoice
from tests.forum.relay.test_peer import close_client, connected_client, next_message, until_eose
from tests.forum.tips.conftest import Tipper
from tests.forum.tips.test_lnurl import _fresh_tip_invoice_budget  # noqa: F401 (autouse)

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = timedelta(seconds=5)


def http_json(url: str, headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_nostr_client_zaps_a_post_and_reads_the_receipt_from_the_relay(core_feed, forum_node):
    Board.objects.create(slug="tips", title="Tips", thread_price_msat=10_000)
    author_key = nostr.generate_secret_key()
    author = nostr.public_key(author_key)
    post = nostr.thread_event(author_key, board="tips", title="Zap me", content="c")
    Tipper(forum_node).post(post, 10_000)
    base = f"http://127.0.0.1:{core_feed.port}"
    npub = nostr.npub_encode(author)
    sender = ns.Keys.generate()

    def zap() -> tuple[dict, str, str]:
        """What a client does: the author's address, a zap request, the invoice, the payment."""
        try:
            info = http_json(f"{base}/.well-known/lnurlp/{npub}")
            assert info["allowsNostr"] is True
            tags = [
                ["p", author],
                ["e", post.id],
                ["amount", "21000"],
                ["relays", core_feed.ws_url],
                ["lnurl", nostr.bech32_encode("lnurl", info["callback"].encode())],
            ]
            builder = ns.EventBuilder(ns.Kind(9734), "for the post")
            text = builder.tags([ns.Tag.parse(t) for t in tags]).finalize(sender).as_json()
            answer = http_json(f"{info['callback']}?amount=21000&nostr={quote(text)}")
            decoded = bolt11.decode(answer["pr"])
            assert decoded.description_hash == hashlib.sha256(text.encode()).hexdigest()
            payment = forum_node.sender("bob").pay_invoice(answer["pr"])
            assert payment.succeeded, payment.failure_reason
            record_invoice(
                forum_node.client.lookup_invoice(payment.payment_hash), forum_node.pubkey
            )
            return info, text, answer["pr"]
        finally:
            connections.close_all()  # this helper thread's connection must not outlive the test

    async def scenario():
        client = await connected_client(core_feed)
        stream = client.notifications()
        try:
            flt = ns.Filter().kinds([ns.Kind(9735)]).event(ns.EventId.parse(post.id))
            await client.subscribe(ns.ReqTarget.auto([flt]), id="zaps")
            assert await until_eose(stream, "zaps") == []
            info, text, pr = await asyncio.to_thread(zap)
            message = await next_message(stream)
            assert isinstance(message, ns.RelayMessageEnum.EVENT_MSG)
            live = message.event
            by_recipient = ns.Filter.from_json(json.dumps({"kinds": [9735], "#p": [author]}))
            stored = await client.fetch_events(ns.ReqTarget.auto([by_recipient]), timeout=WAIT)
            return info, text, pr, live, [event.id().to_hex() for event in stored]
        finally:
            await close_client(client)

    info, text, pr, receipt, stored_ids = asyncio.run(scenario())
    assert receipt.verify() and receipt.kind().as_u16() == 9735
    assert receipt.author().to_hex() == info["nostrPubkey"]
    nip11 = http_json(core_feed.http_url, {"Accept": "application/nostr+json"})
    assert nip11["self"] == info["nostrPubkey"] and 57 in nip11["supported_nips"]
    tags = {tag.to_vec()[0]: tag.to_vec()[1] for tag in receipt.tags()}
    assert tags["p"] == author and tags["e"] == post.id
    assert tags["P"] == sender.public_key().to_hex()
    assert tags["bolt11"] == pr and tags["description"] == text
    assert stored_ids == [receipt.id().to_hex()]
    assert Thread.objects.get(event__event_id=post.id).sats_msat == 31_000
