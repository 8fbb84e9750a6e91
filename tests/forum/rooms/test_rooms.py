"""Private rooms over simnet's real gRPC: rent, unlock, post, expire, and nothing left behind."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from forum import nostr, protocol, tasks
from forum.models import Author, Board, Event, LedgerEntry, Rejection, Thread, TipForward
from forum.relay.selectors import servable_events
from forum.services import rooms
from tests.forum.rooms.conftest import PASSWORD, unlock

pytestmark = pytest.mark.django_db(transaction=True)

PHRASE = "Zanzibar-Quokka-7731"
# A well-formed verifier at the most `verifier_parse` allows (N=2^16, r=16), not computed.
COSTLY_VERIFIER = "scrypt$65536$16$1$" + "A" * 22 + "$" + "A" * 43


def test_renting_a_room_by_keysend_opens_an_unlisted_board(room_poster, room_price, keys):
    event, entry = room_poster.rent(
        keys["owner"],
        slug="hideout",
        name="The hideout",
        amount_msat=room_price,
        lifetime_seconds=3600,
    )
    board = Board.objects.get(slug="hideout")
    assert (board.title, board.is_listed, board.destroyed_at) == ("The hideout", False, None)
    assert board.expires_at == entry.settled_at + timedelta(seconds=3600)
    assert rooms.verifier_check(verifier=board.password_verifier, password=PASSWORD)
    assert not rooms.verifier_check(verifier=board.password_verifier, password="wrong")
    stored = Event.objects.get(event_id=event.id)
    assert (stored.state, stored.kind, stored.board_id) == ("published", 9311, board.pk)
    # Renting is not posting: the owner's first thread in the room costs the base price.
    assert stored.accepted_settle_index is None
    assert not Rejection.objects.exists()


def test_an_underpaid_room_waits_for_a_top_up(room_poster, room_price, keys):
    event, _ = room_poster.rent(keys["owner"], slug="cheap", name="Cheap", amount_msat=200_000)
    assert not Board.objects.filter(slug="cheap").exists()
    rejection = Rejection.objects.get(event__event_id=event.id)
    assert rejection.reason == "underpaid" and "Top up 300 sats" in rejection.message
    room_poster.topup(event.id, 300_000)
    assert Board.objects.get(slug="cheap").expires_at is not None
    assert Rejection.objects.get(pk=rejection.pk).resolution == "topped_up"


@pytest.mark.parametrize(
    ("tags", "detail"),
    [
        ([["d", "x1"], ["name", "n"], ["verifier", "scrypt$16384$8$1$AAAA$AAAA"]], "d tag"),
        ([["d", "bad-verifier"], ["name", "n"], ["verifier", "plain:secret"]], "verifier"),
        # Valid scrypt, but 128 MiB per check: every unlock attempt would cost that much.
        ([["d", "costly"], ["name", "n"], ["verifier", COSTLY_VERIFIER]], "costs too much"),
        ([["d", "no-name"], ["verifier", rooms.verifier_make(password="p")]], "name"),
        (
            [["d", "forever"], ["name", "n"], ["verifier", rooms.verifier_make(password="p")]]
            + [["lifetime", str(10**9)]],
            "lifetime",
        ),
        (
            [["d", "general"], ["name", "n"], ["verifier", rooms.verifier_make(password="p")]],
            "taken",
        ),
    ],
)
def test_a_bad_room_event_is_rejected_malformed(
    room_poster, room_price, keys, public_board, tags, detail
):
    event = nostr.sign_event(keys["owner"], kind=rooms.KIND_ROOM_CREATE, tags=tags, content="")
    room_poster.post(event, room_price)
    rejection = Rejection.objects.get(event__event_id=event.id)
    assert rejection.reason == "malformed" and detail in rejection.message
    assert Board.objects.count() == 1


def test_the_password_unlocks_one_session_only(room_poster, room_price, keys, settings):
    settings.ROOM_UNLOCK_MAX_FAILURES = 3
    room_poster.rent(keys["owner"], slug="vault", name=f"Vault {PHRASE}", amount_msat=room_price)
    mine, theirs = Client(), Client()
    locked = mine.get("/r/vault/")
    assert locked.status_code == 200 and PHRASE not in locked.content.decode()
    assert 'name="password"' in locked.content.decode()
    assert "no-store" in locked["Cache-Control"]
    wrong = unlock(mine, "vault", "guess")
    assert wrong.status_code == 403 and "Wrong password" in wrong.content.decode()
    assert PHRASE not in mine.get("/r/vault/").content.decode()
    right = unlock(mine, "vault")
    assert right.status_code == 302 and right["Location"] == "/r/vault/"
    page = mine.get("/r/vault/")
    assert page.status_code == 200 and PHRASE in page.content.decode()
    # Another browser session is still locked, and the public board URL does not exist.
    assert PHRASE not in theirs.get("/r/vault/").content.decode()
    assert theirs.get("/b/vault/").status_code == 404
    assert mine.get("/b/vault/").status_code == 404
    # Guessing is rate-limited per client and room; the right password then waits too.
    for _ in range(2):
        assert unlock(theirs, "vault", "nope").status_code == 403
    assert unlock(theirs, "vault", "nope").status_code == 403
    assert unlock(theirs, "vault").status_code == 429
    # Locking again forgets it in this session.
    mine.post("/r/vault/lock")
    assert PHRASE not in mine.get("/r/vault/").content.decode()
    assert Client().get("/r/no-such-room/").status_code == 404


def test_a_room_lives_then_self_destructs_leaving_nothing_behind(
    room_poster, room_price, keys, simnet, settings, django_capture_on_commit_callbacks
):
    settings.TIP_FORUM_SHARE_PERCENT = 10
    owner, alice, bob = keys["owner"], keys["alice"], keys["bob"]
    room_event, room_entry = room_poster.rent(
        owner,
        slug="hideout",
        name=f"Club {PHRASE}",
        description=f"Where {PHRASE} meets",
        amount_msat=room_price,
    )
    board = Board.objects.get(slug="hideout")
    member = Client()
    assert unlock(member, "hideout").status_code == 302

    # Posts inside are keysends like any other, priced by the room's board.
    thread = nostr.thread_event(
        alice,
        board="hideout",
        title=f"About {PHRASE}",
        content=f"The {PHRASE} plan",
        ln_node=simnet.nodes["alice"].pubkey,
    )
    room_poster.post(thread, board.thread_price_msat)
    reply = nostr.reply_event(bob, board="hideout", root=thread, content=f"{PHRASE} agreed")
    room_poster.post(reply, board.reply_price_msat, sender="bob")
    long_reply = nostr.reply_event(
        bob, board="hideout", root=thread, parent=reply, content=f"{PHRASE} " * 300
    )
    room_poster.post_in_parts(long_reply, 10_000)
    underpaid = nostr.reply_event(owner, board="hideout", root=thread, content=f"{PHRASE}?")
    room_poster.post(underpaid, board.reply_price_msat // 2)
    tip = room_poster.tip(thread.id, 30_000, sender="bob")
    room_ids = [room_event.id, thread.id, reply.id, long_reply.id, underpaid.id]

    assert Thread.objects.get(event__event_id=thread.id).reply_count == 2
    assert TipForward.objects.get(tip_payment_hash=tip.payment_hash).state == "sent"
    assert Rejection.objects.filter(event__event_id=underpaid.id, reason="underpaid").exists()
    page = member.get(f"/r/hideout/t/{thread.id}/").content.decode()
    assert f"{PHRASE} agreed" in page
    raw = member.get(f"/r/hideout/e/{reply.id}.json")
    assert raw.status_code == 200 and json.loads(raw.content)["id"] == reply.id
    # The public URLs lead the member into the room and are 404 for everyone else.
    assert member.get(f"/t/{thread.id}/")["Location"].startswith("/r/hideout/")
    assert member.get(f"/e/{reply.id}.json")["Location"] == f"/r/hideout/e/{reply.id}.json"
    stranger = Client()
    for url in (f"/t/{thread.id}/", f"/e/{reply.id}", f"/e/{reply.id}.json"):
        assert stranger.get(url).status_code == 404, url
    assert stranger.get(f"/r/hideout/t/{thread.id}/").status_code == 200  # the password form
    assert PHRASE not in stranger.get(f"/r/hideout/t/{thread.id}/").content.decode()
    assert PHRASE not in stranger.get(f"/a/{nostr.public_key(alice)}/").content.decode()
    assert PHRASE not in stranger.get("/").content.decode()
    assert not servable_events().filter(event_id__in=room_ids).exists()

    # The scan does see the room while it lives: in names, content, raw events, records, parts.
    before = scan_database([PHRASE, *room_ids])
    for where in ("forum_board.title", "forum_thread.content", "forum_post.content"):
        assert f"{where} holds {PHRASE!r}" in before, where
    for where in ("forum_event.raw_json", "forum_ledgerentry.custom_records", "forum_messagepart"):
        assert any(line.startswith(where) for line in before), where

    ledger_before = sorted(LedgerEntry.objects.values_list("payment_hash", "amount_msat"))
    assert len(ledger_before) >= 8

    # Expiry: the room's page says so at once, and the beat task destroys it.
    Board.objects.filter(pk=board.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert member.get("/r/hideout/").status_code == 410
    assert tasks.rooms_destroy_expired.delay().get() == 1
    assert tasks.rooms_destroy_expired.delay().get() == 0  # idempotent

    gone = member.get("/r/hideout/")
    assert gone.status_code == 410 and "self-destructed" in gone.content.decode()
    assert member.get(f"/r/hideout/e/{reply.id}.json").status_code == 410
    assert member.get(f"/e/{reply.id}.json").status_code == 404
    tombstone = Board.objects.get(slug="hideout")
    assert tombstone.destroyed_at is not None
    assert (tombstone.title, tombstone.description, tombstone.password_verifier) == ("", "", "")
    # The money stays on record: every payment, with its amount and hash only.
    assert sorted(LedgerEntry.objects.values_list("payment_hash", "amount_msat")) == ledger_before
    stripped = LedgerEntry.objects.get(pk=room_entry.pk)
    assert (stripped.custom_records, stripped.event_id, stripped.pubkey) == ({}, "", "")
    # Authors known only from the room are gone; the room's tip forward row keeps no event id.
    assert not Author.objects.filter(pubkey=nostr.public_key(bob)).exists()

    leftovers = scan_database([PHRASE, *room_ids])
    assert leftovers == [], leftovers

    # A post to the destroyed room is an unknown board, like any board that does not exist.
    late = nostr.thread_event(alice, board="hideout", title="late", content="x")
    room_poster.post(late, 10_000)
    assert Rejection.objects.get(event__event_id=late.id).reason == "unknown_board"


def needles_for(values: list[str]) -> list[tuple[str, str]]:
    """Each value as text, and in every encoding our tables use for it (hex, base64url)."""
    needles = []
    for value in values:
        needles.append((value, value.lower()))
        needles.append((value, value.encode().hex()))
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            needles.append((value, protocol.b64url_encode(bytes.fromhex(value)).lower()))
    return needles


def scan_database(values: list[str]) -> list[str]:
    """Every row of every table, every column as text (binary as text and as hex)."""
    needles = needles_for(values)
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, cell in zip(columns, row, strict=True):
                    for text in _texts(cell):
                        for value, needle in needles:
                            if needle in text:
                                found.append(f"{table}.{column} holds {value!r}")
    return sorted(set(found))


def _texts(cell) -> list[str]:
    if cell is None:
        return []
    if isinstance(cell, memoryview):
        cell = cell.tobytes()
    if isinstance(cell, bytes):
        return [cell.decode("utf-8", "replace").lower(), cell.hex()]
    if isinstance(cell, dict | list):
        cell = json.dumps(cell, ensure_ascii=False)
    return [str(cell).lower()]


def test_a_room_stays_unlisted_even_if_a_moderator_ticks_listed(
    room_poster, room_price, keys, client
):
    room_poster.rent(keys["owner"], slug="quiet", name=f"Quiet {PHRASE}", amount_msat=room_price)
    Board.objects.filter(slug="quiet").update(is_listed=True)
    thread = nostr.thread_event(keys["alice"], board="quiet", title=PHRASE, content="x")
    room_poster.post(thread, 10_000)
    assert PHRASE not in client.get("/").content.decode()
    assert not servable_events().filter(event_id=thread.id).exists()
