"""NIP-57: a paid zap's receipt also goes to the relays its zap request named (a real local
websocket relay here), once, and never to a private address unless allowed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from urllib.parse import quote

import nostr_sdk as ns
import pytest
from websockets.sync.server import serve

from forum import nostr, tasks
from forum.models import Event, ZapReceipt
from tests.conftest import record_invoice

pytestmark = pytest.mark.django_db(transaction=True)


class Relay:
    """A websocket relay that keeps every EVENT it is sent and answers OK (or refuses)."""

    def __init__(self, *, accept: bool = True) -> None:
        self.received: list[dict] = []
        self.accept = accept
        self.server = serve(self.handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, socket) -> None:
        for text in socket:
            message = json.loads(text)
            if message[0] == "EVENT":
                self.received.append(message[1])
                answer = "" if self.accept else "blocked: no zaps here"
                socket.send(json.dumps(["OK", message[1]["id"], self.accept, answer]))


@pytest.fixture
def relays(settings) -> Iterator[list[Relay]]:
    settings.LNURL_ALLOW_PRIVATE = True
    started = [Relay(), Relay(accept=False)]
    yield started
    for relay in started:
        relay.server.shutdown()


def zap_paid(client, tipper, forum_node, key: str, relay_urls: list[str]) -> ZapReceipt:
    thread = nostr.thread_event(key, board="tips", title="Zap me", content="c")
    tipper.post(thread, 10_000)
    assert Event.objects.get(event_id=thread.id).state == "published"
    tags = [["p", thread.pubkey], ["e", thread.id], ["relays", *relay_urls]]
    builder = ns.EventBuilder(ns.Kind(9734), "").tags([ns.Tag.parse(t) for t in tags])
    text = builder.finalize(ns.Keys.generate()).as_json()
    answer = client.get(f"/lnurlp/e/{thread.id}/callback?amount=2000&nostr={quote(text)}")
    payment = forum_node.sender("bob").pay_invoice(answer.json()["pr"])
    assert payment.succeeded
    record_invoice(forum_node.client.lookup_invoice(payment.payment_hash), forum_node.pubkey)
    return ZapReceipt.objects.get(payment_hash=payment.payment_hash)


def test_the_receipt_goes_to_the_requests_relays_once(
    client, tipper, forum_node, board, author_key, relays
):
    taken, refusing = relays
    own = "ws://testserver/relay"  # this forum's relay already has it
    receipt = zap_paid(client, tipper, forum_node, author_key, [taken.url, refusing.url, own])

    # With a worker the batch's handler queued it already; embedded, the upkeep timer sends it.
    tasks.zap_receipts_publish_due()

    receipt.refresh_from_db()
    assert [event["id"] for event in taken.received] == [receipt.receipt_id]
    assert taken.received[0] == json.loads(receipt.raw_json)
    assert receipt.relays_sent_at is not None
    assert receipt.relays_result == {
        taken.url: "ok",
        refusing.url: "refused: blocked: no zaps here",
    }
    # Once: nothing is due any more, and a second send does nothing.
    assert tasks.zap_receipts_publish_due() == 0
    assert tasks.zap_receipt_publish(receipt.receipt_id) == 0
    assert len(taken.received) == 1


def test_a_private_relay_is_not_contacted_unless_allowed(
    client, tipper, forum_node, board, author_key, relays, settings
):
    taken, _ = relays
    settings.LNURL_ALLOW_PRIVATE = False
    receipt = zap_paid(client, tipper, forum_node, author_key, [taken.url])
    tasks.zap_receipts_publish_due()
    receipt.refresh_from_db()
    assert taken.received == []
    assert "private network" in receipt.relays_result[taken.url]
