"""The moderation console tells a payment hold mode turned away (never charged) from one the
forum kept, and shows what a turned-away payment carried: its signed event, decoded."""

from __future__ import annotations

import re
import secrets

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from forum import nostr, protocol
from forum.models import Rejection
from forum.permissions import MODERATOR_GROUP
from tests.forum.hold.conftest import Hold, wait_for
from tests.forum.moderation.conftest import make_rejection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mod_client(settings) -> Client:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = User.objects.create_user("mod", password="pw")
    user.groups.add(Group.objects.get_or_create(name=MODERATOR_GROUP)[0])
    client = Client()
    client.force_login(user)
    return client


def _rows(page: str, event_id: str) -> list[str]:
    rows = re.findall(r"<tr data-rejection=.*?</tr>", page, re.S)
    return [r for r in rows if event_id[:12] in r]


def _row(page: str, event_id: str) -> str:
    (row,) = _rows(page, event_id)
    return row


def test_refused_and_kept_payments_are_labelled_and_decoded(
    listening: Hold, board, alice_key, bob_key, mod_client
):
    # Refused while held: underpaid, a valid signed thread; nothing charged.
    cheap = nostr.thread_event(alice_key, board="general", title="Cheap title", content="hi")
    assert listening.result(listening.post(cheap, 1_000)).status == "FAILED"
    # Kept: a settled payment reconciliation refused (made directly: hold mode refuses them
    # before they settle, so only a ban between check and settle, or settle mode, gives one).
    kept_row = make_rejection(board=board, pubkey=nostr.public_key(bob_key), ln_node="")
    # A multipart set whose parts are all refused: the parts join back into the event.
    long = nostr.thread_event(alice_key, board="nowhere", title="Long one",
                                content=secrets.token_hex(1200))  # fmt: skip
    parts = protocol.split_event(long, budget=protocol.onion_budget_for_records(3))
    assert len(parts) > 1
    futures = [listening.pay(records, 1_000) for records in parts]
    assert all(listening.result(f).status == "FAILED" for f in futures)
    wait_for(lambda: Rejection.objects.filter(event_ref=long.id).exists(), what="parts refused")

    page = mod_client.get(reverse("mod:rejections")).content.decode()
    assert "not decodable" not in page
    row = _row(page, kept_row.event_ref)
    assert 'data-charged="yes"' in row and "kept" in row and "5 sats" in row
    row = _row(page, cheap.id)
    assert 'data-charged="no"' in row and "not charged" in row and "1 sat offered" in row
    assert "Cheap title" in row and "signature checked" in row and "kind 11" in row
    assert "Nothing was charged" in row  # no refund button: the sats never moved
    # One rejection per refused part; each shows the event its set joins back into.
    rows = _rows(page, long.id)
    assert rows and all('data-charged="no"' in row and "Long one" in row for row in rows)

    refused = mod_client.get(reverse("mod:rejections"), {"charged": "no"}).content.decode()
    kept = mod_client.get(reverse("mod:rejections"), {"charged": "yes"}).content.decode()
    assert cheap.id[:12] in refused and cheap.id[:12] not in kept
    assert kept_row.event_ref[:12] in kept and kept_row.event_ref[:12] not in refused

    home = mod_client.get(reverse("mod:home")).content.decode()
    assert re.search(r"<strong>\d+</strong> refused, not charged, today", home)
    assert "<strong>1</strong> rejection kept today" in home
