"""rebuild_from_node with rooms: a live room comes back as it was, a destroyed one stays gone
(the node still holds its payments, records and all)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from forum import nostr
from forum.models import Board, Event, LedgerEntry, Thread
from forum.services import rooms
from tests.forum.core.conftest import fresh_forum_node  # noqa: F401 (fixture)
from tests.forum.rooms.conftest import RoomPoster
from tests.forum.rooms.test_rooms import scan_database

pytestmark = pytest.mark.django_db(transaction=True)

GONE = "Walrus-Lantern-5512"


def test_rebuild_keeps_live_rooms_and_does_not_resurrect_destroyed_ones(
    fresh_forum_node,  # noqa: F811
    room_price,
    keys,
):
    poster = RoomPoster(fresh_forum_node)
    live_event, _ = poster.rent(keys["owner"], slug="alive", name="Alive", amount_msat=room_price)
    gone_event, _ = poster.rent(keys["owner"], slug="gone", name=f"{GONE}", amount_msat=room_price)
    live_thread = nostr.thread_event(keys["alice"], board="alive", title="Hi", content="here")
    poster.post(live_thread, 10_000)
    thread = nostr.thread_event(keys["alice"], board="gone", title=GONE, content=f"{GONE}!")
    poster.post(thread, 10_000)
    reply = nostr.reply_event(keys["bob"], board="gone", root=thread, content=f"{GONE}?")
    poster.post(reply, 1_000, sender="bob")
    poster.tip(thread.id, 5_000)
    Board.objects.filter(slug="gone").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert rooms.rooms_destroy_expired() == 1
    gone_ids = [gone_event.id, thread.id, reply.id]
    assert scan_database([GONE, *gone_ids]) == []
    ledger_before = sorted(LedgerEntry.objects.values_list("payment_hash", "amount_msat"))

    call_command("rebuild_from_node", "--yes", stdout=open("/dev/null", "w"))  # noqa: SIM115

    alive = Board.objects.get(slug="alive")
    assert alive.destroyed_at is None and alive.title == "Alive"
    assert Event.objects.get(event_id=live_event.id).board == alive  # published again, same room
    assert Thread.objects.filter(event__event_id=live_thread.id, board=alive).exists()
    assert Board.objects.get(slug="gone").destroyed_at is not None
    assert sorted(LedgerEntry.objects.values_list("payment_hash", "amount_msat")) == ledger_before
    assert scan_database([GONE, *gone_ids]) == []
