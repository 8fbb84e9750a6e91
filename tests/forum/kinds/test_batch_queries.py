"""The reconcile batch's cost does not grow with the number of profiles, deletions or edits in
it: their targets and authors are read with the batch, their writes are set-based."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forum import nostr, protocol
from forum.ingest import reconcile
from forum.models import Post, SiteSettings
from tests.conftest import record_invoice
from tests.forum.kinds.test_kinds import deletion_event, edit_event

pytestmark = pytest.mark.django_db(transaction=True)


def batch_queries(poster, events: list[tuple[nostr.Event, int]]) -> int:
    """Pay every event, record them unreconciled, then count one batch's queries."""
    for event, amount in events:
        invoice = poster.pay(protocol.encode_event(event), amount, record=False)
        record_invoice(invoice, node_pubkey=poster.node.pubkey, enqueue=False)
    with CaptureQueriesContext(connection) as queries:
        outcome = reconcile.reconcile_batch()
    assert outcome.rows == len(events) and outcome.rejected == 0
    return len(queries)


def replies(poster, key: str, count: int) -> list[nostr.Event]:
    root = nostr.thread_event(key, board="general", title="t", content="c")
    poster.post(root, 10_000)
    made = []
    for i in range(count):
        reply = nostr.reply_event(key, board="general", root=root, content=f"r{i}")
        poster.post(reply, 1_000_000)
        made.append(reply)
    assert Post.objects.count() >= count
    return made


def test_deletions_and_edits_cost_the_same_queries_one_or_many(poster, board):
    site = SiteSettings()
    keys = [nostr.generate_secret_key() for _ in range(4)]
    posts = {key: replies(poster, key, 3) for key in keys}

    one = batch_queries(poster, [(deletion_event(keys[0], posts[keys[0]][0].id), 1000)])
    many = batch_queries(
        poster, [(deletion_event(k, *(p.id for p in posts[k])), 1000) for k in keys[1:]]
    )
    assert many == one

    edit_one = batch_queries(
        poster, [(edit_event(keys[0], posts[keys[0]][1].id, "e"), site.edit_price_msat)]
    )
    fresh = [nostr.generate_secret_key() for _ in range(3)]
    targets = {key: replies(poster, key, 1)[0] for key in fresh}
    edit_many = batch_queries(
        poster, [(edit_event(k, targets[k].id, "e"), site.edit_price_msat) for k in fresh]
    )
    assert edit_many == edit_one


def test_profiles_cost_the_same_queries_one_or_many(poster, board):
    price = SiteSettings().profile_price_msat

    def profile(key: str) -> tuple[nostr.Event, int]:
        content = json.dumps({"name": key[:6]})
        return nostr.sign_event(key, kind=0, tags=[], content=content), price

    one = batch_queries(poster, [profile(nostr.generate_secret_key())])
    many = batch_queries(poster, [profile(nostr.generate_secret_key()) for _ in range(5)])
    assert many == one
