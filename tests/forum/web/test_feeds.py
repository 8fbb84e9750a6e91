"""Atom feeds (forum, board, thread, author): valid Atom, found from the pages, and never
carrying a hidden post or anything from a private room."""

from __future__ import annotations

import feedparser
import pytest
from django.urls import reverse

from forum import nostr
from forum.services.moderation.hide import post_hide, thread_hide
from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


def parsed(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed


def test_forum_feed_is_valid_atom_with_threads_and_replies(client):
    board = f.board("general", title="General")
    alice, secret = f.author(alias="alice")
    thread, root = f.thread(board, title="Hello feeds", content="Some **bold** text", secret=secret)
    f.replies(thread, root, 2, content="answer {i}")
    feed = parsed(client, "/feed.atom")
    titles = [entry.title for entry in feed.entries]
    assert titles == ["Re: Hello feeds (#2)", "Re: Hello feeds (#1)", "Hello feeds"]
    opening = feed.entries[-1]
    assert opening.link == "http://testserver" + reverse("event", args=[root.id])
    assert opening.id == opening.link
    assert opening.author == "alice"
    assert "<strong>bold</strong>" in opening.content[0].value
    assert opening.tags[0].term == "general"
    assert feed.feed.links[0].href == "http://testserver/"


def test_board_thread_and_author_feeds(client):
    general, other = f.board("general"), f.board("other")
    person, secret = f.author()
    thread, root = f.thread(general, title="On general", secret=secret)
    f.replies(thread, root, 1, content="general reply")
    f.thread(other, title="On other", secret=secret)
    board_feed = parsed(client, "/b/general/feed.atom")
    assert {e.title for e in board_feed.entries} == {"On general", "Re: On general (#1)"}
    thread_feed = parsed(client, reverse("thread-feed", args=[root.id]))
    assert [e.title for e in thread_feed.entries] == ["Re: On general (#1)", "On general"]
    author_feed = parsed(client, f"/a/{nostr.npub_encode(person.pubkey)}/feed.atom")
    assert {e.title for e in author_feed.entries} == {"On general", "On other"}


def test_hidden_posts_and_private_rooms_never_reach_a_feed(client):
    board = f.board("general")
    room = f.board("room", password_verifier="pbkdf2$x", is_listed=False)
    person, secret = f.author()
    thread, root = f.thread(board, title="Public", secret=secret)
    post = f.replies(thread, root, 1, content="soon hidden", secret=secret)[0][0]
    room_thread, room_root = f.thread(room, title="Room secret", secret=secret)
    f.replies(room_thread, room_root, 1, content="room reply", secret=secret)
    npub = nostr.npub_encode(person.pubkey)
    urls = ["/feed.atom", "/b/general/feed.atom", f"/a/{npub}/feed.atom"]
    urls.append(reverse("thread-feed", args=[root.id]))
    for url in urls:
        assert "Re: Public (#1)" in [e.title for e in parsed(client, url).entries]  # cached now
    assert post_hide(actor=None, post=post, reason="spam")
    for url in urls:
        body = client.get(url).content.decode()
        assert "soon hidden" not in body and "Room secret" not in body and "room reply" not in body
    assert client.get("/b/room/feed.atom").status_code == 404
    assert client.get(reverse("thread-feed", args=[room_root.id])).status_code == 404
    assert thread_hide(actor=None, thread=thread, reason="spam")
    assert client.get(reverse("thread-feed", args=[root.id])).status_code == 404
    assert parsed(client, "/feed.atom").entries == []


def test_conditional_get_and_query_counts(client, django_assert_max_num_queries):
    board = f.board("general")
    thread, root = f.thread(board, title="T")
    f.replies(thread, root, 25)
    url = reverse("thread-feed", args=[root.id])
    with django_assert_max_num_queries(2):  # the thread, its latest replies with everything
        first = client.get(url)
    with django_assert_max_num_queries(0):
        again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    with django_assert_max_num_queries(1):  # forum feed: one query for threads and replies
        client.get("/feed.atom")
    with django_assert_max_num_queries(3):  # board feed: the board, threads, replies
        client.get("/b/general/feed.atom?fresh=1")


def test_pages_advertise_their_feeds(client):
    board = f.board("general")
    person, secret = f.author()
    _, root = f.thread(board, title="T", secret=secret)
    link = '<link rel="alternate" type="application/atom+xml"'
    home = client.get("/").content.decode()
    assert f'{link} title="Lightning Forum: all boards" href="/feed.atom">' in home
    assert 'href="/b/general/feed.atom"' in client.get("/b/general/").content.decode()
    thread_html = client.get(reverse("thread", args=[root.id])).content.decode()
    assert f'href="/t/{root.id}/feed.atom"' in thread_html
    npub = nostr.npub_encode(person.pubkey)
    assert f'href="/a/{npub}/feed.atom"' in client.get(f"/a/{npub}/").content.decode()
