"""The relay's tag index: written when the core publishes, backfilled by migration 0008."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from forum import nostr
from forum.models import EventTag
from forum.relay import selectors
from forum.relay.filters import parse_filter
from forum.relay.index import indexed_keys, tag_key
from tests.forum.relay.factories import make_board, publish_via_core, reply, store, thread

pytestmark = pytest.mark.django_db(transaction=True)


def _found(obj: dict) -> set[str]:
    return {event.id for event in selectors.events_for_filter(parse_filter(obj), limit=50)}


def test_publishing_indexes_every_single_letter_tag_by_its_first_value():
    board = make_board()
    root = thread()
    publish_via_core(root, board)
    answer = reply(root, content="hi")
    row = publish_via_core(answer, board)
    keys = set(EventTag.objects.filter(event=row).values_list("key", flat=True))
    assert keys == indexed_keys(answer.tags)
    assert tag_key("E", root.id) in keys and tag_key("k", "11") in keys
    assert _found({"#E": [root.id]}) == {answer.id}
    assert _found({"#p": [root.pubkey]}) == {answer.id}


def test_only_single_ascii_letter_names_with_a_string_value_are_indexed():
    tags = [["t", "a"], ["title", "x"], ["é", "y"], ["t"], ["t", 5], ["T", "b", "c"]]
    assert indexed_keys(tags) == {tag_key("t", "a"), tag_key("T", "b")}
    # A lone surrogate is valid JSON text; it gets a key like any other value.
    assert tag_key("t", "\ud800") != tag_key("t", "")


def test_the_migration_indexes_events_published_before_the_index_existed():
    board = make_board()
    event = nostr.sign_event(
        "01" * 32,
        kind=nostr.KIND_THREAD,
        tags=[["h", "general"], ["title", "Old"], ["t", "history"]],
        content="from before",
    )
    store(event, board)
    EventTag.objects.all().delete()
    assert _found({"#t": ["history"]}) == set()

    migration = importlib.import_module("forum.migrations.0008_relay_tags_throttle")
    migration.index_published_tags(apps, None)

    assert _found({"#t": ["history"]}) == {event.id}
    migration.index_published_tags(apps, None)  # idempotent
    assert EventTag.objects.count() == len(indexed_keys(event.tags))


def test_a_thread_paid_over_the_node_is_found_by_its_tags(forum_node):
    """The whole path: keysend over simnet, ledger, reconciliation, publish, index."""
    from forum.models import Board, Event
    from tests.forum.core.conftest import Poster

    Board.objects.create(slug="general", title="General", thread_price_msat=10_000)
    tags = [["h", "general"], ["title", "Paid"], ["t", "lightning"]]
    event = nostr.sign_event(nostr.generate_secret_key(), kind=11, tags=tags, content="paid")
    Poster(forum_node).post(event, 10_000)
    assert Event.objects.get(event_id=event.id).state == Event.State.PUBLISHED
    assert _found({"#t": ["lightning"]}) == {event.id}
