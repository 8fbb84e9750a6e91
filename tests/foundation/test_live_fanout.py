"""Live fan-out: many sockets on one page cost the channel layer one member per process, each
message is rendered and encoded once, and the home feed never carries a private room's post."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from config.asgi import application
from forum import realtime
from forum.consumers import FEED_GROUP
from forum.ingest.publish import published_payload
from tests.forum.relay.conftest import _no_lingering_db_connections
from tests.forum.web import factories as f

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = [(b"origin", b"http://127.0.0.1:8000")]


@pytest.fixture(autouse=True)
def _consumer_connections_closed(django_db_blocker):
    with _no_lingering_db_connections(django_db_blocker):
        yield


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings):
    """The embedded default's in-memory layer, and channels_redis when REDIS_URL is set."""
    from channels.layers import channel_layers

    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [url], "prefix": "fanout-test"},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield request.param
    channel_layers.backends.clear()


async def _open(path: str, n: int) -> list[WebsocketCommunicator]:
    sockets = []
    for _ in range(n):
        socket = WebsocketCommunicator(application, path, headers=ORIGIN)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "hello"
        sockets.append(socket)
    return sockets


async def _private_room():
    """A private room (unlisted, with a password) open for an hour: nothing of it is public."""
    from forum.services import rooms

    verifier = await sync_to_async(rooms.verifier_make)(password="pw pw pw pw")
    return await sync_to_async(f.board)(
        "den",
        is_listed=False,
        password_verifier=verifier,
        expires_at=timezone.now() + timedelta(hours=1),
    )


async def _group_size(group: str) -> int:
    layer = get_channel_layer()
    if hasattr(layer, "groups"):  # in-memory
        return len(layer.groups.get(group, {}))
    connection = layer.connection(layer.consistent_hash(group))
    return await connection.zcard(layer._group_key(group))


def _reply_payload(thread, root, content: str) -> tuple[dict, str]:
    post, event = f.replies(thread, root, 1, content=content)[0]
    payload = published_payload(event=post.event, board=thread.board, thread=thread, post=post)
    return payload, event.id


async def test_many_sockets_on_a_thread_are_one_group_member_and_all_get_the_card(layer):
    board = await sync_to_async(f.board)("general")
    thread, root = await sync_to_async(f.thread)(board, title="Busy")
    path = f"/ws/thread/{root.id}/"
    sockets = await _open(path, 30)
    group = realtime.thread_group(root.id)
    # One member for this process, however many readers: a message costs one delivery.
    assert await _group_size(group) == 1

    payload, event_id = await sync_to_async(_reply_payload)(thread, root, "hello **crowd**")
    await get_channel_layer().group_send(group, {"type": "post.published", "payload": payload})
    texts = [await socket.receive_from(timeout=5) for socket in sockets]
    assert len(set(texts)) == 1  # encoded once: the same text for every socket
    message = json.loads(texts[0])
    assert message["type"] == "post.published" and message["event_id"] == event_id
    # The card as a page load shows it, so no socket has to fetch /e/<id>/fragment.
    assert f'data-event-id="{event_id}"' in message["html"]
    assert "<strong>crowd</strong>" in message["html"]

    for socket in sockets[:-1]:
        await socket.disconnect()
    assert await _group_size(group) == 1
    await sockets[-1].disconnect()
    assert await _group_size(group) == 0  # the last reader gone: the process leaves the group


async def test_a_board_socket_gets_the_fresh_row(layer):
    board = await sync_to_async(f.board)("general")
    thread, root = await sync_to_async(f.thread)(board, title="Row title")
    [socket] = await _open("/ws/board/general/", 1)
    payload, _ = await sync_to_async(_reply_payload)(thread, root, "r")
    await get_channel_layer().group_send(
        realtime.board_group("general"), {"type": "post.published", "payload": payload}
    )
    message = await socket.receive_json_from(timeout=5)
    assert "Row title" in message["row_html"] and "1 reply" in message["row_html"]
    await socket.disconnect()


