"""forum.relay.selectors: what may be served, in which order, and in how many queries."""

from __future__ import annotations

import pytest
from django.utils import timezone

from forum.models import Event
from forum.relay import selectors
from forum.relay.filters import parse_filter
from tests.forum.relay.factories import BOB, make_board, reply, store, thread

pytestmark = pytest.mark.django_db


def ids_for(obj: dict, limit: int = 100) -> list[str]:
    return [
        event.data["id"] for event in selectors.events_for_filter(parse_filter(obj), limit=limit)
    ]


@pytest.fixture
def forum():
    """A board with a thread (with a hashtag) and two replies, one by another author."""
    board = make_board()
    root = thread(created_at=100, content="root")
    store(root, board)
    first = reply(root, content="first", created_at=101)
    second = reply(root, content="second", created_at=102)
    store(first, board)
    store(second, board)
    return {"board": board, "root": root, "first": first, "second": second}


def test_each_filter_field_is_one_query(forum, django_assert_num_queries):
    root, first, second = forum["root"], forum["first"], forum["second"]
    cases = [
        ({"ids": [first.id]}, [first.id]),
        ({"authors": [root.pubkey]}, [root.id]),
        ({"kinds": [1111]}, [second.id, first.id]),
        ({"#E": [root.id]}, [second.id, first.id]),
        ({"#e": [root.id]}, [second.id, first.id]),
        ({"#p": [root.pubkey]}, [second.id, first.id]),
        ({"#h": ["general"]}, [second.id, first.id, root.id]),
        ({"#h": ["elsewhere"]}, []),
        ({"#K": ["11"], "since": 102}, [second.id]),
        ({"until": 101}, [first.id, root.id]),
        ({"since": 101, "until": 101}, [first.id]),
    ]
    for obj, expected in cases:
        with django_assert_num_queries(1):
            assert ids_for(obj) == expected, obj


def test_a_filter_that_cannot_match_runs_no_query(forum, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert ids_for({"ids": []}) == []
        assert ids_for({"kinds": [11]}, limit=0) == []


def test_newest_first_ties_by_lowest_id_and_limit(forum):
    board = forum["board"]
    twins = [thread(title=f"twin {n}", created_at=500) for n in range(3)]
    for event in twins:
        store(event, board)
    expected = sorted(event.id for event in twins)
    assert ids_for({"kinds": [11]}, limit=2) == expected[:2]
    assert ids_for({"kinds": [11]}) == [*expected, forum["root"].id]


def test_any_single_letter_tag_is_an_exact_match(forum):
    board = forum["board"]
    lower = nostr_thread_with_tag("nostr", created_at=200)
    upper = nostr_thread_with_tag("Nostr", created_at=201)
    quoted = nostr_thread_with_tag('say "hi"', created_at=202)
    for event in (lower, upper, quoted):
        store(event, board)
    # SQLite's LIKE ignores case; the pure re-check keeps the answer exact everywhere.
    assert ids_for({"#t": ["nostr"]}) == [lower.id]
    assert ids_for({"#t": ["Nostr", "nostr"]}) == [upper.id, lower.id]
    assert ids_for({"#t": ['say "hi"']}) == [quoted.id]
    # `title` is not a single-letter tag, and a value in content is not a tag.
    assert ids_for({"#t": ["root"]}) == []


def nostr_thread_with_tag(value: str, *, created_at: int):
    from forum import nostr

    return nostr.sign_event(
        BOB,
        kind=nostr.KIND_THREAD,
        tags=[["title", value], ["h", "general"], ["t", value]],
        content=value,
        created_at=created_at,
    )


def test_hidden_pending_and_private_events_are_not_servable(forum):
    board, root, first = forum["board"], forum["root"], forum["first"]
    first_row = Event.objects.get(event_id=first.id)
    first_row.post.is_hidden = True
    first_row.post.save()
    assert ids_for({"kinds": [1111]}) == [forum["second"].id]

    # A hidden thread hides its replies too.
    root_row = Event.objects.get(event_id=root.id)
    root_row.thread.is_hidden = True
    root_row.thread.save()
    assert ids_for({}) == []
    assert selectors.servable_event_raw(forum["second"].id) is None

    pending = thread(title="waiting", created_at=300)
    store(pending, board, state=Event.State.PENDING)
    room = make_board("room", is_listed=False)
    private = thread("room", title="private", created_at=301)
    store(private, room)
    gone = make_board("gone", destroyed_at=timezone.now())
    destroyed = thread("gone", title="destroyed", created_at=302)
    store(destroyed, gone)
    assert ids_for({"kinds": [11]}) == []
    assert selectors.servable_event_raw(private.id) is None


def test_servable_event_raw_is_the_stored_json(forum):
    first = forum["first"]
    assert selectors.servable_event_raw(first.id) == first.to_json()
    assert selectors.servable_event_raw("0" * 64) is None


def test_filters_are_ored_one_query_each(forum, django_assert_num_queries):
    root, first, second = forum["root"], forum["first"], forum["second"]
    plan = [(parse_filter({"kinds": [11]}), 10), (parse_filter({"authors": [first.pubkey]}), 10)]
    with django_assert_num_queries(2):
        stored = selectors.events_for_filters(plan)
    assert [event.data["id"] for event in stored] == [second.id, first.id, root.id]


def test_board_prices_default_board_first():
    make_board("zeta", position=2, thread_price_msat=5_000)
    make_board("alpha", position=1, thread_price_msat=7_000, max_content_length=900)
    make_board("hidden", position=0, is_listed=False, max_content_length=99_999)
    prices = selectors.listed_board_prices()
    assert [(p.slug, p.thread_price_msat) for p in prices] == [("alpha", 7_000), ("zeta", 5_000)]
    assert selectors.max_content_length() == 20_000  # zeta's default; unlisted ignored
