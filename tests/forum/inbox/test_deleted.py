"""A post its author deleted (NIP-09, kind 5 by keysend) leaves everyone's inbox, the site's
search and the relay's NIP-50 search at once, like a post a moderator hid."""

from __future__ import annotations

import pytest

from forum import nostr
from forum.models import Notification, SiteSettings
from forum.relay import selectors
from forum.relay.filters import parse_filter
from forum.selectors.inbox import inbox, unread_count
from forum.selectors.search import SearchFilters, search
from tests.forum.core.conftest import alice_key, board, bob_key, poster  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_deleted_reply_leaves_the_inbox_and_both_searches(poster, board, alice_key, bob_key):  # noqa: F811
    root = nostr.thread_event(alice_key, board="general", title="Ask me", content="anything")
    poster.post(root, 10_000)
    answer = nostr.reply_event(bob_key, board="general", root=root, content="zanzibar regrets")
    poster.post(answer, 2_000)
    alice = nostr.public_key(alice_key)
    assert [item.event_id for item in inbox(alice)] == [answer.id]
    assert [hit.event_id for hit in search(SearchFilters(q="zanzibar")).results] == [answer.id]
    relay = [(parse_filter({"search": "zanzibar"}), 10)]
    assert [e.id for e in selectors.events_for_filters(relay)] == [answer.id]

    tags = [["e", answer.id], ["k", "1111"]]
    deletion = nostr.sign_event(bob_key, kind=nostr.KIND_DELETION, tags=tags, content="oops")
    poster.post(deletion, SiteSettings().deletion_price_msat)

    assert Notification.objects.filter(recipient=alice).count() == 1  # kept, not shown
    assert inbox(alice) == [] and unread_count(alice, after=0) == 0
    assert search(SearchFilters(q="zanzibar")).results == []
    assert selectors.events_for_filters(relay) == []
