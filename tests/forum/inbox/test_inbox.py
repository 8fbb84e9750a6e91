"""The inbox of a pubkey: replies, mentions and tips, written by the publishing batch, read as
a page, an Atom feed and an unread count; never anything from a private room or a hidden post.

Posts and tips go through simnet's gRPC and the real pipeline (record + reconcile), as live.
"""

from __future__ import annotations

import feedparser
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forum import nostr
from forum.models import Board, Notification, Post
from forum.services.moderation.hide import post_hide
from tests.conftest import record_invoice
from tests.forum.tips.conftest import Tipper

pytestmark = pytest.mark.django_db(transaction=True)


class InboxPoster(Tipper):
    def record_only(self, invoice):
        """Into the ledger as the listener writes it, not reconciled yet."""
        return record_invoice(invoice, node_pubkey=self.node.pubkey, enqueue=False)[0]


@pytest.fixture
def tipper(forum_node) -> InboxPoster:
    return InboxPoster(forum_node)


@pytest.fixture
def board(db) -> Board:
    return Board.objects.create(
        slug="general", title="General", thread_price_msat=10_000, reply_price_msat=2_000,
        escalation_factor=1,
    )  # fmt: skip


@pytest.fixture
def keys() -> dict[str, str]:
    return {name: nostr.generate_secret_key() for name in ("alice", "bob", "carol", "dave")}


def pub(keys, name: str) -> str:
    return nostr.public_key(keys[name])


def npub(keys, name: str) -> str:
    return nostr.npub_encode(pub(keys, name))


def thread(tipper, key: str, *, board: str = "general", title: str = "Hello", content="c"):
    event = nostr.thread_event(key, board=board, title=title, content=content)
    tipper.post(event, 10_000)
    return event


def reply(tipper, key: str, root, *, parent=None, content="r", board="general", extra_tags=()):
    event = nostr.reply_event(key, board=board, root=root, parent=parent, content=content)
    if extra_tags:
        event = nostr.sign_event(
            key, kind=event.kind, tags=[*event.tags, *extra_tags], content=event.content
        )
    tipper.post(event, 2_000)
    return event


def feed(client, keys, name: str):
    response = client.get(f"/a/{npub(keys, name)}/inbox.atom")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def test_replies_mentions_and_tips_reach_the_inbox(client, tipper, board, keys):
    root = thread(tipper, keys["alice"], title="Lightning tips")
    first = reply(tipper, keys["bob"], root, content="Nice thread")
    # Carol answers Bob's reply, and names Dave in the text.
    reply(
        tipper, keys["carol"], root, parent=first,
        content=f"Agreed, ask nostr:{npub(keys, 'dave')} too",
    )  # fmt: skip
    reply(tipper, keys["alice"], root, content="my own reply")  # nobody is told of themselves
    tipper.tip(first.id, 21_000, sender="bob")

    alice = [e.title for e in feed(client, keys, "alice").entries]
    assert alice == [
        f"{nostr.npub_encode(pub(keys, 'carol'))[:11]}…{npub(keys, 'carol')[-6:]} replied: "
        "#2 in “Lightning tips”",
        f"{npub(keys, 'bob')[:11]}…{npub(keys, 'bob')[-6:]} replied: #1 in “Lightning tips”",
    ]
    bob = feed(client, keys, "bob").entries
    assert [e.title for e in bob] == [
        "A tip of 21 sats for your post #1 in “Lightning tips”",
        f"{npub(keys, 'carol')[:11]}…{npub(keys, 'carol')[-6:]} replied: #2 in “Lightning tips”",
    ]
    assert bob[1].link.endswith(f"/e/{Post.objects.get(number=2).event.event_id}")
    assert "Agreed, ask" in bob[1].content[0].value
    dave = feed(client, keys, "dave").entries
    assert [e.title.split(" ", 1)[1] for e in dave] == ["mentioned you: #2 in “Lightning tips”"]
    assert feed(client, keys, "carol").entries == []


def test_a_p_tag_mentions_and_a_reply_outranks_a_mention(tipper, board, keys):
    root = thread(tipper, keys["alice"])
    reply(
        tipper, keys["bob"], root, extra_tags=[["p", pub(keys, "dave")], ["p", pub(keys, "alice")]]
    )
    rows = {n.recipient: n.reason for n in Notification.objects.all()}
    assert rows == {pub(keys, "alice"): "reply", pub(keys, "dave"): "mention"}


