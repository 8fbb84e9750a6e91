"""Full-text search (forum.selectors.search, /search): what a reader can find, and what never
shows up (hidden posts, hidden threads, private rooms, unlisted boards)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from forum import nostr
from forum.selectors import search as search_sel
from forum.selectors.search import SearchFilters, fts5_query, search
from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


def titles(page) -> list[str]:
    return [hit.thread.title if hit.post is None else hit.post.content for hit in page.results]


def test_finds_threads_by_title_and_content_and_replies_by_content():
    board = f.board("general")
    t1, root1 = f.thread(board, title="Lightning routing fees", content="How do fees work?")
    f.thread(board, title="Gardening", content="Tomatoes need sun")
    f.replies(t1, root1, 1, content="Channel balancing helps with routing")
    found = search(SearchFilters(q="routing"))
    kinds = sorted(hit.kind for hit in found.results)
    assert kinds == ["reply", "thread"]
    assert found.total == 2
    assert search(SearchFilters(q="tomatoes")).results[0].thread.title == "Gardening"
    assert search(SearchFilters(q="bananas")).total == 0


def test_stemming_and_title_ranks_above_content():
    board = f.board("general")
    f.thread(board, title="Unrelated", content="someone mentioned replies once")
    f.thread(board, title="Replies and threads", content="nothing else")
    found = search(SearchFilters(q="reply"))  # stemmed: "replies" matches
    assert [hit.thread.title for hit in found.results] == ["Replies and threads", "Unrelated"]


def test_snippet_highlights_words_and_escapes_html():
    board = f.board("general")
    f.thread(board, title="XSS", content="the keysend <script>alert(1)</script> payment works")
    hit = search(SearchFilters(q="keysend")).results[0]
    assert "<mark>keysend</mark>" in hit.snippet
    assert "<script" not in hit.snippet


def test_hidden_posts_hidden_threads_private_rooms_and_unlisted_boards_never_appear():
    board = f.board("general")
    room = f.board("secret-room", password_verifier="pbkdf2$x", is_listed=False)
    unlisted = f.board("unlisted", is_listed=False)
    visible, root = f.thread(board, title="Visible zebra", content="zebra")
    hidden_reply = f.replies(visible, root, 1, content="hidden zebra reply")[0][0]
    hidden_reply.is_hidden = True
    hidden_reply.save()
    hidden_thread, hidden_root = f.thread(board, title="Hidden zebra", is_hidden=True)
    f.replies(hidden_thread, hidden_root, 1, content="zebra under a hidden thread")
    room_thread, room_root = f.thread(room, title="Room zebra", content="zebra secrets")
    f.replies(room_thread, room_root, 1, content="zebra private reply")
    f.thread(unlisted, title="Unlisted zebra")
    found = search(SearchFilters(q="zebra"))
    assert [(hit.kind, hit.thread.title) for hit in found.results] == [("thread", "Visible zebra")]
    # Naming the private room in the filter does not open it either.
    assert search(SearchFilters(q="zebra", board="secret-room")).total == 0
    # An unlisted public board is searched when asked for by name (its page is public).
    assert search(SearchFilters(q="zebra", board="unlisted")).total == 1


def test_filters_board_author_kind_and_dates():
    general, other = f.board("general"), f.board("other")
    alice, alice_secret = f.author(alias="alice")
    old = timezone.now() - timedelta(days=10)
    t1, root1 = f.thread(general, title="Bitcoin one", secret=alice_secret, at=old)
    f.thread(other, title="Bitcoin two")
    f.replies(t1, root1, 1, content="bitcoin reply")
    npub = nostr.npub_encode(alice.pubkey)
    assert titles(search(SearchFilters(q="bitcoin", board="other"))) == ["Bitcoin two"]
    assert titles(search(SearchFilters(q="bitcoin", author=npub))) == ["Bitcoin one"]
    assert titles(search(SearchFilters(q="bitcoin", author="Alice"))) == ["Bitcoin one"]
    assert titles(search(SearchFilters(q="bitcoin", kind="reply"))) == ["bitcoin reply"]
    today = timezone.now().date()
    recent = search(SearchFilters(q="bitcoin", since=today - timedelta(days=1)))
    assert sorted(titles(recent)) == ["Bitcoin two", "bitcoin reply"]
    assert titles(search(SearchFilters(q="bitcoin", until=old.date()))) == ["Bitcoin one"]


def test_author_alias_is_searched():
    board = f.board("general")
    _, secret = f.author(alias="satoshi")
    f.thread(board, title="A plain title", content="plain words", secret=secret)
    f.thread(board, title="Other", content="other words")
    assert titles(search(SearchFilters(q="satoshi"))) == ["A plain title"]


def test_paginates_and_costs_a_fixed_number_of_queries(django_assert_num_queries):
    board = f.board("general")
    thread, root = f.thread(board, title="Many answers about lightning")
    f.replies(thread, root, 45, content="lightning reply {i}")
    # authors by name, one page of (kind, id, rank) over both tables with the total (a window
    # count in the same statement), the page's threads, its replies
    with django_assert_num_queries(4):
        first = search(SearchFilters(q="lightning"), page=1)
        [
            (hit.author.pubkey, hit.board.slug, hit.event_id, hit.thread.title)
            for hit in first.results
        ]
    assert first.total == 46 and len(first.results) == search_sel.RESULTS_PER_PAGE
    last = search(SearchFilters(q="lightning"), page=3)
    assert len(last.results) == 6
    seen = {
        hit.event_id
        for p in (1, 2, 3)
        for hit in search(SearchFilters(q="lightning"), page=p).results
    }
    assert len(seen) == 46
    past_the_end = search(SearchFilters(q="lightning"), page=9)  # Django's Page: the last one
    assert past_the_end.total == 46 and past_the_end.page.number == 3


@pytest.mark.parametrize(
    "text",
    ['"unclosed', "AND OR NOT", "a:b", "(x", "*", "-", "NEAR(a b)", "col:val", '"" ""', "^x"],
)
def test_odd_input_never_errors(text):
    board = f.board("general")
    f.thread(board, title="AND and or", content="a b x val")
    search(SearchFilters(q=text))  # no exception is the point; results may be empty


def test_fts5_query_syntax():
    assert fts5_query("lightning fees") == '"lightning" AND "fees"'
    assert fts5_query('"routing fees" -spam') == '"routing fees" NOT "spam"'
    assert fts5_query("cats or dogs") == '("cats" OR "dogs")'
    assert fts5_query("-only") == ""
    assert fts5_query('NEAR(") col:x') == '"NEAR" AND "col x"'


def test_index_follows_deletes():
    board = f.board("general")
    thread, root = f.thread(board, title="Ephemeral walrus")
    assert search(SearchFilters(q="walrus")).total == 1
    thread.delete()
    assert search(SearchFilters(q="walrus")).total == 0


def test_search_page_works_without_javascript(client):
    board = f.board("general", title="General")
    f.thread(board, title="Find the otter", content="An otter swims")
    response = client.get("/search", {"q": "otter"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 result for" in html and "Find the otter" in html
    assert "<mark>otter</mark>" in html
    assert 'action="/search"' in html  # the header's box and the form are plain GET forms
    bad = client.get("/search", {"q": "otter", "since": "yesterday"}).content.decode()
    assert "is not a date" in bad and "Find the otter" in bad


def test_search_page_drops_a_post_as_soon_as_it_is_hidden(client):
    from forum.services.moderation.hide import post_hide

    board = f.board("general")
    thread, root = f.thread(board, title="Quokka thread")
    post = f.replies(thread, root, 1, content="quokka reply")[0][0]
    marker = f'data-event-id="{post.event.event_id}"'
    assert marker in client.get("/search", {"q": "quokka"}).content.decode()
    assert marker in client.get("/search", {"q": "quokka"}).content.decode()  # from the cache
    assert post_hide(actor=None, post=post, reason="spam")
    html = client.get("/search", {"q": "quokka"}).content.decode()
    assert marker not in html and "Quokka thread" in html


def test_engine_matches_database():
    expected = {"postgresql": "postgresql", "sqlite": "sqlite"}.get(connection.vendor, "basic")
    assert search_sel._engine() == expected


def test_only_the_newest_matches_are_ranked_and_the_page_says_so(client, monkeypatch):
    monkeypatch.setattr(search_sel, "MAX_RANKED", 3)
    board = f.board("general")
    thread, root = f.thread(board, title="Nothing to see")
    made = f.replies(thread, root, 5, content="ibis {i}")
    found = search(SearchFilters(q="ibis"))
    assert found.total == 3 and found.capped
    assert {hit.post.number for hit in found.results} == {3, 4, 5}  # the newest three
    assert [p.number for p, _ in made][-3:] == [3, 4, 5]
    assert "3+ results for" in client.get("/search", {"q": "ibis"}).content.decode()
