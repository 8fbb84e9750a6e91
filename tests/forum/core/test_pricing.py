"""Escalation in settle order: the verdicts do not depend on which worker runs first."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from forum import nostr, protocol
from forum.ingest import reconcile
from forum.ingest.pricing import MAX_PRICE_MSAT, escalate
from forum.models import Event
from tests.conftest import need, record_invoice

pytestmark = pytest.mark.django_db(transaction=True)

# Reply price 2,000 msat, factor 2: amounts chosen so order changes the verdicts.
AMOUNTS = [2_000, 2_000, 4_000, 8_000, 8_000, 16_000]
SERIAL = ["published", "pending", "published", "published", "pending", "published"]


def test_escalate_caps():
    assert escalate(base_msat=1_000, factor=2, count=3) == 8_000
    assert escalate(base_msat=1_000, factor=1, count=50) == 1_000
    assert escalate(base_msat=1_000, factor=10, count=10_000) == MAX_PRICE_MSAT


@pytest.fixture
def burst(forum_node, board, alice_key):
    """A thread by someone else, then alice's replies paid but not yet reconciled."""
    from tests.forum.core.conftest import Poster

    poster = Poster(forum_node)
    root = nostr.thread_event(nostr.generate_secret_key(), board="general", title="r", content="r")
    poster.post(root, 10_000, sender="bob")
    replies, hashes = [], []
    for i, amount in enumerate(AMOUNTS):
        reply = nostr.reply_event(alice_key, board="general", root=root, content=f"reply {i}")
        invoice = forum_node.keysend(protocol.encode_event(reply), amount)
        record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)
        replies.append(reply)
        hashes.append(invoice.payment_hash)
    return replies, hashes


def verdicts(replies) -> list[str]:
    states = dict(Event.objects.values_list("event_id", "state"))
    return [states.get(r.id) for r in replies]


def reconcile_all(*, limit: int | None = None) -> None:
    while reconcile.reconcile_batch(limit=limit).rows:
        pass


def test_serial_order(burst):
    replies, hashes = burst
    reconcile_all()
    assert verdicts(replies) == SERIAL


def test_row_by_row_gives_the_same_verdicts_as_one_batch(burst):
    replies, hashes = burst
    reconcile_all(limit=1)
    assert verdicts(replies) == SERIAL


def test_two_concurrent_workers_equal_serial(burst):
    need(connection.vendor == "postgresql", "truly concurrent workers need PostgreSQL row locks")
    replies, hashes = burst
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(limit: int) -> None:
        try:
            barrier.wait()
            reconcile_all(limit=limit)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(1,)),
        threading.Thread(target=worker, args=(2,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert verdicts(replies) == SERIAL


def test_quote_follows_escalation(client, forum_node, board, alice_key):
    from tests.forum.core.conftest import Poster

    pubkey = nostr.public_key(alice_key)
    first = client.get("/api/quote", {"board": "general", "pubkey": pubkey, "kind": 11}).json()
    assert (first["price_msat"], first["price_sats"], first["recent_posts"]) == (10_000, 10, 0)
    Poster(forum_node).post(
        nostr.thread_event(alice_key, board="general", title="t", content="c"), 10_000
    )
    second = client.get("/api/quote", {"board": "general", "pubkey": pubkey, "kind": 11}).json()
    assert (second["price_msat"], second["recent_posts"]) == (20_000, 1)
    reply = client.get("/api/quote", {"board": "general", "pubkey": pubkey, "kind": 1111}).json()
    assert reply["price_msat"] == 4_000
