"""Cached public pages: served without queries, answered 304 by version, never stale.

Every action that changes what a page shows (a new reply, a hide, a lock, a tip, a board edit)
must change the cached page at once. The actions go through the real services (and the tip and
the reply through a real keysend over simnet, recorded and reconciled like the listener does),
with the embedded default's in-process cache and, when REDIS_URL is set, with Redis.
"""

from __future__ import annotations

import pickle

import pytest
from django.urls import reverse

from forum import nostr
from forum.models import Post, Thread
from forum.services import moderation
from forum.services.versions import page_cache, versions_reset_now
from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["locmem", "redis"])
def backend(request, settings):
    """Run the test against each cache backend the forum supports."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CACHES = {
            **settings.CACHES,
            "pages": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "pages-test",
            },
        }
    else:
        settings.CACHES = {
            **settings.CACHES,
            "pages": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": "pages-test",
            },
        }
    versions_reset_now()  # nothing cached by an earlier test in this cache is found again
    return request.param


def _thread_with_replies(n: int = 3):
    board = f.board("general", title="General", reply_price_msat=2_000)
    thread, root = f.thread(board, title="Cached thread", content="opening")
    made = f.replies(thread, root, n, content="reply number {i}")
    return board, thread, root, made


def test_a_second_view_is_served_without_queries(client, backend, django_assert_num_queries):
    _, _, root, _ = _thread_with_replies()
    url = reverse("thread", args=[root.id])
    first = client.get(url)
    with django_assert_num_queries(0):
        second = client.get(url)
    assert second.status_code == 200
    assert second.content == first.content
    assert "reply number 3" in second.content.decode()


def test_conditional_get_is_304_without_rendering(client, backend, django_assert_num_queries):
    _, _, root, _ = _thread_with_replies()
    url = reverse("thread", args=[root.id])
    first = client.get(url)
    etag = first["ETag"]
    assert etag.startswith('W/"')
    assert first["Cache-Control"] == "public, max-age=0, must-revalidate"
    # The same for every reader: no cookie set, nothing that varies with one.
    assert "csrftoken" not in first.cookies and "sessionid" not in first.cookies
    assert "Cookie" not in first.get("Vary", "")
    assert 'name="csrf-token"' not in first.content.decode()
    with django_assert_num_queries(0):
        again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again["ETag"] == etag and not again.content


def test_if_modified_since_alone_never_hides_a_change(client, backend, settings):
    _, thread, root, made = _thread_with_replies()
    url = reverse("thread", args=[root.id])
    import time

    time.sleep(1.1)  # Last-Modified is only sent for a version at least a second old
    first = client.get(url)
    since = first["Last-Modified"]
    assert client.get(url, HTTP_IF_MODIFIED_SINCE=since).status_code == 304
    moderation.post_hide(actor=None, post=made[0][0])
    changed = client.get(url, HTTP_IF_MODIFIED_SINCE=since)
    assert changed.status_code == 200
    assert "reply number 1" not in changed.content.decode()


def test_a_hide_changes_the_cached_thread_board_and_home_at_once(client, backend):
    board, thread, root, made = _thread_with_replies()
    urls = [reverse("thread", args=[root.id]), reverse("board", args=[board.slug]), "/"]
    before = {url: client.get(url) for url in urls}
    assert "reply number 2" in before[urls[0]].content.decode()
    moderation.post_hide(actor=None, post=made[1][0])
    after = client.get(urls[0], HTTP_IF_NONE_MATCH=before[urls[0]]["ETag"])
    assert after.status_code == 200
    assert "reply number 2" not in after.content.decode()
    assert '<span id="reply-count">2</span>' in after.content.decode()
    for url in urls[1:]:
        assert client.get(url).content != before[url].content  # counters moved
    moderation.thread_hide(actor=None, thread=thread)
    assert client.get(urls[0]).status_code == 404
    assert "Cached thread" not in client.get(urls[1]).content.decode()
    assert "Cached thread" not in client.get("/").content.decode()


def test_a_lock_and_a_pin_change_the_cached_pages_at_once(client, backend):
    board, thread, root, _ = _thread_with_replies()
    url = reverse("thread", args=[root.id])
    assert "This thread is locked" not in client.get(url).content.decode()
    board_html = client.get(reverse("board", args=[board.slug])).content.decode()
    assert "tag-lock" not in board_html
    moderation.thread_lock(actor=None, thread=thread)
    assert "This thread is locked" in client.get(url).content.decode()
    assert "tag-lock" in client.get(reverse("board", args=[board.slug])).content.decode()
    moderation.thread_pin(actor=None, thread=thread)
    assert "tag-pin" in client.get(url).content.decode()


def test_a_board_edit_changes_its_threads_cached_pages(client, backend):
    board, _, root, _ = _thread_with_replies()
    url = reverse("thread", args=[root.id])
    assert "General" in client.get(url).content.decode()
    moderation.board_update(actor=None, board=board, title="Renamed board")
    assert "Renamed board" in client.get(url).content.decode()


def test_relative_ages_are_fresh_in_a_cached_page(client, backend):
    from datetime import timedelta

    from django.utils import timezone

    board = f.board("general")
    f.thread(board, title="Old news", at=timezone.now() - timedelta(hours=3))
    html = client.get(reverse("board", args=[board.slug])).content.decode()
    assert "3\xa0hours ago" in html


def test_post_cards_are_cached_by_event_and_sats(client, backend):
    _, _, root, made = _thread_with_replies(2)
    client.get(reverse("thread", args=[root.id]))
    stored = _cached_values()
    post, event = made[0]
    assert any(event.id in value and "reply number 1" in value for value in stored)
    # A card under its new sats is a different entry: never the old one.
    Post.objects.filter(pk=post.pk).update(sats_msat=77_000)
    from forum.services.versions import versions_bump

    versions_bump(thread=root.id)
    assert "77 sats" in client.get(reverse("thread", args=[root.id])).content.decode()


def test_after_a_new_reply_only_its_card_is_rendered(client, backend, monkeypatch):
    from forum.templatetags import forum_tags

    _, thread, root, _ = _thread_with_replies(5)
    rendered: list[int] = []
    real = forum_tags.post_card
    monkeypatch.setattr(
        forum_tags, "post_card", lambda post: rendered.append(post.number) or real(post)
    )
    url = reverse("thread", args=[root.id])
    assert client.get(url).content.decode().count('<article class="post') == 6  # the OP + 5
    assert rendered == [1, 2, 3, 4, 5]
    f.replies(thread, root, 1, content="the newest")
    from forum.services.versions import versions_bump

    versions_bump(thread=root.id)  # what publishing does
    html = client.get(url).content.decode()
    assert "the newest" in html and html.count('<article class="post') == 7
    assert rendered == [1, 2, 3, 4, 5, 6]  # the five others came from the cache


# --- through the real payment path ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_new_reply_paid_by_keysend_shows_on_the_cached_pages_at_once(client, backend, forum_node):
    from tests.forum.core.conftest import Poster

    poster = Poster(forum_node)
    board = f.board("general", reply_price_msat=2_000, thread_price_msat=10_000)
    key = nostr.generate_secret_key()
    root = nostr.thread_event(key, board="general", title="Paid thread", content="hello")
    poster.post(root, 10_000)
    urls = [reverse("thread", args=[root.id]), reverse("board", args=[board.slug]), "/"]
    before = {url: client.get(url) for url in urls}
    assert before[urls[0]].status_code == 200
    reply = nostr.reply_event(
        nostr.generate_secret_key(), board="general", root=root, content="a paid reply"
    )
    poster.post(reply, 2_000)
    assert Post.objects.filter(event__event_id=reply.id).exists()
    after = client.get(urls[0], HTTP_IF_NONE_MATCH=before[urls[0]]["ETag"])
    assert after.status_code == 200 and "a paid reply" in after.content.decode()
    assert client.get(urls[1]).content != before[urls[1]].content  # reply count, order
    assert "a paid reply" in client.get("/").content.decode()  # the latest feed


@pytest.mark.django_db(transaction=True)
def test_a_tip_paid_by_keysend_shows_on_the_cached_page_at_once(client, backend, forum_node):
    from forum import protocol
    from tests.forum.core.conftest import Poster

    poster = Poster(forum_node)
    f.board("general", reply_price_msat=2_000, thread_price_msat=10_000)
    key = nostr.generate_secret_key()
    root = nostr.thread_event(key, board="general", title="Tip me", content="hello")
    poster.post(root, 10_000)
    reply = nostr.reply_event(
        nostr.generate_secret_key(), board="general", root=root, content="tip this reply"
    )
    poster.post(reply, 2_000)
    url = reverse("thread", args=[root.id])
    html = client.get(url).content.decode()
    assert '<span class="post-sats" title="paid">2 sats</span>' in html
    poster.pay(protocol.encode_tip(reply.id), 21_000, sender="bob")
    html = client.get(url).content.decode()
    assert '<span class="post-sats" title="paid">23 sats</span>' in html
    thread = Thread.objects.get(event__event_id=root.id)
    assert thread.sats_msat == 33_000
    assert '<span id="thread-sats">33 sats</span>' in html


# --- private rooms stay out -----------------------------------------------------------------


def _cached_values() -> list[str]:
    """Every value in the pages cache, as text (pickled payloads included)."""
    cache = page_cache()
    if hasattr(cache, "_cache") and isinstance(cache._cache, dict):  # locmem
        raw = list(cache._cache.values())
    else:
        client = cache._cache.get_client(write=False)
        raw = [client.get(key) for key in client.scan_iter(match=f"{cache.key_prefix}*")]
    values = []
    for blob in raw:
        if blob is None:
            continue
        try:
            value = pickle.loads(blob)
        except Exception:
            value = blob
        values.append(value if isinstance(value, str) else repr(value))
    return values


@pytest.mark.django_db(transaction=True)
def test_a_private_rooms_content_never_enters_the_cache_or_the_feed(
    client, backend, forum_node, settings
):
    from forum.models import Board
    from tests.forum.rooms.conftest import PASSWORD, RoomPoster, unlock

    settings.ROOM_PRICE_SATS = 500
    f.board("general")
    poster = RoomPoster(forum_node)
    owner = nostr.generate_secret_key()
    poster.rent(owner, slug="hideout", name="Hideout", amount_msat=500_000)
    room = Board.objects.get(slug="hideout")
    assert room.password_verifier
    secret = nostr.thread_event(owner, board="hideout", title="Room secret title", content="S1")
    poster.post(secret, room.thread_price_msat)
    reply = nostr.reply_event(
        nostr.generate_secret_key(), board="hideout", root=secret, content="room secret reply"
    )
    poster.post(reply, room.reply_price_msat)
    assert Post.objects.filter(event__event_id=reply.id).exists()
    assert unlock(client, "hideout", PASSWORD).status_code in (200, 302)
    # Everything a reader might open, unlocked and not.
    for url in [
        "/r/hideout/",
        f"/r/hideout/t/{secret.id}/",
        reverse("thread", args=[secret.id]),
        reverse("event-fragment", args=[reply.id]),
        reverse("event", args=[reply.id]),
        "/",
        "/?page=1",
    ]:
        client.get(url)
        client.get(url, HTTP_IF_NONE_MATCH='W/"x"')
    home = client.get("/").content.decode()
    assert "Room secret" not in home and "room secret reply" not in home
    stored = _cached_values()
    assert stored  # the public home page is there
    for value in stored:
        assert "Room secret" not in value and "room secret reply" not in value
        assert secret.id not in value and reply.id not in value


def test_home_feed_lists_threads_and_replies_newest_first_in_constant_queries(
    client, django_assert_num_queries
):
    board = f.board("general", title="General")
    f.board("quiet", title="Quiet", is_listed=False)
    for i in range(3):
        thread, root = f.thread(board, title=f"topic {i}", content=f"opening {i}")
        f.replies(thread, root, 2, content=f"answer {{i}} in topic {i}")
    with django_assert_num_queries(2):  # boards + one page of the feed with its relations
        html = client.get("/").content.decode()
    order = ["answer 2 in topic 2", "answer 1 in topic 2", "opening 2", "opening 0"]
    assert sorted(order, key=html.index) == order
    assert "Reply #2 to" in html and "New thread" in html
    for i in range(30):
        f.thread(board, title=f"more {i}")
    with django_assert_num_queries(2):
        html = client.get("/").content.decode()
    assert 'rel="next" href="?page=2"' in html
    older = client.get("/?page=2").content.decode()
    assert 'rel="prev" href="?page=1"' in older and "opening 0" in older


def test_pages_still_render_when_the_cache_is_down(client, settings):
    settings.CACHES = {
        **settings.CACHES,
        "pages": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        },
    }
    _, thread, root, _ = _thread_with_replies()
    response = client.get(reverse("thread", args=[root.id]))
    assert response.status_code == 200 and "reply number 3" in response.content.decode()
    moderation.thread_lock(actor=None, thread=thread)  # the bump fails quietly, the lock holds
    assert "This thread is locked" in client.get(reverse("thread", args=[root.id])).content.decode()
