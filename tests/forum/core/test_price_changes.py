"""A board's price change applies to payments settled after it, even if reconciled later."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from forum import nostr
from forum.models import Event, Rejection, Thread
from forum.services import moderation

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_raise_does_not_reach_back_to_payments_settled_before_it(
    poster, board, alice_key, bob_key
):
    moderator = get_user_model().objects.create_user("mod", is_staff=True)
    early = nostr.thread_event(
        alice_key, board=board.slug, title="Early", content="paid at 10 sats"
    )
    settled_before = poster.post(early, 10_000, record=False)  # settled; not yet reconciled

    moderation.board_update(actor=moderator, board=board, thread_price_msat=50_000)

    poster.record(settled_before)  # the listener catches up after the raise
    assert Event.objects.get(event_id=early.id).state == Event.State.PUBLISHED
    assert Thread.objects.filter(event__event_id=early.id).exists()

    time.sleep(1.05)  # lnd's settle times are whole seconds: settle clearly after the raise
    late = nostr.thread_event(
        bob_key, board=board.slug, title="Late", content="old price, too late"
    )
    poster.post(late, 10_000, sender="bob")
    assert Rejection.objects.get(event_ref=late.id).reason == Rejection.Reason.UNDERPAID
