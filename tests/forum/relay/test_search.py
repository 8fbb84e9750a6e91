"""NIP-50: the relay's `search` filter field, answered by the forum's own search selector.

Best matches first; other fields narrow them; hidden posts, deleted posts and private rooms
never come back; a live subscription with `search` gets its stored matches, then nothing.
"""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from forum.models import Event
from forum.relay import selectors
from forum.relay.filters import matches, parse_filter
from forum.services.moderation.hide import post_hide
from tests.forum.relay.factories import BOB, make_board, reply, store, thread


def found(obj: dict, limit: int = 100) -> list[str]:
    plan = [(parse_filter(obj), limit)]
    return [event.data["content"] for event in selectors.events_for_filters(plan)]


@pytest.fixture
def forum(db):
    board = make_board()
    room = make_board("vault", is_listed=False, password_verifier="pbkdf2$x")
    root = thread(title="Routing fees", content="How are routing fees set?", created_at=100)
    store(root, board)
    best = reply(root, content="routing routing routing: fees and routing", created_at=101)
    plain = reply(root, content="one mention of routing", created_at=103)
    other = reply(root, content="tomatoes need sun", created_at=102, secret=BOB)
    hidden = reply(root, content="hidden routing spam", created_at=104)
    for event in (best, plain, other):
        store(event, board)
    store(hidden, board, hidden=True)
    secret_root = thread(board="vault", title="Room routing", content="routing in a room")
    store(secret_root, room)
    return {"root": root, "best": best, "plain": plain, "board": board}


@pytest.mark.django_db
def test_search_returns_matches_best_first_and_never_hidden_or_private(forum):
    contents = found({"search": "routing"})
    assert "hidden routing spam" not in contents and "routing in a room" not in contents
    assert set(contents) == {
        "How are routing fees set?",
        "routing routing routing: fees and routing",
        "one mention of routing",
    }
    assert contents.index("routing routing routing: fees and routing") < contents.index(
        "one mention of routing"
    )
    assert found({"search": "routing", "kinds": [11]}) == ["How are routing fees set?"]
    assert found({"search": "routing", "limit": 1}, limit=1) == contents[:1]
    assert found({"search": "tomatoes", "authors": [forum["root"].pubkey]}) == []
    assert found({"search": "include:spam tomatoes"}) == ["tomatoes need sun"]


@pytest.mark.django_db
def test_a_post_hidden_or_deleted_later_leaves_the_results(forum):
    assert "one mention of routing" in found({"search": "mention"})
    post_hide(actor=None, post=Event.objects.get(event_id=forum["plain"].id).post, reason="x")
    assert found({"search": "mention"}) == []
    assert selectors.count_for_filters([parse_filter({"search": "routing"})]) == 2


def test_live_events_never_match_a_search_filter():
    flt = parse_filter({"search": "routing"})
    assert not matches(flt, thread(content="routing").to_dict())


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_search_req_over_the_socket_gets_matches_then_eose():
    from channels.db import database_sync_to_async

    @database_sync_to_async
    def seed():
        board = make_board()
        root = thread(title="Zebra", content="zebra crossing", created_at=100)
        store(root, board)
        store(thread(title="Other", content="nothing here", created_at=101), board)
        return root

    root = await seed()
    socket = WebsocketCommunicator(application, "/relay")
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to(["REQ", "s", {"search": "zebra"}])
    assert await socket.receive_json_from(timeout=5) == ["EVENT", "s", root.to_dict()]
    assert await socket.receive_json_from(timeout=5) == ["EOSE", "s"]
    await socket.send_json_to(["COUNT", "c", {"search": "zebra"}])
    assert await socket.receive_json_from(timeout=5) == ["COUNT", "c", {"count": 1}]
    await socket.disconnect()
