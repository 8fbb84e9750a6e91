"""LNURL-pay (LUD-06), Lightning Addresses (LUD-16) and NIP-57 zap requests at the callback.

Invoices are read by an independent decoder (PyPI `bolt11`), paid over simnet's real gRPC by
another node, and recorded as the listener records them: the tip then goes through the one
pipeline (ledger -> reconcile -> the tip verdict -> the thread's sats and the forward).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

import bolt11
import nostr_sdk as ns
import pytest

from forum import nostr
from forum.models import (
    Author,
    Board,
    Event,
    InvoiceIntent,
    LedgerEntry,
    Thread,
    TipForward,
    ZapReceipt,
)
from forum.relay_key import relay_pubkey
from tests.conftest import record_invoice

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "testserver"


@pytest.fixture(autouse=True)
def _fresh_tip_invoice_budget() -> None:
    """The per-client budget lives in Redis when there is one: start each test with it full."""
    from forum.services.moderation import throttle

    for client_ip in ("127.0.0.1", ""):
        key = throttle.counter_key("tip-invoice-client", throttle.address_bucket(client_ip))
        throttle.attempt_counter().clear(key)


def published_thread(
    tipper, key: str, *, ln_node: str | None = None, title: str = "Zap me", paid: int = 10_000
):
    event = nostr.thread_event(key, board="tips", title=title, content="c", ln_node=ln_node)
    tipper.post(event, paid)
    assert Event.objects.get(event_id=event.id).state == "published"
    return event


def zap_request(
    *,
    author: str,
    post: str | None,
    amount_msat: int | None,
    keys: ns.Keys | None = None,
    relays: tuple[str, ...] = ("wss://relay.example",),
) -> str:
    tags = [["p", author], ["relays", *relays]]
    if post:
        tags.append(["e", post])
    if amount_msat is not None:
        tags.append(["amount", str(amount_msat)])
    builder = ns.EventBuilder(ns.Kind(9734), "Zap!").tags([ns.Tag.parse(t) for t in tags])
    return builder.finalize(keys or ns.Keys.generate()).as_json()


def pay_and_record(forum_node, payment_request: str, *, sender: str = "bob"):
    """Pay the invoice from another simnet node and record it as the listener does."""
    payment = forum_node.sender(sender).pay_invoice(payment_request)
    assert payment.succeeded, payment.failure_reason
    invoice = forum_node.client.lookup_invoice(payment.payment_hash)
    entry, _ = record_invoice(invoice, forum_node.pubkey)
    return LedgerEntry.objects.get(pk=entry.pk), payment


def test_an_authors_lightning_address_answers_a_pay_request(client, tipper, board, author_key):
    published_thread(tipper, author_key)
    npub = nostr.npub_encode(nostr.public_key(author_key))
    response = client.get(f"/.well-known/lnurlp/{npub}")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    info = response.json()
    assert info["tag"] == "payRequest"
    assert info["callback"] == f"http://{HOST}/lnurlp/{npub}/callback"
    assert info["minSendable"] == 1000 and info["maxSendable"] >= 1000
    assert ["text/identifier", f"{npub}@{HOST}"] in json.loads(info["metadata"])
    assert info["allowsNostr"] is True and info["nostrPubkey"] == relay_pubkey()


def test_a_tip_through_the_address_lands_on_the_authors_newest_post_and_is_forwarded(
    client, tipper, forum_node, simnet, board, author_key, settings
):
    settings.TIP_FORUM_SHARE_PERCENT = 10
    published_thread(tipper, author_key, title="Older")
    alice = simnet.nodes["alice"].pubkey
    newest = published_thread(tipper, author_key, title="Newest", ln_node=alice, paid=100_000)
    npub = nostr.npub_encode(nostr.public_key(author_key))
    info = client.get(f"/.well-known/lnurlp/{npub}").json()

    answer = client.get(f"/lnurlp/{npub}/callback?amount=21000").json()
    assert answer["routes"] == []
    decoded = bolt11.decode(answer["pr"])
    assert decoded.amount_msat == 21_000
    # LUD-06: the invoice commits to the metadata the first answer gave.
    expected = hashlib.sha256(info["metadata"].encode()).hexdigest()
    assert decoded.description_hash == expected

    entry, _ = pay_and_record(forum_node, answer["pr"])
    assert (entry.purpose, entry.event_id, entry.reconcile_state) == ("tip", newest.id, "done")
    assert Thread.objects.get(event__event_id=newest.id).sats_msat == 100_000 + 21_000
    forward = TipForward.objects.get(tip_payment_hash=entry.payment_hash)
    assert (forward.state, forward.amount_msat) == ("sent", 18_000)


def test_a_posts_own_pay_endpoint_and_its_invoice(client, tipper, forum_node, board, author_key):
    thread = published_thread(tipper, author_key)
    info = client.get(f"/lnurlp/e/{thread.id}").json()
    assert info["callback"] == f"http://{HOST}/lnurlp/e/{thread.id}/callback"
    assert "Zap me" in info["metadata"]
    answer = client.get(f"/lnurlp/e/{thread.id}/callback?amount=5000").json()
    decoded = bolt11.decode(answer["pr"])
    assert decoded.amount_msat == 5000
    assert decoded.description_hash == hashlib.sha256(info["metadata"].encode()).hexdigest()
    pay_and_record(forum_node, answer["pr"])
    assert Thread.objects.get(event__event_id=thread.id).sats_msat == 15_000


def test_a_zap_request_gets_an_invoice_committing_to_it_and_a_signed_receipt(
    client, tipper, forum_node, board, author_key
):
    thread = published_thread(tipper, author_key)
    author = nostr.public_key(author_key)
    sender = ns.Keys.generate()
    text = zap_request(author=author, post=thread.id, amount_msat=21_000, keys=sender)
    npub = nostr.npub_encode(author)
    answer = client.get(f"/lnurlp/{npub}/callback?amount=21000&nostr={quote(text)}").json()
    decoded = bolt11.decode(answer["pr"])
    # NIP-57: the description hash is the zap request's, not the metadata's.
    assert decoded.description_hash == hashlib.sha256(text.encode()).hexdigest()
    assert decoded.amount_msat == 21_000

    entry, payment = pay_and_record(forum_node, answer["pr"])
    assert entry.event_id == thread.id
    receipt = ZapReceipt.objects.get(payment_hash=entry.payment_hash)
    event = ns.Event.from_json(receipt.raw_json)
    assert event.verify() and event.kind().as_u16() == 9735
    assert event.author().to_hex() == relay_pubkey()
    tags = {tag[0]: tag[1] for tag in json.loads(receipt.raw_json)["tags"]}
    assert tags["p"] == author and tags["e"] == thread.id
    assert tags["P"] == sender.public_key().to_hex()
    assert tags["bolt11"] == answer["pr"] and tags["description"] == text
    assert hashlib.sha256(bytes.fromhex(tags["preimage"])).hexdigest() == payment.payment_hash


def test_a_tip_without_zap_request_has_no_receipt(client, tipper, forum_node, board, author_key):
    thread = published_thread(tipper, author_key)
    answer = client.get(f"/lnurlp/e/{thread.id}/callback?amount=2000").json()
    pay_and_record(forum_node, answer["pr"])
    assert not ZapReceipt.objects.exists()


def refused(client, url: str) -> dict:
    before = InvoiceIntent.objects.count()
    response = client.get(url)
    assert 400 <= response.status_code < 500
    body = response.json()
    assert body["status"] == "ERROR" and body["reason"]
    assert InvoiceIntent.objects.count() == before  # no invoice issued, nothing to pay
    return body


def test_hostile_zap_requests_are_refused_with_reasons(client, tipper, board, author_key):
    thread = published_thread(tipper, author_key)
    author = nostr.public_key(author_key)
    npub = nostr.npub_encode(author)
    base = f"/lnurlp/{npub}/callback?amount=21000&nostr="

    good = json.loads(zap_request(author=author, post=thread.id, amount_msat=21_000))
    forged = dict(good, sig=("1" if good["sig"][0] != "1" else "2") + good["sig"][1:])
    body = refused(client, base + quote(json.dumps(forged)))
    assert body["code"] == "bad_signature" and "signature" in body["reason"]

    wrong = zap_request(author=author, post=thread.id, amount_msat=1_000)
    body = refused(client, base + quote(wrong))
    assert body["code"] == "wrong_amount" and "1000 msat" in body["reason"]

    stranger = nostr.public_key(nostr.generate_secret_key())
    foreign = zap_request(author=stranger, post=thread.id, amount_msat=21_000)
    body = refused(client, base + quote(foreign))
    assert body["code"] == "foreign_p_tag" and "p tag" in body["reason"]
    # The post's own endpoint refuses a foreign p tag just the same.
    body = refused(client, f"/lnurlp/e/{thread.id}/callback?amount=21000&nostr={quote(foreign)}")
    assert body["code"] == "foreign_p_tag"

    other_post = zap_request(author=author, post="ab" * 32, amount_msat=21_000)
    body = refused(client, base + quote(other_post))
    assert body["code"] == "unknown_target"


def test_amounts_outside_the_bounds_and_unknown_targets_are_refused(
    client, tipper, board, author_key, settings
):
    settings.TIP_MAX_MSAT = 100_000
    thread = published_thread(tipper, author_key)
    assert refused(client, f"/lnurlp/e/{thread.id}/callback?amount=999")["code"] == "bad_amount"
    assert refused(client, f"/lnurlp/e/{thread.id}/callback?amount=100001")["code"] == "bad_amount"
    assert refused(client, f"/lnurlp/e/{thread.id}/callback?amount=x")["code"] == "bad_amount"
    assert refused(client, f"/lnurlp/e/{'cd' * 32}")["code"] == "unknown_target"
    assert refused(client, "/.well-known/lnurlp/bob")["code"] == "unknown_name"
    nobody = nostr.npub_encode(nostr.public_key(nostr.generate_secret_key()))
    assert refused(client, f"/.well-known/lnurlp/{nobody}")["code"] == "no_posts"


def test_a_hidden_post_takes_no_tip_invoice(client, tipper, board, author_key):
    thread = published_thread(tipper, author_key)
    Thread.objects.filter(event__event_id=thread.id).update(is_hidden=True)
    body = refused(client, f"/lnurlp/e/{thread.id}/callback?amount=2000")
    assert body["code"] == "target_hidden"


def test_the_tip_button_api_gives_an_invoice_with_a_memo_and_a_qr(
    client, tipper, forum_node, board, author_key
):
    thread = published_thread(tipper, author_key)
    response = client.post(
        "/api/tip",
        data=json.dumps({"event_id": thread.id, "amount_sats": 42}),
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    decoded = bolt11.decode(body["payment_request"])
    assert decoded.amount_msat == 42_000 and "Zap me" in decoded.description
    assert decoded.payment_hash == body["payment_hash"]
    assert client.get(body["qr_url"])["Content-Type"] == "image/svg+xml"
    pay_and_record(forum_node, body["payment_request"])
    assert Thread.objects.get(event__event_id=thread.id).sats_msat == 52_000
    bad = client.post(
        "/api/tip",
        data=json.dumps({"event_id": thread.id, "amount_sats": "lots"}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and "amount_sats" in bad.json()["error"]


def test_the_author_page_shows_the_address_that_answers(client, tipper, board, author_key):
    published_thread(tipper, author_key)
    npub = nostr.npub_encode(nostr.public_key(author_key))
    page = client.get(f"/a/{npub}/").content.decode()
    assert f"{npub}@{HOST}" in page
    name, _, host = f"{npub}@{HOST}".partition("@")
    assert client.get(f"/.well-known/lnurlp/{name}", HTTP_HOST=host).json()["tag"] == "payRequest"


def test_tip_invoices_are_rate_limited_per_client(client, tipper, board, author_key, settings):
    settings.TIP_INVOICE_MAX_PER_CLIENT = 2
    thread = published_thread(tipper, author_key)
    url = f"/lnurlp/e/{thread.id}/callback?amount=1000"
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    body = refused(client, url)
    assert body["code"] == "rate_limited" and "too many tip invoices" in body["reason"]


def test_a_private_rooms_post_has_no_public_pay_endpoint(client, tipper, board, author_key):
    thread = published_thread(tipper, author_key)
    Board.objects.filter(slug="tips").update(password_verifier="x", is_listed=False)
    assert refused(client, f"/lnurlp/e/{thread.id}")["code"] == "not_public"
    npub = nostr.npub_encode(nostr.public_key(author_key))
    assert refused(client, f"/.well-known/lnurlp/{npub}")["code"] == "no_posts"


def test_a_name_given_here_is_a_lightning_address_too(client, tipper, board, author_key):
    thread = published_thread(tipper, author_key)
    Author.objects.filter(pubkey=thread.pubkey).update(nip05_local="carol")
    info = client.get("/.well-known/lnurlp/carol").json()
    assert ["text/identifier", f"carol@{HOST}"] in json.loads(info["metadata"])
    assert info["callback"] == f"http://{HOST}/lnurlp/carol/callback"
    answer = client.get("/lnurlp/carol/callback?amount=3000").json()
    assert bolt11.decode(answer["pr"]).amount_msat == 3000