async def test_the_home_feed_gets_public_posts_and_never_a_private_rooms(layer):

    public = await sync_to_async(f.board)("general")
    room = await _private_room()
    [socket] = await _open("/ws/feed/latest/", 1)
    assert await _group_size(realtime.PUBLIC_FEED_GROUP) == 1
    room_thread, room_root = await sync_to_async(f.thread)(room, title="Secret plans")
    public_thread, public_root = await sync_to_async(f.thread)(public, title="Open news")
    layer_ = get_channel_layer()
    for thread in (room_thread, public_thread):
        payload = await sync_to_async(
            lambda t=thread: published_payload(event=t.event, board=t.board, thread=t, post=None)
        )()
        await layer_.group_send(
            realtime.PUBLIC_FEED_GROUP, {"type": "post.published", "payload": payload}
        )
    message = await socket.receive_json_from(timeout=5)
    assert message["event_id"] == public_root.id  # the room's came first and was dropped
    assert "Open news" in message["html"]
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()
    assert FEED_GROUP == "home.latest"


async def test_a_long_open_page_stays_in_the_group_past_its_expiry(settings, monkeypatch):
    from channels.layers import channel_layers

    from forum import consumers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"group_expiry": 1},
        }
    }
    channel_layers.backends.clear()
    monkeypatch.setattr(consumers, "GROUP_REFRESH_SECONDS", 0.3)
    [socket] = await _open("/ws/board/general/", 1)
    await asyncio.sleep(1.6)  # the first membership has expired by now
    await get_channel_layer().group_send(
        realtime.board_group("general"), {"type": "post.hidden", "payload": {"event_id": "e"}}
    )
    assert (await socket.receive_json_from(timeout=3))["event_id"] == "e"
    await socket.disconnect()
    channel_layers.backends.clear()


async def test_a_burst_reaches_every_socket_in_order_in_fewer_frames(layer):
    sockets = await _open("/ws/thread/burst/", 3)
    group = realtime.thread_group("burst")
    channel_layer = get_channel_layer()
    for number in range(1, 6):
        payload = {"event_id": f"{number:064x}", "number": number, "thread": "burst"}
        await channel_layer.group_send(group, {"type": "post.hidden", "payload": payload})
    for socket in sockets:
        frames, numbers = 0, []
        while len(numbers) < 5:
            frame = await socket.receive_json_from(timeout=5)
            frames += 1
            messages = frame["messages"] if frame["type"] == "batch" else [frame]
            numbers += [message["number"] for message in messages]
        assert numbers == [1, 2, 3, 4, 5]
        if layer == "memory":  # all five are queued at once: deterministic here
            assert frames < 5  # messages that waited went out together
        await socket.disconnect()


