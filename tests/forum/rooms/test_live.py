"""Live sockets of a private room: only a session that unlocked the room may follow it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from config.asgi import application
from forum.models import Board
from forum.services import rooms
from tests.forum.relay.conftest import _no_lingering_db_connections
from tests.forum.rooms.conftest import PASSWORD, unlock

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
def _consumer_connections_closed(django_db_blocker):
    # The consumer's room check reads the database on asgiref's worker thread (see there).
    with _no_lingering_db_connections(django_db_blocker):
        yield


def make_room() -> Client:
    Board.objects.create(
        slug="den",
        title="Den",
        is_listed=False,
        password_verifier=rooms.verifier_make(password=PASSWORD),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    member = Client()
    assert unlock(member, "den").status_code == 302
    return member


async def follows(path: str, cookie: str = "") -> bool:
    headers = [ORIGIN] + ([(b"cookie", cookie.encode())] if cookie else [])
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.mark.asyncio
async def test_a_rooms_board_socket_needs_the_unlocked_session():
    member = await sync_to_async(make_room)()
    cookie = f"sessionid={member.cookies['sessionid'].value}"
    assert not await follows("/ws/board/den/")
    assert await follows("/ws/board/den/", cookie)
    assert await follows("/ws/board/general/")  # public boards stay open to all