def test_private_rooms_never_reach_an_inbox(client, tipper, board, keys):
    Board.objects.create(slug="vault", title="Vault", is_listed=False, password_verifier="x$y")
    root = thread(tipper, keys["alice"], board="vault", title="Room secret")
    answer = reply(
        tipper, keys["bob"], root, board="vault", content=f"psst nostr:{npub(keys, 'dave')}"
    )
    tipper.tip(answer.id, 5_000)
    assert Post.objects.filter(board__slug="vault").count() == 1  # published in the room
    assert not Notification.objects.exists()
    for name in ("alice", "bob", "dave"):
        assert feed(client, keys, name).entries == []
        body = client.get(f"/a/{npub(keys, name)}/inbox/").content.decode()
        assert "Room secret" not in body and "psst" not in body


def test_a_hidden_reply_leaves_the_inbox_and_its_count(client, tipper, board, keys):
    root = thread(tipper, keys["alice"], title="Visible")
    reply(tipper, keys["bob"], root, content="fine reply")
    reply(tipper, keys["carol"], root, content="spam reply")
    url = f"/a/{npub(keys, 'alice')}/inbox.json"
    assert client.get(url).json() == {"unread": 2, "capped": False}
    assert len(feed(client, keys, "alice").entries) == 2  # cached now
    assert post_hide(actor=None, post=Post.objects.get(content="spam reply"), reason="spam")
    assert client.get(url).json() == {"unread": 1, "capped": False}
    entries = feed(client, keys, "alice").entries
    assert [e.content[0].value for e in entries] == ["<p>fine reply</p>"]
    assert "spam reply" not in client.get(f"/a/{npub(keys, 'alice')}/inbox/").content.decode()


def test_unread_counts_after_the_browsers_mark(client, tipper, board, keys):
    root = thread(tipper, keys["alice"])
    reply(tipper, keys["bob"], root)
    seen = Notification.objects.get().pk
    reply(tipper, keys["carol"], root)
    url = f"/a/{pub(keys, 'alice')}/inbox.json"  # hex works as well as npub
    assert client.get(url + f"?after={seen}").json() == {"unread": 1, "capped": False}
    assert client.get(url + "?after=x").status_code == 400
    assert client.get("/a/npub1nope/inbox.json").status_code == 404


def test_inbox_reads_cost_a_fixed_number_of_queries(client, tipper, board, keys):
    root = thread(tipper, keys["alice"])
    for name in ("bob", "carol", "dave"):
        reply(tipper, keys[name], root)
    tipper.tip(root.id, 3_000)
    from forum.selectors import inbox

    with CaptureQueriesContext(connection) as ctx:
        items = inbox.inbox(pub(keys, "alice"))
        [(item.title, item.event_id, item.content) for item in items]
    assert len(items) == 4
    assert len(ctx.captured_queries) == 2  # the rows with threads and posts; the actors
    with CaptureQueriesContext(connection) as ctx:
        inbox.unread_count(pub(keys, "alice"), after=0)
    assert len(ctx.captured_queries) == 1


def test_a_batch_writes_its_inbox_rows_in_one_statement(tipper, board, keys):
    """Five replies reconciled in one batch: one INSERT of notifications, no query per row."""
    from forum.ingest.reconcile import reconcile_batch
    from forum.protocol import encode_event

    root = thread(tipper, keys["alice"])
    for i in range(5):
        event = nostr.reply_event(keys["bob"], board="general", root=root, content=f"r{i}")
        tipper.record_only(tipper.pay(encode_event(event), 40_000, record=False))
    with CaptureQueriesContext(connection) as ctx:
        reconcile_batch()
    inserts = [q["sql"] for q in ctx.captured_queries if 'INTO "forum_notification"' in q["sql"]]
    assert len(inserts) == 1
    assert Notification.objects.filter(recipient=pub(keys, "alice")).count() == 5


@pytest.mark.asyncio
async def test_the_bell_hears_of_a_reply_over_the_live_socket(tipper, board, keys):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    alice = pub(keys, "alice")
    root = await sync_to_async(thread)(tipper, keys["alice"])
    socket = WebsocketCommunicator(
        application, f"/ws/inbox/{alice}/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    connected, _ = await socket.connect()
    assert connected
    assert await socket.receive_json_from() == {"type": "hello", "group": f"inbox.{alice}"}
    await sync_to_async(reply)(tipper, keys["bob"], root)
    assert await socket.receive_json_from(timeout=5) == {"type": "inbox.new", "pubkey": alice}
    await sync_to_async(reply)(tipper, keys["alice"], root)  # her own: nothing
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()
