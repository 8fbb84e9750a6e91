"""Lock, pin and ban: idempotent and audited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from forum import realtime
from forum.models import Ban, ModerationAction, Thread
from forum.services import moderation

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("do", "undo", "flag"),
    [
        (moderation.thread_lock, moderation.thread_unlock, "is_locked"),
        (moderation.thread_pin, moderation.thread_unpin, "is_pinned"),
    ],
)
def test_thread_flags(
    forum, moderator, do, undo, flag, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(realtime, "broadcast_now", lambda g, t, p: sent.append((g, t, p)))
    assert undo(actor=moderator, thread=forum.thread) is False
    with django_capture_on_commit_callbacks(execute=True):
        assert do(actor=moderator, thread=forum.thread, reason="why") is True
    assert do(actor=moderator, thread=forum.thread) is False
    assert getattr(Thread.objects.get(pk=forum.thread.pk), flag) is True
    assert undo(actor=moderator, thread=forum.thread) is True
    assert getattr(Thread.objects.get(pk=forum.thread.pk), flag) is False
    actions = list(ModerationAction.objects.order_by("id").values_list("action", "reason"))
    assert len(actions) == 2 and actions[0][1] == "why"
    assert any(t == "thread.updated" and p[flag] for _, t, p in sent)


def test_ban_is_idempotent_and_changes_expiry(forum, moderator):
    pubkey = forum.bob.pubkey
    assert moderation.author_ban(actor=moderator, pubkey=pubkey, reason="spam") is True
    assert moderation.author_ban(actor=moderator, pubkey=pubkey.upper(), reason="spam") is False
    assert Ban.objects.active().filter(pubkey=pubkey).count() == 1

    expires = timezone.now() + dt.timedelta(days=7)
    assert moderation.author_ban(actor=moderator, pubkey=pubkey, expires_at=expires) is True
    ban = Ban.objects.get()
    assert ban.expires_at == expires and ban.created_by == moderator
    assert not Ban.objects.active(at=expires + dt.timedelta(seconds=1)).exists()

    assert moderation.author_unban(actor=moderator, pubkey=pubkey, reason="appeal") is True
    assert moderation.author_unban(actor=moderator, pubkey=pubkey) is False
    assert not Ban.objects.active().exists()
    assert Ban.objects.get().lifted_at is not None  # kept as history
    assert list(ModerationAction.objects.order_by("id").values_list("action", flat=True)) == [
        "author.ban",
        "author.ban",
        "author.unban",
    ]


def test_ban_applies_from_now_on(forum, moderator):
    before = timezone.now()
    moderation.author_ban(actor=moderator, pubkey=forum.bob.pubkey)
    # The core asks "active at settle time": a payment settled before the ban is unaffected.
    assert not Ban.objects.active(at=before - dt.timedelta(seconds=1)).exists()
    assert Ban.objects.active(at=timezone.now()).exists()


@pytest.mark.parametrize("bad", ["", "xyz", "ab" * 31, "02" + "ab" * 32])
def test_ban_refuses_bad_pubkeys(moderator, bad):
    with pytest.raises(ValidationError):
        moderation.author_ban(actor=moderator, pubkey=bad)


def test_ban_refuses_an_expiry_in_the_past(forum, moderator):
    with pytest.raises(ValidationError):
        moderation.author_ban(
            actor=moderator,
            pubkey=forum.bob.pubkey,
            expires_at=timezone.now() - dt.timedelta(minutes=1),
        )
    assert not Ban.objects.exists() and not ModerationAction.objects.exists()
