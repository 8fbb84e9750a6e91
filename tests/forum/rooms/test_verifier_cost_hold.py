"""Hold mode: a room whose password check would cost too much is cancelled, not charged.

The hold fixtures (`listening`) come from tests/forum/hold/conftest.py via this folder's conftest.
"""

from __future__ import annotations

import pytest

from forum.models import Board, LedgerEntry, Rejection
from forum.services import rooms
from tests.forum.rooms.test_rooms import COSTLY_VERIFIER

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_room_with_a_costly_verifier_is_cancelled_uncharged(listening, settings):
    from forum import nostr

    settings.ROOM_PRICE_SATS = 50
    key = nostr.generate_secret_key()
    tags = [["d", "costly-held"], ["name", "Costly"], ["verifier", COSTLY_VERIFIER]]
    event = nostr.sign_event(key, kind=rooms.KIND_ROOM_CREATE, tags=tags, content="")
    before = listening.balances_msat("alice")

    payment = listening.result(listening.post(event, 50_000))

    assert payment.status == "FAILED"
    assert listening.balances_msat("alice") == before  # nothing charged, fees included
    entry = LedgerEntry.objects.get(payment_hash=payment.payment_hash)
    assert entry.status == LedgerEntry.Status.CANCELLED
    rejection = Rejection.objects.get(ledger_entry=entry)
    assert rejection.reason == "malformed" and "costs too much" in rejection.message
    assert not Board.objects.filter(slug="costly-held").exists()

    # The same room with the default cost opens.
    tags[2] = ["verifier", rooms.verifier_make(password="pw")]
    event = nostr.sign_event(key, kind=rooms.KIND_ROOM_CREATE, tags=tags, content="")
    assert listening.result(listening.post(event, 50_000)).succeeded
