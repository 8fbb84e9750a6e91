"""Guard: an event that was rejected (banned, unknown board) and is paid again gets a fresh
hearing and is published, not filed as a duplicate of itself.

Each payment is a real keysend through simnet recorded as the listener records it; the same
signed event travels twice, as a wallet retrying after the moderator fixed the cause would.
"""

from __future__ import annotations

import pytest

from forum import nostr
from forum.models import Author, Event, Rejection, Thread
from forum.services.moderation.ban import author_ban, author_unban
from forum.services.moderation.boards import board_create

pytestmark = pytest.mark.django_db(transaction=True)


def reasons_of(entry) -> list[str]:
    return list(Rejection.objects.filter(ledger_entry=entry).values_list("reason", flat=True))


def test_banned_then_unbanned_event_paid_again_is_published(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="second chance")
    author_ban(actor=None, pubkey=event.pubkey, reason="spam")
    first = poster.post(event, 10_000)
    assert reasons_of(first) == ["banned"]
    assert Event.objects.get(event_id=event.id).state == "rejected"

    author_unban(actor=None, pubkey=event.pubkey)
    again = poster.post(event, 10_000)

    assert reasons_of(again) == []  # in particular not "duplicate"
    published = Event.objects.get(event_id=event.id)
    assert published.state == "published"
    assert published.paid_msat == 10_000  # the new payment, not the sum of both
    thread = Thread.objects.get()
    assert (thread.event_id, thread.title) == (published.pk, "t")
    assert reasons_of(first) == ["banned"]  # the first payment's verdict stands
    assert Author.objects.get(pubkey=event.pubkey).spent_msat == 20_000


def test_unknown_board_then_created_event_paid_again_is_published(poster, board, bob_key):
    event = nostr.thread_event(bob_key, board="later", title="early", content="too soon")
    first = poster.post(event, 10_000, sender="bob")
    assert reasons_of(first) == ["unknown_board"]

    board_create(actor=None, slug="later", title="Later", thread_price_msat=5_000)
    again = poster.post(event, 5_000, sender="bob")

    assert reasons_of(again) == []
    published = Event.objects.get(event_id=event.id)
    assert published.state == "published"
    assert published.board.slug == "later"
    assert Thread.objects.filter(board__slug="later").count() == 1


def test_published_event_paid_again_is_still_a_duplicate(poster, board, alice_key):
    """The other side of the fresh hearing: only a rejected event gets one."""
    event = nostr.thread_event(alice_key, board="general", title="t", content="once")
    poster.post(event, 10_000)
    again = poster.post(event, 10_000)
    assert reasons_of(again) == ["duplicate"]
    assert Thread.objects.count() == 1
