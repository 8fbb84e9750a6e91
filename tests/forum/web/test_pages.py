"""The public pages over HTTP: content, links, query counts, hidden things stay hidden."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from forum import nostr
from forum.selectors import pages as sel
from forum.services.versions import versions_bump
from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


def test_home_lists_boards_with_prices_and_counts(client):
    f.board("general", title="General chat", thread_price_msat=21_000, reply_price_msat=5_000)
    f.board("secret", title="Unlisted room", is_listed=False)
    html = client.get("/").content.decode()
    assert "General chat" in html and "21 sats" in html and "5 sats" in html
    assert "Unlisted room" not in html


def test_board_page(client, django_assert_max_num_queries):
    board = f.board("general")
    for i in range(35):
        f.thread(board, title=f"topic {i}")
    f.thread(board, title="hidden topic", is_hidden=True)
    with django_assert_max_num_queries(4):  # session-free GET: board, count, rows
        response = client.get("/b/general/?sort=sats&page=1")
    html = response.content.decode()
    assert response.status_code == 200
    assert "hidden topic" not in html
    assert "page 1 of 2" in html
    assert 'href="?sort=sats&amp;page=2"' in html
    assert client.get("/b/nope/").status_code == 404


def test_thread_page_1000_replies_constant_queries(client, django_assert_num_queries):
    board = f.board("general")
    thread, root = f.thread(board, title="Big one")
    made = f.replies(thread, root, 1000)
    f.replies(thread, root, 2, parent=made[5], content="answer {i}")
    url = reverse("thread", args=[root.id])
    # The thread, the count, the page's card keys, and the replies whose card is not cached.
    with django_assert_num_queries(4):
        response = client.get(url + "?page=21")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="p1001"' in html and 'id="p1002"' in html
    assert "in reply to #6" in html
    assert reverse("event-json", args=[made[0][1].id]) not in html  # page 1 only
    with django_assert_num_queries(4):
        client.get(url)
    versions_bump(thread=root.id)  # as a publish does: the page is rendered again...
    with django_assert_num_queries(3):  # ...with every card from the cache
        assert 'id="p1001"' in client.get(url + "?page=21").content.decode()


def test_thread_page_shows_reply_relation_permalinks_and_verify(client):
    board = f.board("general")
    thread, root = f.thread(board, title="Hello", content="opening **bold**")
    made = f.replies(thread, root, 2)
    f.replies(thread, root, 1, parent=made[0], content="nested answer")
    html = client.get(reverse("thread", args=[root.id])).content.decode()
    assert "<strong>bold</strong>" in html
    assert reverse("event-json", args=[root.id]) in html
    for _, event in made:
        assert reverse("event", args=[event.id]) in html
        assert reverse("event-json", args=[event.id]) in html
    assert "in reply to #1" in html and "is-nested" in html


def test_event_json_is_the_signed_event(client):
    board = f.board("general")
    _, root = f.thread(board)
    response = client.get(reverse("event-json", args=[root.id]))
    assert response["Content-Type"].startswith("application/json")
    parsed = nostr.parse_event(response.content, verify=True)
    assert parsed.id == root.id
    assert client.get(reverse("event-json", args=["0" * 64])).status_code == 404


def test_permalink_redirects_to_the_right_page(client):
    board = f.board("general")
    thread, root = f.thread(board)
    made = f.replies(thread, root, sel.POSTS_PER_PAGE + 1)
    response = client.get(reverse("event", args=[made[-1][1].id]))
    assert response.status_code == 302
    assert response["Location"].endswith(f"?page=2#p{sel.POSTS_PER_PAGE + 1}")
    response = client.get(reverse("event", args=[root.id]))
    assert response["Location"] == reverse("thread", args=[root.id])


def test_fragment_renders_a_reply_or_a_thread_row(client):
    board = f.board("general")
    thread, root = f.thread(board, title="Row title")
    ((post, event),) = f.replies(thread, root, 1, content="live <b>reply</b>")
    html = client.get(reverse("event-fragment", args=[event.id])).content.decode()
    assert 'id="p1"' in html and "live &lt;b&gt;reply&lt;/b&gt;" in html
    html = client.get(reverse("event-fragment", args=[root.id])).content.decode()
    assert "thread-row" in html and "Row title" in html


def test_hidden_post_is_nowhere(client):
    board = f.board("general")
    thread, root = f.thread(board)
    ((post, event),) = f.replies(thread, root, 1, content="should not be seen")
    post.is_hidden = True
    post.save()
    assert (
        "should not be seen" not in client.get(reverse("thread", args=[root.id])).content.decode()
    )
    for name in ("event", "event-json", "event-fragment"):
        assert client.get(reverse(name, args=[event.id])).status_code == 404


def test_author_page(client):
    board = f.board("general")
    thread, root = f.thread(board, title="By me")
    html = client.get(reverse("author", args=[sel.npub(root.pubkey)])).content.decode()
    assert root.pubkey in html and sel.npub(root.pubkey) in html and "By me" in html
    assert client.get(reverse("author", args=["f" * 64])).status_code == 404


def test_bad_ids_are_404(client):
    assert client.get("/t/" + "z" * 64 + "/").status_code == 404
    assert client.get("/t/" + "a" * 64 + "/").status_code == 404


def test_compose_records_encodes_a_verified_event(client):
    pytest.importorskip("forum.protocol")
    secret = nostr.generate_secret_key()
    event = nostr.thread_event(secret, board="general", title="t", content="hello")
    response = client.post(
        reverse("compose-records"),
        data=json.dumps(
            {"event": event.to_dict(), "amount_msat": 21_500, "destination": "02" + "ab" * 32}
        ),
        content_type="application/json",
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["event_id"] == event.id
    (payment,) = body["payments"]
    assert payment["amount_sat"] == 22  # rounded up, never underpaid
    assert "lncli sendpayment --keysend" in payment["lncli"]
    from forum import protocol

    records = {int(k): v.encode() for k, v in payment["custom_records"].items()}
    decoded = protocol.decode_records(records)
    assert decoded.event.id == event.id


def test_compose_records_refuses_a_forged_event(client):
    pytest.importorskip("forum.protocol")
    secret = nostr.generate_secret_key()
    event = nostr.thread_event(secret, board="general", title="t", content="hello").to_dict()
    event["content"] = "changed"
    response = client.post(
        reverse("compose-records"),
        data=json.dumps({"event": event, "amount_msat": 1000}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad_id")


def test_how_to_post_shows_node_qr_record_types_and_prices(client, forum_node):
    from django.core.cache import cache

    from forum import protocol

    cache.delete("forum:node_contact")
    f.board("general", thread_price_msat=21_000)
    html = client.get(reverse("how-to-post")).content.decode()
    assert forum_node.pubkey in html
    assert f"{forum_node.pubkey}@127.0.0.1:" in html  # the URI, as GetInfo announces it
    assert html.count("<svg") == 1
    for name, number in protocol.RECORD_TYPES.items():
        assert f'<td>{name}</td><td class="mono">{number}</td>' in html
    assert "21 sats" in html and "lncli sendpayment --keysend" in html
    qr = client.get(reverse("node-qr"))
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content


def test_how_to_post_says_so_when_the_node_is_down(client, settings):
    from django.core.cache import cache

    cache.delete("forum:node_contact")
    settings.SIMNET_ENABLED = False
    settings.LND_GRPC_HOST = ""
    settings.LND_CONNECT = ""
    html = client.get(reverse("how-to-post")).content.decode()
    assert "cannot be reached right now" in html
    assert client.get(reverse("node-qr")).status_code == 404