async def test_a_hidden_post_leaves_the_home_feed_and_a_private_rooms_hide_never_reaches_it(
    layer,
):
    from forum.services.moderation.hide import post_hide, thread_hide

    public = await sync_to_async(f.board)("general")
    room = await _private_room()
    thread, root = await sync_to_async(f.thread)(public, title="Open news")
    [(post, event)] = await sync_to_async(f.replies)(thread, root, 1, content="spam")
    room_thread, room_root = await sync_to_async(f.thread)(room, title="Secret plans")
    [(room_post, _)] = await sync_to_async(f.replies)(room_thread, room_root, 1)
    [socket] = await _open("/ws/feed/latest/", 1)

    await sync_to_async(post_hide)(actor=None, post=room_post)
    await sync_to_async(post_hide)(actor=None, post=post)
    message = await socket.receive_json_from(timeout=5)  # the room's never came
    assert (message["type"], message["event_id"], message["number"]) == ("post.hidden", event.id, 1)
    await sync_to_async(thread_hide)(actor=None, thread=room_thread)
    await sync_to_async(thread_hide)(actor=None, thread=thread)
    message = await socket.receive_json_from(timeout=5)
    assert (message["type"], message["event_id"], message["number"]) == ("post.hidden", root.id, 0)
    assert message["thread"] == root.id  # the page drops the thread's replies with it
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_what_the_worker_rendered_reaches_each_page_without_rendering_again(layer):
    """A publishing batch's messages leave with their HTML (forum/views/live.py): each web
    process relays it, and the home feed still gets nothing of a private room's."""
    from forum.ingest.publish import published_messages
    from forum.views import live

    board = await sync_to_async(f.board)("general")
    room = await _private_room()
    thread, root = await sync_to_async(f.thread)(board, title="Rendered once")
    room_thread, room_root = await sync_to_async(f.thread)(room, title="Secret plans")
    thread_socket, board_socket, feed_socket = [
        (await _open(path, 1))[0]
        for path in (f"/ws/thread/{root.id}/", "/ws/board/general/", "/ws/feed/latest/")
    ]

    def rendered(on, on_root, content):
        post, event = f.replies(on, on_root, 1, content=content)[0]
        messages = published_messages(event=post.event, board=on.board, thread=on, post=post)
        return live.messages_render(messages), event.id

    room_messages, _ = await sync_to_async(rendered)(room_thread, room_root, "psst")
    messages, event_id = await sync_to_async(rendered)(thread, root, "hello **all**")
    assert all(live.FRAGMENTS in message for _, message in messages)
    channel_layer = get_channel_layer()
    for group, message in [*room_messages, *messages]:
        await channel_layer.group_send(group, message)
    card = await thread_socket.receive_json_from(timeout=5)
    assert card["event_id"] == event_id and "<strong>all</strong>" in card["html"]
    row = await board_socket.receive_json_from(timeout=5)
    assert "Rendered once" in row["row_html"] and "1 reply" in row["row_html"]
    item = await feed_socket.receive_json_from(timeout=5)
    assert item["event_id"] == event_id and "Rendered once" in item["html"]
    assert await feed_socket.receive_nothing(timeout=0.3)  # the room's was dropped
    for socket in (thread_socket, board_socket, feed_socket):
        await socket.disconnect()


async def test_messages_waiting_in_redis_reach_a_page_together(settings, redis_url):
    """The hub's reader takes every waiting message in one round trip, so a batch the worker
    delivered at once leaves in one frame, not one frame (and four round trips) per message."""
    from asgiref.sync import sync_to_async
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": "fanout-test"},
        }
    }
    channel_layers.backends.clear()
    [socket] = await _open("/ws/thread/batch/", 1)
    group = realtime.thread_group("batch")
    messages = [
        (group, {"type": "post.hidden", "payload": {"event_id": f"{n:064x}", "number": n}})
        for n in range(1, 9)
    ]
    await sync_to_async(realtime.send_batch)(messages)  # one delivery, as a batch's broadcast
    frames, numbers = 0, []
    while len(numbers) < 8:
        frame = await socket.receive_json_from(timeout=5)
        frames += 1
        numbers += [
            m["number"] for m in (frame["messages"] if frame["type"] == "batch" else [frame])
        ]
    assert numbers == list(range(1, 9))
    assert frames <= 2  # the first may leave alone, while the reader takes the rest
    await socket.disconnect()
    channel_layers.backends.clear()


async def test_only_groups_with_an_open_page_count_as_watched(layer):
    """A batch renders and sends only for open pages (`realtime.groups_watched`, read before
    the worker renders): a thread nobody reads costs nothing, one being read is watched until
    its last page closes."""
    board = await sync_to_async(f.board)("general")
    _, read_root = await sync_to_async(f.thread)(board, title="Read")
    _, unread_root = await sync_to_async(f.thread)(board, title="Unread")
    read, unread = realtime.thread_group(read_root.id), realtime.thread_group(unread_root.id)
    sockets = await _open(f"/ws/thread/{read_root.id}/", 2)
    watched = await sync_to_async(realtime.groups_watched)([read, unread, FEED_GROUP])
    assert watched == {read}
    for socket in sockets:
        await socket.disconnect()
    for _ in range(50):  # the hub leaves the group once its last socket is gone
        if not await sync_to_async(realtime.groups_watched)([read]):
            break
        await asyncio.sleep(0.05)
    assert await sync_to_async(realtime.groups_watched)([read, unread]) == set()
