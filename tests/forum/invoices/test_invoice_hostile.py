"""Posts by invoice, the hard cases: what an independent BOLT 11 decoder reads in our invoices,
an invoice asked for an invalid event, an invoice paid after it expired, two payments racing
for one held post, the rate limit, and the node runner's client (`post --invoice`)."""

from __future__ import annotations

import hashlib
import json

import pytest

from forum import client as forum_client
from forum import nostr
from forum.ingest.invoices import intent_preimage
from forum.models import Event, InvoiceIntent, LedgerEntry, Rejection
from tests.forum.hold.conftest import wait_for
from tests.forum.invoices.conftest import ask_invoice, pay_invoice

pytestmark = pytest.mark.django_db(transaction=True)

CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def test_an_independent_decoder_reads_amount_hash_memo_and_expiry(
    hold, board, alice_key, client, settings
):
    import bolt11  # PyPI's decoder: nothing of ours

    settings.INVOICE_EXPIRY_SECONDS = 420
    thread = nostr.thread_event(alice_key, board="general", title="Decode me", content="hi")
    body = ask_invoice(client, thread).json()
    decoded = bolt11.decode(body["payment_request"])
    assert decoded.amount_msat == 10_000 == body["amount_msat"]
    assert decoded.payment_hash == body["payment_hash"]
    assert decoded.description == body["memo"]
    assert '"Decode me"' in decoded.description and "general" in decoded.description
    assert thread.id[:12] in decoded.description
    assert decoded.expiry == 420
    assert decoded.payee == hold.pubkey  # signed by the forum's node
    intent = InvoiceIntent.objects.get(payment_hash=body["payment_hash"])
    # The hash commits to the event: sha256 of HMAC(SECRET_KEY, "post:<event id>:0").
    assert intent.preimage_key == f"post:{thread.id}:0"
    preimage = intent_preimage(intent.preimage_key)
    assert hashlib.sha256(preimage).hexdigest() == decoded.payment_hash
    assert json.loads(intent.event_json)["id"] == thread.id


@pytest.mark.parametrize(
    ("tamper", "reason", "words"),
    [
        (lambda e: {**e, "sig": "00" * 64}, "bad_signature", "signature does not verify"),
        (lambda e: {**e, "content": "changed"}, "bad_id", ""),
        (lambda e: {**e, "tags": [["title", "x"], ["h", "nowhere"]]}, "bad_id", ""),
        (lambda e: {"id": e["id"], "kind": "eleven"}, "malformed", "could not be read"),
    ],
)
def test_no_invoice_for_an_event_that_does_not_verify(
    hold, board, alice_key, client, tamper, reason, words
):
    thread = nostr.thread_event(alice_key, board="general", title="T", content="c")
    newest = _newest_invoice(hold)
    answer = ask_invoice(client, tamper(json.loads(thread.to_json())))
    assert answer.status_code == 400
    assert answer.json()["reason"] == reason and words in answer.json()["error"]
    assert not InvoiceIntent.objects.exists()
    assert _newest_invoice(hold) == newest  # the node made no invoice


def _newest_invoice(hold) -> int:
    return hold.client.list_invoices(reversed=True, num_max_invoices=1).invoices[0].add_index


def test_no_invoice_for_an_event_the_verdict_refuses(hold, board, alice_key, client):
    from forum.models import Ban

    unknown = nostr.thread_event(alice_key, board="nowhere", title="T", content="c")
    answer = ask_invoice(client, unknown)
    assert answer.status_code == 400 and answer.json()["reason"] == "unknown_board"
    assert "there is no board 'nowhere'" in answer.json()["error"]
    too_long = nostr.thread_event(alice_key, board="general", title="T", content="x" * 5_001)
    answer = ask_invoice(client, too_long)
    assert (
        answer.json()["reason"] == "too_large"
        and "over the limit of 5000" in answer.json()["error"]
    )
    Ban.objects.create(pubkey=unknown.pubkey, reason="spam")
    banned = nostr.thread_event(alice_key, board="general", title="T", content="c")
    assert ask_invoice(client, banned).json()["reason"] == "banned"
    assert not InvoiceIntent.objects.exists()


