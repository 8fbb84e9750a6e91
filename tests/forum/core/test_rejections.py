"""Every rejection code, each from a real keysend, with its NIP-01 prefix and a row kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from forum import nostr, protocol
from forum.ingest import sweep
from forum.models import Ban, Event, LedgerEntry, Rejection

pytestmark = pytest.mark.django_db(transaction=True)

R = protocol.RECORD_TYPES


def only_rejection(entry: LedgerEntry) -> Rejection:
    rows = list(Rejection.objects.filter(ledger_entry=entry))
    assert len(rows) == 1, rows
    return rows[0]


def assert_rejected(entry: LedgerEntry, reason: str, prefix: str) -> Rejection:
    entry.refresh_from_db()
    assert entry.reconcile_state == "done", entry.reconcile_error
    rejection = only_rejection(entry)
    assert rejection.reason == reason
    assert rejection.message.startswith(prefix + ": "), rejection.message
    assert rejection.amount_msat > 0
    return rejection


def test_malformed(poster, board):
    entry = poster.pay({R["version"]: b"1", R["pubkey"]: b"not base64!"}, 5_000)
    assert entry.purpose == "message"
    assert_rejected(entry, "malformed", "invalid")


def test_unsupported_version(poster, board):
    entry = poster.pay({R["version"]: b"7", R["topup"]: b"x"}, 1_000)
    rejection = assert_rejected(entry, "unsupported_version", "invalid")
    assert "protocol version 7 is not supported" in rejection.message


def test_bad_signature(poster, board, alice_key):
    good = nostr.thread_event(alice_key, board="general", title="t", content="original")
    records = protocol.encode_event(good)
    records[R["content"]] = b"tampered"  # the id is recomputed, so the signature fails
    entry = poster.pay(records, 10_000)
    rejection = assert_rejected(entry, "bad_signature", "invalid")
    assert not Event.objects.exists()
    assert rejection.event_ref  # filed under the recomputed id


def test_bad_id_from_parts(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="x" * 50)
    other = nostr.thread_event(alice_key, board="general", title="t", content="y")
    data = protocol.pack_event(event)
    half = len(data) // 2
    first = poster.pay(protocol.encode_part(other.id, 0, 2, data[:half]), 5_000)
    last = poster.pay(protocol.encode_part(other.id, 1, 2, data[half:]), 5_000)
    first.refresh_from_db()
    rejections = list(Rejection.objects.filter(event_ref=other.id))
    assert [r.reason for r in rejections] == ["bad_id"]
    assert rejections[0].amount_msat == 10_000
    assert rejections[0].ledger_entry_id in (first.pk, last.pk)


def test_unsupported_kind(poster, board, alice_key):
    event = nostr.sign_event(alice_key, kind=1, tags=[["h", "general"]], content="a note")
    entry = poster.post(event, 10_000)
    assert_rejected(entry, "unsupported_kind", "invalid")
    assert Event.objects.get(event_id=event.id).state == "rejected"


def test_unknown_board(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="nope", title="t", content="c")
    rejection = assert_rejected(poster.post(event, 10_000), "unknown_board", "invalid")
    assert "'nope'" in rejection.message


def test_too_large(poster, board, alice_key):
    board.max_content_length = 10
    board.save()
    event = nostr.thread_event(alice_key, board="general", title="t", content="x" * 11)
    rejection = assert_rejected(poster.post(event, 10_000), "too_large", "invalid")
    assert "Shorten" in rejection.message


def test_underpaid_keeps_the_event_waiting(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    rejection = assert_rejected(poster.post(event, 4_000), "underpaid", "rate-limited")
    assert "Top up 6 sats" in rejection.message
    stored = Event.objects.get(event_id=event.id)
    assert (stored.state, stored.waiting_for, stored.paid_msat, stored.price_msat) == (
        "pending",
        "underpaid",
        4_000,
        10_000,
    )


def test_duplicate(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    first = poster.post(event, 10_000)
    second = poster.post(event, 10_000)
    assert not Rejection.objects.filter(ledger_entry=first).exists()
    assert_rejected(second, "duplicate", "duplicate")
    assert Event.objects.get(event_id=event.id).state == "published"


def test_banned(poster, board, alice_key):
    Ban.objects.create(pubkey=nostr.public_key(alice_key), reason="spam")
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    assert_rejected(poster.post(event, 10_000), "banned", "blocked")


def test_ban_that_expired_does_not_block(poster, board, alice_key):
    Ban.objects.create(
        pubkey=nostr.public_key(alice_key), expires_at=timezone.now() - timedelta(seconds=5)
    )
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    poster.post(event, 10_000)
    assert Event.objects.get(event_id=event.id).state == "published"


def test_thread_locked(poster, board, alice_key, bob_key):
    root = nostr.thread_event(alice_key, board="general", title="t", content="c")
    poster.post(root, 10_000)
    Event.objects.get(event_id=root.id).thread.__class__.objects.update(is_locked=True)
    reply = nostr.reply_event(bob_key, board="general", root=root, content="late")
    assert_rejected(poster.post(reply, 2_000, sender="bob"), "thread_locked", "blocked")


def test_orphan_timeout(poster, board, alice_key, bob_key):
    root = nostr.thread_event(alice_key, board="general", title="never paid", content="c")
    reply = nostr.reply_event(bob_key, board="general", root=root, content="hello?")
    entry = poster.post(reply, 2_000, sender="bob")
    assert Event.objects.get(event_id=reply.id).waiting_for == "parent"
    assert not Rejection.objects.exists()
    report = sweep.sweep_run(now=timezone.now() + timedelta(hours=2))
    assert report.orphans_expired == 1
    assert_rejected(entry, "orphan_timeout", "invalid")
    assert Event.objects.get(event_id=reply.id).state == "rejected"


def test_incomplete_parts(poster, board, alice_key):
    event = nostr.thread_event(alice_key, board="general", title="t", content="z" * 40)
    data = protocol.pack_event(event)
    entry = poster.pay(protocol.encode_part(event.id, 0, 2, data[:30]), 5_000)
    assert not Rejection.objects.exists()
    report = sweep.sweep_run(now=timezone.now() + timedelta(hours=2))
    assert report.parts_expired == 1
    rejection = assert_rejected(entry, "incomplete_parts", "invalid")
    assert "1 of 2" in rejection.message


def test_unknown_target_topup(poster, board):
    entry = poster.topup("ab" * 32, 1_000)
    assert_rejected(entry, "unknown_target", "invalid")


def test_plain_keysend_is_revenue_without_rejection(poster, board):
    entry = poster.pay({}, 3_000)
    entry.refresh_from_db()
    assert (entry.purpose, entry.reconcile_state, entry.amount_msat) == ("other", "done", 3_000)
    assert not Rejection.objects.exists()


def test_every_reason_has_a_prefix():
    from forum.ingest.rejections import PREFIXES, rejection_message

    for reason in Rejection.Reason.values:
        assert reason in PREFIXES
        assert rejection_message(reason).startswith(PREFIXES[reason] + ": ")
