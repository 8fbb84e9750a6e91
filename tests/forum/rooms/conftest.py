"""Fixtures for private rooms: a payer over simnet, room-create events, an unlocked client."""

from __future__ import annotations

import pytest

from forum import nostr, protocol
from forum.models import Board
from forum.services import rooms
from tests.forum.core.conftest import Poster
from tests.forum.hold.conftest import held_net, hold, listening  # noqa: F401 (fixtures)

PASSWORD = "correct horse battery staple"


class RoomPoster(Poster):
    """`Poster` (record + reconcile like the listener) plus rooms, tips and multipart."""

    def rent(self, key: str, *, slug: str, name: str, amount_msat: int, **kw):
        event = rooms.room_event(key, slug=slug, name=name, password=PASSWORD, **kw)
        return event, self.post(event, amount_msat)

    def tip(self, event_id: str, amount_msat: int, **kw):
        return self.pay(protocol.encode_tip(event_id), amount_msat, **kw)

    def post_in_parts(self, event: nostr.Event, part_msat: int) -> list:
        payments = protocol.split_event(event, budget=protocol.onion_budget_for_records(3))
        assert len(payments) > 1
        return [self.pay(records, part_msat) for records in payments]


@pytest.fixture
def room_poster(forum_node) -> RoomPoster:
    return RoomPoster(forum_node)


@pytest.fixture
def room_price(settings) -> int:
    settings.ROOM_PRICE_SATS = 500
    return 500_000


@pytest.fixture
def keys() -> dict[str, str]:
    return {name: nostr.generate_secret_key() for name in ("owner", "alice", "bob")}


def unlock(client, slug: str, password: str = PASSWORD):
    return client.post(f"/r/{slug}/unlock", {"password": password})


@pytest.fixture
def public_board(db) -> Board:
    return Board.objects.create(slug="general", title="General")


@pytest.fixture(autouse=True)
def _fresh_unlock_throttle() -> None:
    # The throttle lives in the cache, which is Redis (shared across runs) under REDIS_URL.
    from django.core.cache import cache

    cache.clear()