def test_an_invoice_paid_after_it_expired_is_refused_and_says_expired(
    listening, board, alice_key, client, settings
):
    settings.INVOICE_EXPIRY_SECONDS = 2
    thread = nostr.thread_event(alice_key, board="general", title="Late", content="c")
    body = ask_invoice(client, thread).json()
    intent = InvoiceIntent.objects.get(payment_hash=body["payment_hash"])
    wait_for(
        lambda: InvoiceIntent.objects.get(pk=intent.pk).state == InvoiceIntent.State.EXPIRED,
        what="the reviewer to close the expired invoice",
    )
    status = client.get(f"/api/status/{body['payment_hash']}").json()
    assert status["state"] == "rejected" and status["reason"] == "invoice_expired"
    assert status["charged"] is False and "expired before it was paid" in status["message"]
    assert listening.client.lookup_invoice(body["payment_hash"]).state == "CANCELED"

    before = listening.balances_msat("bob")
    # A wallet that ignores the expiry (pays the hash directly): the node refuses the HTLC.
    from forum.services import node
    from lightning.rpc import router_pb2

    bob = node.client("bob")
    request = router_pb2.SendPaymentRequest(
        dest=bytes.fromhex(listening.pubkey),
        amt_msat=10_000,
        payment_hash=bytes.fromhex(body["payment_hash"]),
        fee_limit_msat=1_000,
        timeout_seconds=10,
        no_inflight_updates=True,
    )
    payment = bob._send_payment(request, 10)
    assert payment.status == "FAILED"
    assert listening.balances_msat("bob") == before
    # An honest wallet refuses it before paying.
    with pytest.raises(Exception, match="expired"):
        pay_invoice(listening, body["payment_request"], sender="bob").result(timeout=20)
    assert not LedgerEntry.objects.filter(payment_hash=body["payment_hash"]).exists()
    # A new invoice for the same event is a new hash (the old one is spent).
    again = ask_invoice(client, thread)
    assert again.status_code == 201 and again.json()["payment_hash"] != body["payment_hash"]


def test_two_payments_racing_for_one_held_post_charge_once(listening, board, alice_key, client):
    """The same post paid by its invoice and, at the same moment, by a keysend carrying it (a
    second wallet): one is settled, the other cancelled as a duplicate; the post is charged
    once. A second payer of the same invoice is refused by the node (already accepted)."""
    thread = nostr.thread_event(alice_key, board="general", title="Race", content="c")
    body = ask_invoice(client, thread).json()
    bob_before = listening.balances_msat("bob")
    alice_before = listening.balances_msat("alice")
    by_invoice = pay_invoice(listening, body["payment_request"], sender="bob")
    by_keysend = listening.post(thread, 10_000, sender="alice")
    same_invoice = pay_invoice(listening, body["payment_request"], sender="alice")
    results = [f.result(timeout=30) for f in (by_invoice, by_keysend)]
    try:
        third = same_invoice.result(timeout=30)
    except Exception:  # refused before paying (the hash is already in flight): fine too
        third = None
    assert third is None or not third.succeeded
    assert sum(p.succeeded for p in results) == 1, results
    wait_for(
        lambda: Event.objects.filter(event_id=thread.id, state="published").exists(),
        what="the thread published",
    )
    settled = LedgerEntry.objects.filter(event_id=thread.id, status=LedgerEntry.Status.SETTLED)
    assert settled.count() == 1 and Event.objects.get(event_id=thread.id).paid_msat == 10_000
    loser = next(p for p in results if not p.succeeded)
    assert loser.failure_reason == CANCELED
    rejection = Rejection.objects.get(ledger_entry__payment_hash=loser.payment_hash)
    assert rejection.reason == "duplicate"
    spent = sum(
        bob_before[c][0] - now for c, (now, _) in listening.balances_msat("bob").items()
    ) + sum(alice_before[c][0] - now for c, (now, _) in listening.balances_msat("alice").items())
    assert spent >= 10_000 and spent < 20_000  # one price (plus a route fee at most)


def test_invoice_requests_are_rate_limited_per_client_and_per_pubkey(hold, board, client, settings):
    settings.INVOICE_MAX_PER_CLIENT = 3
    settings.INVOICE_MAX_PER_PUBKEY = 2
    key = nostr.generate_secret_key()

    def thread(secret: str, n: int) -> nostr.Event:
        return nostr.thread_event(secret, board="general", title=f"T{n}", content=f"c{n}")

    first = thread(key, 0)  # signed once: the same event when asked for again below
    assert [ask_invoice(client, e).status_code for e in (first, thread(key, 1))] == [201, 201]
    refused = ask_invoice(client, thread(key, 2))
    assert refused.status_code == 429 and refused.json()["reason"] == "rate_limited"
    assert "too many invoices requested for this key" in refused.json()["error"]
    assert int(refused["Retry-After"]) > 0
    # Asking again for an invoice already issued costs nothing: the same invoice.
    assert ask_invoice(client, first).status_code == 200
    other = nostr.generate_secret_key()
    assert ask_invoice(client, thread(other, 0)).status_code == 201
    flood = ask_invoice(client, thread(nostr.generate_secret_key(), 0))
    assert flood.status_code == 429 and "from your address" in flood.json()["error"]
    # Another address is not slowed down by this one.
    elsewhere = ask_invoice(client, thread(nostr.generate_secret_key(), 0), REMOTE_ADDR="10.9.8.7")
    assert elsewhere.status_code == 201
    assert InvoiceIntent.objects.count() == 4


def test_client_posts_by_invoice_paid_from_its_node(
    listening, board, live_server, tmp_path, capsys
):
    key_file = tmp_path / "my.key"
    assert forum_client.main(["keygen", "--key-file", str(key_file)]) == 0
    args = [
        "post",
        "--invoice",
        "--board",
        "general",
        "--title",
        "From the terminal",
        "--content",
        "paid by invoice",
        "--key-file",
        str(key_file),
        "--lndconnect",
        listening.net.nodes["alice"].lndconnect_uri(),
        "--forum-url",
        live_server.url,
        "--wait-seconds",
        "20",
    ]
    code = forum_client.main(args)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "invoice for 10 sats" in out and "lnbcrt" in out
    assert f"published: {live_server.url}/t/" in out
    # Too long for the board: refused before any invoice, nothing paid.
    args[args.index("paid by invoice")] = "x" * 5_001
    code = forum_client.main(args)
    out, err = capsys.readouterr()
    assert code == 1 and "over the limit of 5,000" in err + out, out + err


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ('{"event": {"kind": Infinity}}', 400, "Infinity is not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, 400, "bad request body"),
        ("[1, 2]", 400, "must be a JSON object"),
        ("{}", 400, "expected {event"),
        ('{"event": "' + "x" * 300_000 + '"}', 413, "too large"),
    ],
)
def test_hostile_bodies_get_a_reason_never_a_500(hold, board, client, body, status, words):
    answer = client.post("/api/invoice", body, content_type="application/json")
    assert answer.status_code == status and words in answer.json()["error"], answer.content
    assert client.get("/api/invoice").status_code == 405  # POST only
    assert not InvoiceIntent.objects.exists()


def test_no_invoice_for_a_reply_whose_thread_is_not_published(hold, board, alice_key, client):
    thread = nostr.thread_event(alice_key, board="general", title="Not yet", content="c")
    reply = nostr.reply_event(alice_key, board="general", root=thread, content="too early")
    answer = ask_invoice(client, reply)
    assert answer.status_code == 409 and answer.json()["reason"] == "orphan"
    assert "not published yet" in answer.json()["error"]
    assert not InvoiceIntent.objects.exists()


def test_a_hold_intent_may_carry_a_description_hash(hold, board, alice_key):
    """LNURL-pay and zaps commit to a description by its hash: hold invoices can too."""
    import hashlib as h

    import bolt11

    from forum import protocol
    from forum.services.invoices import intent_issue

    thread = nostr.thread_event(alice_key, board="general", title="Hashed", content="c")
    described = h.sha256(b'[["text/plain","a post"]]').digest()
    intent = intent_issue(
        purpose=InvoiceIntent.Purpose.POST,
        preimage_key=f"test:{thread.id}",
        hold_invoice=True,
        event_id=thread.id,
        records=protocol.encode_event(thread),
        amount_msat=10_000,
        description_hash=described,
    )
    decoded = bolt11.decode(intent.payment_request)
    assert decoded.description_hash == described.hex()
    assert hold.client.lookup_invoice(intent.payment_hash).state == "OPEN"
    hold.client.cancel_invoice(intent.payment_hash)
