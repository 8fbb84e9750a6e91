"""Top-ups complete underpaid posts; the status API and broadcasts follow a message's life."""

from __future__ import annotations

import pytest

from forum import nostr
from forum.models import Event, Rejection, Thread
from tests.forum.group_messages import listen, received

pytestmark = pytest.mark.django_db(transaction=True)


def status(client, key: str) -> tuple[int, dict]:
    response = client.get(f"/api/status/{key}")
    return response.status_code, response.json()


def test_topup_completes_an_underpaid_post(client, poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    first = poster.post(event, 4_000)
    code, body = status(client, event.id)
    assert code == 200
    assert (body["state"], body["waiting_for"], body["reason"]) == (
        "waiting",
        "underpaid",
        "underpaid",
    )
    assert body["message"].startswith("rate-limited: ") and "Top up 6 sats" in body["message"]
    # Not enough yet: a second row says what is still missing.
    poster.topup(event.id, 3_000)
    assert Event.objects.get(event_id=event.id).state == "pending"
    assert "Top up 3 sats" in Rejection.objects.order_by("-id").first().message
    last = poster.topup(event.id, 3_000)
    stored = Event.objects.get(event_id=event.id)
    assert (stored.state, stored.paid_msat, stored.price_msat) == ("published", 10_000, 10_000)
    thread = Thread.objects.get(event=stored)
    assert thread.sats_msat == 10_000
    # Published at the top-up's settle time; the underpaid rows stay, resolved.
    assert thread.settled_at == last.settled_at
    rows = list(Rejection.objects.filter(event=stored))
    assert len(rows) == 2 and all(r.resolved_at and r.resolution == "topped_up" for r in rows)
    for key in (event.id, first.payment_hash, last.payment_hash):
        code, body = status(client, key)
        assert (code, body["state"], body["thread_event_id"], body["number"]) == (
            200,
            "published",
            event.id,
            0,
        )


def test_topup_on_a_published_post_adds_sats(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    poster.post(event, 10_000)
    poster.topup(event.id, 5_000)
    assert Thread.objects.get().sats_msat == 15_000
    assert not Rejection.objects.exists()


def test_status_shapes(client, poster, board, alice_key):
    code, body = status(client, "ab" * 32)
    assert code == 404 and body["state"] == "unknown" and "waiting_for" in body
    assert client.get("/api/status/nothex").status_code == 400
    bad = nostr.thread_event(alice_key, board="nowhere", title="t", content="c")
    entry = poster.post(bad, 10_000)
    code, body = status(client, entry.payment_hash)
    assert (body["state"], body["reason"], body["event_id"]) == (
        "rejected",
        "unknown_board",
        bad.id,
    )
    assert body["message"].startswith("invalid: ")


def test_broadcasts_after_commit(poster, board, alice_key, bob_key):
    from forum import realtime

    root = nostr.thread_event(alice_key, board="general", title="Hi", content="c")
    reply = nostr.reply_event(bob_key, board="general", root=root, content="r")
    channels = {
        group: listen(group)
        for group in (
            realtime.board_group("general"),
            realtime.thread_group(root.id),
            realtime.PUBLIC_FEED_GROUP,
            realtime.payment_group(reply.id),
        )
    }
    poster.post(root, 10_000)
    entry = poster.post(reply, 2_000, sender="bob")

    def got(group: str) -> list[dict]:
        return received(*channels[group], quiet=0.2)

    board_msgs = got(realtime.board_group("general"))
    published = [m["payload"] for m in board_msgs if m["type"] == "post.published"]
    assert [p["event_id"] for p in published] == [root.id, reply.id]
    assert published[1]["thread_event_id"] == root.id and published[1]["number"] == 1
    assert published[1]["parent_event_id"] == root.id and published[1]["raw"].startswith("{")
    assert any(m["type"] == "thread.updated" for m in board_msgs)
    thread_msgs = got(realtime.thread_group(root.id))
    assert {m["payload"]["event_id"] for m in thread_msgs if m["type"] == "post.published"} == {
        root.id,
        reply.id,
    }
    assert len(got(realtime.PUBLIC_FEED_GROUP)) == 2
    states = [m["payload"]["state"] for m in got(realtime.payment_group(reply.id))]
    assert states[-1] == "published" and states[0] in ("paid", "published")
    assert entry.payment_hash


def test_a_status_that_fails_to_build_is_read_back(poster, board, alice_key, monkeypatch):
    """The batch is committed before its statuses are built: if building them fails (a bug),
    the post stays published and its composer still hears it at once, read back."""
    from forum import realtime
    from forum.ingest import reconcile

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the status builder")

    monkeypatch.setattr(reconcile, "event_status", broken)
    event = nostr.thread_event(alice_key, board="general", title="Hi", content="c")
    layer, channel = listen(realtime.payment_group(event.id))
    poster.post(event, 10_000)
    assert Event.objects.get(event_id=event.id).state == "published"
    states = [m["payload"]["state"] for m in received(layer, channel, quiet=0.2)]
    assert states and states[-1] == "published"
