"""Websockets through the real ASGI app: origin checking and group relays."""

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from forum import realtime

ORIGIN = [(b"origin", b"http://127.0.0.1:8000")]

# Channels closes stale DB connections around every message, so the sockets need DB access.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.asyncio
async def test_board_socket_receives_a_broadcast():
    communicator = WebsocketCommunicator(application, "/ws/board/general/", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from()
    assert hello == {"type": "hello", "group": "board.general"}

    from channels.layers import get_channel_layer

    await get_channel_layer().group_send(
        realtime.board_group("general"),
        {"type": "post.published", "payload": {"event_id": "ab" * 32}},
    )
    message = await communicator.receive_json_from(timeout=2)
    assert message == {"type": "post.published", "event_id": "ab" * 32}
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/board/general/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected
