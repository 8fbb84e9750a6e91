"""Paid writes over the relay, end to end: a stock Nostr client (rust-nostr's `nostr-sdk`)
posts over a real socket to daphne, paying from a balance funded by a keysend over simnet that
the real listener records. What a user notices: `OK true` and the post on the web page, or
`OK false` with a NIP-01 prefix and reason, and a balance that moved only for what was
published."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import nostr_sdk as ns
import pytest
from django.db import connection

from forum import nostr, protocol
from forum.ingest.balance import balance_of
from forum.models import Ban, LedgerEntry, Thread
from forum.relay import selectors
from tests.conftest import need
from tests.forum.relay.conftest import LiveRelay
from tests.forum.relay.factories import make_board

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = timedelta(seconds=15)
SECRET = "0a" * 32
PUB = nostr.public_key(SECRET)


@pytest.fixture
def relay_with_node(live_relay, running_listener, forum_node) -> LiveRelay:
    selectors.reset_node_pubkey_cache()
    yield live_relay
    selectors.reset_node_pubkey_cache()


def fund(forum_node, pubkey: str, amount_msat: int) -> None:
    """A keysend with the credit record, recorded by the running listener."""
    before = balance_of(pubkey).credited_msat
    forum_node.keysend(protocol.encode_credit(pubkey), amount_msat)
    deadline = time.monotonic() + 20
    while balance_of(pubkey).credited_msat < before + amount_msat:
        assert time.monotonic() < deadline, "the listener did not record the credit"
        time.sleep(0.05)


def to_sdk(event: nostr.Event) -> ns.Event:
    return ns.Event.from_json(event.to_json())


async def connected(relay: LiveRelay) -> ns.Client:
    client = ns.Client()
    await client.add_relay(ns.RelayUrl.parse(relay.ws_url), opts=ns.RelayOptions().reconnect(False))
    await client.try_connect(timeout=WAIT)
    return client


async def close(client: ns.Client) -> None:
    await client.disconnect()
    await client.shutdown()


def send_all(relay: LiveRelay, events: list[nostr.Event]) -> list[tuple[bool, str]]:
    """Send each event over one connection, one after the other; (accepted, message) each."""

    async def scenario() -> list[tuple[bool, str]]:
        client = await connected(relay)
        try:
            answers = []
            for event in events:
                output = await client.send_event(to_sdk(event))
                if output.success:
                    answers.append((True, ""))
                else:
                    [message] = output.failed.values()
                    answers.append((False, message))
            return answers
        finally:
            await close(client)

    return asyncio.run(scenario())


def raw_answers(relay: LiveRelay, events: list[dict]) -> list[tuple[bool, str]]:
    """Send event objects as they are (the client's own checks bypassed) over one connection
    and collect the relay's OK answers, in order."""

    async def scenario() -> list[tuple[bool, str]]:
        client = await connected(relay)
        try:
            peer = await client.relay(ns.RelayUrl.parse(relay.ws_url))
            stream = client.notifications()
            answers = []
            for event in events:
                await peer.send_msg(ns.ClientMessage.from_json(json.dumps(["EVENT", event])))
                while True:
                    note = await asyncio.wait_for(stream.next(), 15)
                    if isinstance(note, ns.ClientNotification.MESSAGE):
                        message = note.message.as_enum()
                        if isinstance(message, ns.RelayMessageEnum.OK):
                            answers.append((message.status, message.message))
                            break
            return answers
        finally:
            await close(client)

    return asyncio.run(scenario())


def page(relay: LiveRelay, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{relay.port}{path}", timeout=10) as response:
        return response.read().decode()


def test_fund_then_post_a_thread_and_a_reply_over_the_socket(relay_with_node, forum_node):
    make_board(thread_price_msat=10_000, reply_price_msat=1_000)
    fund(forum_node, PUB, 50_000)
    root = nostr.thread_event(SECRET, board="general", title="From any client", content="hello")
    reply = nostr.reply_event(SECRET, board="general", root=root, content="and a reply")

    assert send_all(relay_with_node, [root, reply]) == [(True, ""), (True, "")]

    html = page(relay_with_node, f"/t/{root.id}/")
    assert "From any client" in html and "and a reply" in html
    # The reply costs 1 sat x 2: the thread counts for escalation, as with keysend posts.
    assert balance_of(PUB).balance_msat == 50_000 - 10_000 - 2_000
    balance = json.loads(page(relay_with_node, f"/api/balance?pubkey={PUB}"))
    assert balance["balance_msat"] == 38_000
    # The ledger explains it: one credit, two spends at their prices.
    rows = LedgerEntry.objects.filter(pubkey=PUB).order_by("settle_index", "pk")
    assert [(r.purpose, r.amount_msat) for r in rows] == [
        ("credit", 50_000),
        ("spend", 10_000),
        ("spend", 2_000),
    ]
    # A replay of a published event is a duplicate: OK true, nothing taken.
    replay = raw_answers(relay_with_node, [root.to_dict()])
    assert replay == [(True, "duplicate: already have this event")]
    assert balance_of(PUB).balance_msat == 38_000


def test_refusals_say_why_and_leave_the_balance_alone(relay_with_node, forum_node):
    make_board(thread_price_msat=10_000, reply_price_msat=1_000)
    fund(forum_node, PUB, 15_000)
    root = nostr.thread_event(SECRET, board="general", title="Open", content="first")
    assert send_all(relay_with_node, [root]) == [(True, "")]
    left = balance_of(PUB).balance_msat
    assert left == 5_000

    # Underpaid: the next thread costs 20 sats (escalation), the balance holds 5.
    second = nostr.thread_event(SECRET, board="general", title="Second", content="more")
    # Malformed: the content changed after signing.
    forged = nostr.thread_event(SECRET, board="general", title="Forged", content="x").to_dict()
    forged["content"] = "changed"
    [(ok_second, underpaid)] = send_all(relay_with_node, [second])
    assert not ok_second
    assert underpaid.startswith("blocked: ")
    assert "balance 5000 msat, this costs 20000 msat" in underpaid
    assert f"node {forum_node.pubkey}" in underpaid and "credit record (4151831)" in underpaid

    [(ok_forged, malformed)] = raw_answers(relay_with_node, [forged])
    assert not ok_forged
    assert malformed.startswith("invalid: ")

    # Locked thread: a reply is refused.
    Thread.objects.filter(event__event_id=root.id).update(is_locked=True)
    locked = nostr.reply_event(SECRET, board="general", root=root, content="too late")
    [(ok_locked, locked_message)] = send_all(relay_with_node, [locked])
    assert not ok_locked and locked_message.startswith("blocked: the thread is locked")

    # Banned key.
    Ban.objects.create(pubkey=PUB, reason="spam")
    third = nostr.thread_event(SECRET, board="general", title="Banned", content="no")
    [(ok_banned, banned)] = send_all(relay_with_node, [third])
    assert not ok_banned and banned.startswith("blocked: this key may not post here")

    assert balance_of(PUB).balance_msat == left
    assert not Thread.objects.filter(title__in=["Second", "Forged", "Banned"]).exists()


def test_count_over_the_filters_the_relay_supports(relay_with_node, forum_node):
    make_board(thread_price_msat=1_000, reply_price_msat=1_000, escalation_factor=1)
    fund(forum_node, PUB, 20_000)
    root = nostr.thread_event(SECRET, board="general", title="Counted", content="one")
    replies = [
        nostr.reply_event(SECRET, board="general", root=root, content=f"r{i}") for i in range(3)
    ]
    assert all(ok for ok, _ in send_all(relay_with_node, [root, *replies]))

    async def counts() -> list[int]:
        client = await connected(relay_with_node)
        try:
            relay = await client.relay(ns.RelayUrl.parse(relay_with_node.ws_url))
            filters = [
                {"kinds": [1111], "#E": [root.id]},
                {"authors": [PUB]},
                {"kinds": [11], "#h": ["general"]},
                {"kinds": [1]},
            ]
            return [
                await relay.count_events(ns.Filter.from_json(json.dumps(f)), WAIT) for f in filters
            ]
        finally:
            await close(client)

    assert asyncio.run(counts()) == [3, 4, 1, 0]


def test_concurrent_events_from_one_key_are_priced_in_settle_order(relay_with_node, forum_node):
    need(connection.vendor == "postgresql", "truly concurrent charges need PostgreSQL row locks")
    make_board(thread_price_msat=1_000, escalation_factor=2, escalation_window_seconds=600)
    fund(forum_node, PUB, 1_000_000)
    events = [
        nostr.thread_event(SECRET, board="general", title=f"race {i}", content=str(i))
        for i in range(6)
    ]
    answers: list[list[tuple[bool, str]]] = [[] for _ in events]

    def one(i: int) -> None:  # each event from its own socket, all at once
        answers[i] = send_all(relay_with_node, [events[i]])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(answer == [(True, "")] for answer in answers)
    spends = LedgerEntry.objects.filter(pubkey=PUB, purpose="spend").order_by("settle_index", "pk")
    # In the order they were charged: 1, 2, 4, 8... sats, whichever socket was first.
    assert [s.amount_msat for s in spends] == [1_000 * 2**i for i in range(6)]
    assert balance_of(PUB).balance_msat == 1_000_000 - 63_000


def test_the_client_funds_a_balance_from_its_own_node(relay_with_node, simnet, tmp_path, capsys):
    from forum import client as forum_client

    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    node = ["--lndconnect", simnet.nodes["bob"].lndconnect_uri()]
    url = ["--forum-url", f"http://127.0.0.1:{relay_with_node.port}"]
    code = forum_client.main(
        ["credit", "--key-file", str(key_file), "--amount-sats", "25", *node, *url]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"balance: 25 sats for {PUB}" in out
    assert balance_of(PUB).credited_msat == 25_000


def test_a_bolt11_invoice_funds_a_balance(relay_with_node, forum_node):
    base = f"http://127.0.0.1:{relay_with_node.port}"
    request = urllib.request.Request(
        base + "/api/balance/invoice",
        data=json.dumps({"pubkey": nostr.npub_encode(PUB), "amount_sats": 42}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        issued = json.loads(response.read())
    assert issued["pubkey"] == PUB and issued["amount_msat"] == 42_000
    # Any wallet pays it: here alice's node over simnet.
    payment = forum_node.sender("alice").pay_invoice(issued["payment_request"])
    assert payment.succeeded, payment.failure_reason
    deadline = time.monotonic() + 20
    while balance_of(PUB).credited_msat < 42_000:
        assert time.monotonic() < deadline, "the invoice's credit was not recorded"
        time.sleep(0.05)
    row = LedgerEntry.objects.get(payment_hash=issued["payment_hash"])
    assert (row.purpose, row.pubkey, row.is_keysend) == ("credit", PUB, False)

    bad = urllib.request.Request(
        base + "/api/balance/invoice",
        data=json.dumps({"pubkey": PUB, "amount_sats": 0}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(bad, timeout=10)
        raise AssertionError("a zero-sat credit invoice was issued")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
        assert "amount_sats must be between 1" in json.loads(exc.read())["error"]


def test_profiles_edits_and_deletions_ride_the_same_write_path(relay_with_node, forum_node):
    """Every kind the forum publishes is accepted over the relay when the verdict accepts it:
    a kind 0 profile, a kind 1010 edit and a kind 5 deletion, each paid from the balance at its
    own price (docs/protocol.md)."""
    from forum.models import Author, SiteSettings

    make_board(thread_price_msat=1_000, reply_price_msat=1_000)
    site = SiteSettings.current()
    prices = (site.profile_price_msat, site.edit_price_msat, site.deletion_price_msat)
    fund(forum_node, PUB, 50_000)
    root = nostr.thread_event(SECRET, board="general", title="Mine", content="first words")
    profile = nostr.sign_event(SECRET, kind=0, tags=[], content=json.dumps({"name": "relay-ann"}))
    edit = nostr.sign_event(SECRET, kind=1010, tags=[["e", root.id]], content="better words")
    deletion = nostr.sign_event(SECRET, kind=5, tags=[["e", root.id]], content="changed my mind")

    assert send_all(relay_with_node, [root, profile, edit]) == [(True, "")] * 3
    assert Author.objects.get(pubkey=PUB).profile_name == "relay-ann"
    assert "better words" in page(relay_with_node, f"/t/{root.id}/")
    assert send_all(relay_with_node, [deletion]) == [(True, "")]
    assert Thread.objects.get(event__event_id=root.id).is_hidden
    spent = list(
        LedgerEntry.objects.filter(pubkey=PUB, purpose="spend")
        .order_by("settle_index", "pk")
        .values_list("amount_msat", flat=True)
    )
    assert spent == [1_000, prices[0], prices[1], prices[2]]
    assert balance_of(PUB).balance_msat == 50_000 - sum(spent)


def test_two_sockets_racing_for_the_last_sats_one_is_refused_for_nothing(
    relay_with_node, forum_node
):
    """Whether the second EVENT is refused at the first look or by the verdict at its place,
    it is refused with the balance it found, and only the first is charged."""
    make_board(thread_price_msat=10_000, escalation_factor=1)
    fund(forum_node, PUB, 15_000)
    events = [
        nostr.thread_event(SECRET, board="general", title=f"race {i}", content=str(i))
        for i in range(2)
    ]
    answers: list[list[tuple[bool, str]]] = [[], []]

    def one(i: int) -> None:
        answers[i] = send_all(relay_with_node, [events[i]])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    outcomes = sorted(answer[0] for answer in answers)
    assert outcomes[1] == (True, "")
    refused, why = outcomes[0]
    assert not refused
    # The same words whether the first look or the verdict at its place refused it.
    assert why.startswith("blocked: not enough balance: balance 5000 msat, this costs 10000 msat")
    assert balance_of(PUB).balance_msat == 5_000
    assert Thread.objects.count() == 1


def test_a_charge_waits_for_the_listeners_batch_and_sorts_after_it(forum_node):
    """The charge's place in the order: while the listener's transaction holds the cursor (it
    has recorded a payment and moved the cursor, not yet committed), a charge waits, then takes
    the new settle index, after that payment."""
    need(connection.vendor == "postgresql", "the cursor row lock needs PostgreSQL")
    from django.db import connections, transaction

    from forum.ingest import ledger
    from forum.ingest.balance import spend_record

    invoice = forum_node.keysend({}, 1_000)
    ledger.cursor_ensure(node_pubkey=forum_node.pubkey)
    event = nostr.thread_event(SECRET, board="general", title="t", content="c")
    holding, charged = threading.Event(), {}

    def listener_batch() -> None:
        try:
            with transaction.atomic():
                ledger.ledger_record_invoices(invoices=[invoice], node_pubkey=forum_node.pubkey)
                holding.set()
                time.sleep(1.0)  # the batch's transaction is still open
        finally:
            connections.close_all()

    def charge() -> None:
        try:
            holding.wait(10)
            charged["row"] = spend_record(event, node_pubkey=forum_node.pubkey)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=listener_batch), threading.Thread(target=charge)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    payment = LedgerEntry.objects.get(payment_hash=invoice.payment_hash)
    spend = charged["row"]
    assert spend.settle_index == payment.settle_index == invoice.settle_index
    assert spend.pk > payment.pk  # same index: after it, by row
