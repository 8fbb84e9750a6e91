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


@pytest.mark.asyncio
async def test_broadcast_from_another_thread_reaches_an_open_socket_promptly():
    """The embedded listener broadcasts from its own thread onto the in-memory layer."""
    import threading
    import time

    communicator = WebsocketCommunicator(application, "/ws/thread/abc/", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.receive_json_from()

    sent_at: list[float] = []

    def listener_thread() -> None:
        time.sleep(0.2)  # the socket's loop is idle in select() by now, nothing else wakes it
        sent_at.append(time.monotonic())
        realtime.broadcast_now(realtime.thread_group("abc"), "post.published", {"number": 7})

    threading.Thread(target=listener_thread, daemon=True).start()
    message = await communicator.receive_json_from(timeout=3)
    received_at = time.monotonic()
    assert message == {"type": "post.published", "number": 7}
    assert received_at - sent_at[0] < 0.5
    await communicator.disconnect()
