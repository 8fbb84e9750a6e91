"""A tip's author share forwarded to the author's Lightning Address (kind 0 `lud16`).

The address's LNURL-pay server is a real local HTTP server whose invoices come from the
author's own simnet node (`bob`), so the forward is a real BOLT 11 payment over gRPC.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from forum import nostr, tasks
from forum.models import Author, Event, LedgerEntry, TipForward
from forum.permissions import MODERATOR_GROUP
from forum.services import node, tips
from tests.forum.tips.conftest import local_balance_msat

pytestmark = pytest.mark.django_db(transaction=True)

METADATA = json.dumps([["text/plain", "carol's wallet"], ["text/identifier", "carol@wallet"]])


@dataclass
class WalletServer:
    """A LUD-16 server for `carol`; `mode` makes it misbehave in one way at a time."""

    port: int = 0
    mode: str = "ok"
    asked: list[int] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"carol@127.0.0.1:{self.port}"


@pytest.fixture
def wallet_server(simnet, settings) -> Iterator[WalletServer]:
    settings.LNURL_ALLOW_PRIVATE = True
    settings.LNURL_FETCH_MAX_BYTES = 4096
    state = WalletServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def answer(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path == "/.well-known/lnurlp/carol":
                if state.mode == "down":
                    return self.answer(b'{"status":"ERROR","reason":"wallet offline"}', 503)
                if state.mode == "huge":
                    return self.answer(b'{"pad":"' + b"x" * 10_000 + b'"}')
                info = {
                    "tag": "payRequest",
                    "callback": f"http://127.0.0.1:{state.port}/cb",
                    "minSendable": 1000,
                    "maxSendable": 10**9,
                    "metadata": METADATA,
                }
                return self.answer(json.dumps(info).encode())
            if url.path == "/cb":
                amount = int(parse_qs(url.query)["amount"][0])
                state.asked.append(amount)
                if state.mode == "short":
                    amount -= 1000  # a server that cheats on the amount
                described = METADATA if state.mode != "other-hash" else "something else"
                invoice = node.client("bob").add_invoice(
                    value_msat=amount,
                    description_hash=hashlib.sha256(described.encode()).digest(),
                )
                return self.answer(json.dumps({"pr": invoice.payment_request}).encode())
            return self.answer(b"{}", 404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def author_with_address(tipper, key: str, address: str):
    """A published thread whose author's profile has a `lud16` and whose post names no node."""
    event = nostr.thread_event(key, board="tips", title="Pay my address", content="c")
    tipper.post(event, 10_000)
    assert Event.objects.get(event_id=event.id).state == "published"
    # The author's current kind 0 profile (forum.ingest.kinds copies its lud16 here).
    Author.objects.filter(pubkey=event.pubkey).update(profile_lud16=address)
    return event


def test_the_share_goes_to_the_lightning_address_by_invoice(
    tipper, board, author_key, wallet_server, settings
):
    settings.TIP_FORUM_SHARE_PERCENT = 10
    thread = author_with_address(tipper, author_key, wallet_server.address)
    bob = node.client("bob")
    before = local_balance_msat(bob)
    tip = tipper.tip(thread.id, 50_000, sender="alice")
    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert (forward.state, forward.address, forward.amount_msat) == (
        "sent",
        wallet_server.address,
        45_000,
    )
    assert wallet_server.asked == [45_000]
    assert local_balance_msat(bob) - before == 45_000
    out = forward.forward_entry
    assert (out.purpose, out.amount_msat, out.counterparty) == (
        "tip_forward",
        45_000,
        bob.get_info().identity_pubkey,
    )
    assert out.payment_hash == forward.payment_hash
    # Never twice: a moderator's retry finds it sent.
    assert tips.tip_forward_attempt(tip_payment_hash=tip.payment_hash, force=True).state == "sent"
    assert local_balance_msat(bob) - before == 45_000


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("down", "wallet offline"),
        ("huge", "more than 4096 bytes"),
        ("short", "not 9000 msat"),
        ("other-hash", "does not commit to its metadata"),
    ],
)
def test_a_misbehaving_address_is_retried_and_shown_to_moderators(
    client, tipper, board, author_key, wallet_server, mode, says
):
    wallet_server.mode = mode
    thread = author_with_address(tipper, author_key, wallet_server.address)
    bob = node.client("bob")
    before = local_balance_msat(bob)
    tip = tipper.tip(thread.id, 10_000)
    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert (forward.state, forward.attempts) == ("pending", 1)
    assert says in forward.last_error and forward.forward_entry is None
    assert local_balance_msat(bob) == before  # nothing paid to a wrong invoice

    moderator = User.objects.create_user("mod", password="x")
    moderator.groups.add(Group.objects.get_or_create(name=MODERATOR_GROUP)[0])
    client.force_login(moderator)
    page = client.get("/mod/tips/").content.decode()
    assert f'data-tip-forward="{forward.pk}"' in page
    assert wallet_server.address in page  # where it goes, and why it did not

    # The wallet is fixed; the next due attempt pays it.
    wallet_server.mode = "ok"
    TipForward.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.tips_forward_due() == 1
    forward.refresh_from_db()
    assert (forward.state, forward.attempts) == ("sent", 2)
    assert local_balance_msat(bob) - before == 9_000
    assert LedgerEntry.objects.filter(purpose="tip_forward").count() == 1


def test_an_address_on_a_private_network_is_refused(
    tipper, board, author_key, wallet_server, settings
):
    settings.LNURL_ALLOW_PRIVATE = False
    thread = author_with_address(tipper, author_key, wallet_server.address)
    tip = tipper.tip(thread.id, 10_000)
    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert forward.state == "pending" and "private network" in forward.last_error
    assert wallet_server.asked == []  # the forum never fetched it


def test_the_posts_ln_tag_wins_and_an_address_on_this_forum_is_ignored(
    tipper, simnet, board, wallet_server, settings
):
    key = nostr.generate_secret_key()
    alice = simnet.nodes["alice"].pubkey
    event = nostr.thread_event(key, board="tips", title="Node", content="c", ln_node=alice)
    tipper.post(event, 10_000)
    Author.objects.filter(pubkey=event.pubkey).update(profile_lud16=wallet_server.address)
    tip = tipper.tip(event.id, 10_000)
    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert (forward.destination, forward.address) == (alice, "")

    own = nostr.generate_secret_key()
    thread = author_with_address(
        tipper, own, f"{nostr.npub_encode(nostr.public_key(own))}@testserver"
    )
    tip = tipper.tip(thread.id, 10_000)
    assert not TipForward.objects.filter(tip_payment_hash=tip.payment_hash).exists()
