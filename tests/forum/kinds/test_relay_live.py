"""An open /relay subscription receives a profile and a deletion the moment their keysend
payments are reconciled (a `relay.event` on the public feed), as it does posts."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from forum import nostr
from forum.models import SiteSettings
from tests.forum.kinds.test_kinds import deletion_event, profile_event

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def receive(communicator: WebsocketCommunicator) -> list:
    return json.loads(await communicator.receive_from(timeout=5))


async def test_profile_and_deletion_reach_open_subscriptions(poster, board, alice_key):
    site = SiteSettings()
    root = nostr.thread_event(alice_key, board="general", title="t", content="c")
    await database_sync_to_async(poster.post)(root, 10_000)
    communicator = WebsocketCommunicator(application, "/relay")
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data=json.dumps(["REQ", "s", {"kinds": [0, 5]}]))
    assert await receive(communicator) == ["EOSE", "s"]

    profile = profile_event(alice_key, name="Live")
    await database_sync_to_async(poster.post)(profile, site.profile_price_msat)
    assert await receive(communicator) == ["EVENT", "s", profile.to_dict()]
    deletion = deletion_event(alice_key, root.id)
    await database_sync_to_async(poster.post)(deletion, site.deletion_price_msat)
    assert await receive(communicator) == ["EVENT", "s", deletion.to_dict()]
    await communicator.disconnect()
