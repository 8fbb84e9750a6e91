"""The console's side of kinds 0/5/1010: the site prices (audited, applied from their settle
time), what authors deleted, and the names of the forum's own nostr.json."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db.models import F

from forum import nostr
from forum.models import ModerationAction, SiteSettings
from forum.permissions import MODERATOR_GROUP
from tests.forum.core.test_rejections import assert_rejected
from tests.forum.kinds.test_kinds import deletion_event, profile_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mod_client(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = User.objects.create_user("mod", password="correct horse battery")
    user.groups.add(Group.objects.get_or_create(name=MODERATOR_GROUP)[0])
    client.force_login(user)
    return client


def test_a_moderator_sets_the_profile_price_and_later_profiles_pay_it(
    mod_client, poster, board, alice_key
):
    response = mod_client.post(
        "/mod/prices/",
        {"profile_price_msat": "20", "deletion_price_msat": "1", "edit_price_msat": "2"},
    )
    assert response.status_code == 302
    assert SiteSettings.current().profile_price_msat == 20_000
    change = ModerationAction.objects.get(action="site.update")
    assert change.details == {
        "before": {"profile_price_msat": 5000},
        "after": {"profile_price_msat": 20000},
    }
    # Settle times are whole seconds: date the change clearly before the payment.
    ModerationAction.objects.filter(pk=change.pk).update(
        created_at=F("created_at") - timedelta(seconds=2)
    )
    cheap = profile_event(alice_key, name="Cheap")
    rejection = assert_rejected(poster.post(cheap, 5_000), "underpaid", "rate-limited")
    assert "costs 20 sats" in rejection.message
    assert "20" in mod_client.get("/mod/prices/").content.decode()


def test_a_moderator_sees_what_authors_deleted(mod_client, poster, board, alice_key):
    thread = nostr.thread_event(alice_key, board="general", title="Regret", content="said it")
    poster.post(thread, 10_000)
    poster.post(deletion_event(alice_key, thread.id), SiteSettings().deletion_price_msat)
    page = mod_client.get("/mod/deletions/").content.decode()
    assert "Regret" in page and "said it" in page


def test_a_moderator_gives_a_key_a_name_here(mod_client, client, alice_key):
    pubkey = nostr.public_key(alice_key)
    response = mod_client.post(f"/mod/authors/{pubkey}/nip05/", {"name": "alice"})
    assert response.status_code == 302
    assert client.get("/.well-known/nostr.json?name=alice").json() == {"names": {"alice": pubkey}}
    assert ModerationAction.objects.filter(action="author.nip05", target_id=pubkey).exists()
    page = mod_client.get(f"/mod/authors/{pubkey}/").content.decode()
    assert 'value="alice"' in page


def test_board_form_keeps_and_changes_the_deletion_setting(mod_client, board):
    page = mod_client.get("/mod/boards/general/").content.decode()
    [box] = re.findall(r'<input[^>]*name="allow_deletions"[^>]*>', page)
    assert "checked" in box  # on by default
    form = {
        "title": "General",
        "description": "",
        "thread_price_msat": "10",
        "reply_price_msat": "2",
        "escalation_window_seconds": "600",
        "escalation_factor": "2",
        "max_content_length": "5000",
        "position": "0",
        "is_listed": "on",
    }  # no allow_deletions: the box unticked
    assert mod_client.post("/mod/boards/general/", form).status_code == 302
    board.refresh_from_db()
    assert board.allow_deletions is False
    change = ModerationAction.objects.filter(action="board.update").latest("created_at")
    assert change.details["before"] == {"allow_deletions": True}
