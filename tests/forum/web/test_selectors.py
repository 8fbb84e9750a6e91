"""Selectors behind the public pages: visibility rules and constant query counts."""

from __future__ import annotations

import pytest
from django.http import Http404

from forum.selectors import pages as sel
from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


def test_board_page_hides_hidden_threads_and_sorts():
    board = f.board("general")
    old, _ = f.thread(board, title="old")
    rich, _ = f.thread(board, title="rich")
    f.thread(board, title="secret", is_hidden=True)
    rich.sats_msat = 10**9
    rich.save()
    titles = [t.title for t in sel.board_threads_page(board, sort="latest")]
    assert "secret" not in titles
    assert [t.title for t in sel.board_threads_page(board, sort="sats")][0] == "rich"
    assert [t.title for t in sel.board_threads_page(board, sort="newest")][-1] == "old"


def test_board_page_query_count_is_constant(django_assert_num_queries):
    board = f.board("general")
    for i in range(40):
        f.thread(board, title=f"t{i}")
    with django_assert_num_queries(2):  # count + one page of rows with authors and events
        page = sel.board_threads_page(board, sort="latest", page=1)
        rows = [(t.title, t.author.pubkey, t.event.event_id) for t in page]
    assert len(rows) == sel.THREADS_PER_PAGE


def test_thread_with_1000_replies_costs_a_fixed_number_of_queries(django_assert_num_queries):
    board = f.board("general")
    thread, root = f.thread(board)
    made = f.replies(thread, root, 1000)
    f.replies(thread, root, 5, parent=made[10])
    with django_assert_num_queries(3):  # thread + count + page of posts with parents/authors
        found = sel.thread_get(root.id)
        page = sel.thread_posts_page(found, page=21)
        seen = [
            (p.number, p.author.pubkey, p.event.event_id, p.parent and p.parent.author.pubkey)
            for p in page
        ]
    assert [n for n, *_ in seen] == list(range(1001, 1006))
    assert all(parent_author for *_, parent_author in seen)


def test_hidden_posts_are_skipped_and_pages_renumber():
    board = f.board("general")
    thread, root = f.thread(board)
    made = f.replies(thread, root, 3)
    made[1][0].is_hidden = True
    made[1][0].save()
    assert [p.number for p in sel.thread_posts_page(thread)] == [1, 3]
    with pytest.raises(Http404):
        sel.event_locate(made[1][1].id)
    with pytest.raises(Http404):
        sel.event_raw_json(made[1][1].id)


def test_hidden_thread_is_not_found():
    board = f.board("general")
    _, root = f.thread(board, is_hidden=True)
    with pytest.raises(Http404):
        sel.thread_get(root.id)
    with pytest.raises(Http404):
        sel.event_raw_json(root.id)


def test_post_page_number_and_locate():
    board = f.board("general")
    thread, root = f.thread(board)
    made = f.replies(thread, root, sel.POSTS_PER_PAGE + 2)
    last_post, last_event = made[-1]
    assert sel.post_page_number(last_post) == 2
    located = sel.event_locate(last_event.id)
    assert located.post == last_post and located.thread == thread
    assert sel.event_locate(root.id).post is None


def test_author_by_npub_and_hex():
    board = f.board("general")
    thread, root = f.thread(board)
    assert sel.author_get(root.pubkey) == thread.author
    assert sel.author_get(sel.npub(root.pubkey)) == thread.author
    with pytest.raises(Http404):
        sel.author_get("npub1notvalid")
    activity = sel.author_activity(thread.author)
    assert activity.threads == [thread]
