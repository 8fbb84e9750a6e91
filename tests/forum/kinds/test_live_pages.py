"""Open pages follow an author's edit and deletion without a reload: the thread page's socket
gets `post.edited` (the page swaps in the new card) and `post.hidden` (the page drops it), and
the home page's latest feed drops a deleted post."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from forum import nostr
from forum.models import SiteSettings
from tests.forum.kinds.test_kinds import deletion_event, edit_event
from tests.forum.relay.conftest import _no_lingering_db_connections

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = [(b"origin", b"http://127.0.0.1:8000")]


@pytest.fixture(autouse=True)
def _consumer_connections_closed(django_db_blocker):
    with _no_lingering_db_connections(django_db_blocker):
        yield


async def _open(path: str) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, path, headers=ORIGIN)
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from(timeout=5))["type"] == "hello"
    return socket


async def _next(socket: WebsocketCommunicator, wanted: str) -> dict:
    while True:
        message = await socket.receive_json_from(timeout=5)
        for one in message["messages"] if message["type"] == "batch" else [message]:
            if one["type"] == wanted:
                return one


async def test_thread_and_home_pages_follow_edits_and_deletions(poster, board, alice_key):
    site = SiteSettings()
    root = nostr.thread_event(alice_key, board="general", title="t", content="c")
    reply = nostr.reply_event(alice_key, board="general", root=root, content="old words")
    await database_sync_to_async(poster.post)(root, 10_000)
    await database_sync_to_async(poster.post)(reply, 100_000)
    thread_page = await _open(f"/ws/thread/{root.id}/")
    home = await _open("/ws/feed/latest/")

    edit = edit_event(alice_key, reply.id, "new words")
    await database_sync_to_async(poster.post)(edit, site.edit_price_msat)
    message = await _next(thread_page, "post.edited")
    assert (message["event_id"], message["number"]) == (reply.id, 1)

    await database_sync_to_async(poster.post)(
        deletion_event(alice_key, reply.id), site.deletion_price_msat
    )
    assert (await _next(thread_page, "post.hidden"))["event_id"] == reply.id
    assert (await _next(home, "post.hidden"))["event_id"] == reply.id
    await thread_page.disconnect()
    await home.disconnect()
