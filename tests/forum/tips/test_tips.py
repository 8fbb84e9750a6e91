"""Tips over simnet's real gRPC: sats on the post, the author's share forwarded exactly once."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from forum import nostr, tasks
from forum.models import Event, LedgerEntry, Post, Rejection, Thread, TipForward
from forum.permissions import MODERATOR_GROUP
from forum.services import node, payout, tips
from tests.forum.tips.conftest import local_balance_msat

pytestmark = pytest.mark.django_db(transaction=True)


def published_thread(tipper, key: str, *, ln_node: str | None = None, sender: str = "alice"):
    event = nostr.thread_event(key, board="tips", title="Tip me", content="c", ln_node=ln_node)
    tipper.post(event, 10_000, sender=sender)
    assert Event.objects.get(event_id=event.id).state == "published"
    return event


def test_a_tip_adds_its_sats_to_the_post_and_its_thread(tipper, board, author_key):
    root = published_thread(tipper, author_key)
    reply = nostr.reply_event(nostr.generate_secret_key(), board="tips", root=root, content="r")
    tipper.post(reply, 2_000)
    entry = tipper.tip(reply.id, 21_000, sender="bob")
    assert (entry.purpose, entry.event_id, entry.reconcile_state) == ("tip", reply.id, "done")
    assert Post.objects.get(event__event_id=reply.id).sats_msat == 2_000 + 21_000
    assert Thread.objects.get(event__event_id=root.id).sats_msat == 10_000 + 2_000 + 21_000
    tipper.tip(root.id, 5_000)
    assert Thread.objects.get(event__event_id=root.id).sats_msat == 38_000
    # No `ln` tag: nowhere to forward, the forum keeps it all.
    assert not TipForward.objects.exists()
    assert not LedgerEntry.objects.filter(direction="out").exists()


def test_the_board_sorts_by_sats_after_a_tip(client, tipper, board, author_key):
    first = published_thread(tipper, author_key)
    second = nostr.thread_event(
        nostr.generate_secret_key(), board="tips", title="Second", content="c"
    )
    tipper.post(second, 10_000)
    tipper.tip(first.id, 50_000)
    html = client.get("/b/tips/?sort=sats").content.decode()
    assert html.index("Tip me") < html.index("Second")


def test_a_tip_to_an_unknown_event_is_kept_as_a_rejection(tipper, board):
    nowhere = "ab" * 32
    entry = tipper.tip(nowhere, 3_000)
    rejection = Rejection.objects.get(ledger_entry=entry)
    assert (rejection.reason, rejection.event_ref, rejection.amount_msat) == (
        "unknown_target",
        nowhere,
        3_000,
    )
    assert rejection.message.startswith("invalid: ")
    assert LedgerEntry.objects.get(pk=entry.pk).amount_msat == 3_000


@pytest.mark.parametrize("author_node", ["alice", "bob"])  # direct channel, and two hops away
def test_forward_moves_the_tip_minus_the_share_to_the_authors_node(
    tipper, forum_node, simnet, board, author_key, settings, author_node
):
    settings.TIP_FORUM_SHARE_PERCENT = 10
    payee = simnet.nodes[author_node].pubkey
    root = published_thread(tipper, author_key, ln_node=payee)
    tipper_name = "bob" if author_node == "alice" else "alice"
    author, forum = node.client(author_node), forum_node.client
    author_before, forum_before = local_balance_msat(author), local_balance_msat(forum)

    tip = tipper.tip(root.id, 50_000, sender=tipper_name)

    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert (forward.state, forward.attempts, forward.amount_msat) == ("sent", 1, 45_000)
    out = forward.forward_entry
    assert (out.direction, out.purpose, out.amount_msat, out.counterparty) == (
        "out",
        "tip_forward",
        45_000,
        payee,
    )
    assert out.event_id == root.id and out.pubkey == nostr.public_key(author_key)
    # The forward's hash is the derived one: a retry could only ever be the same payment.
    preimage = tips.forward_preimage(tip_payment_hash=tip.payment_hash)
    assert out.payment_hash == forward.payment_hash == hashlib.sha256(preimage).hexdigest()
    assert (out.fee_msat == 0) is (author_node == "alice")
    assert out.fee_msat <= 5_000  # never more than the forum's share
    assert local_balance_msat(author) - author_before == 45_000
    # The forum kept the tip's 50 sats minus 45 forwarded minus the routing fee (sat-rounded).
    kept = local_balance_msat(forum) - forum_before
    assert abs(kept - (50_000 - 45_000 - out.fee_msat)) < 1_000
    assert forum.track_payment(out.payment_hash).succeeded


def test_a_failing_forward_is_retried_later_shown_to_moderators_and_sent_once(
    client, tipper, forum_node, simnet, board, author_key
):
    # router2 does not accept keysend: the forward fails until it does.
    payee = simnet.network.nodes["router2"]
    root = published_thread(tipper, author_key, ln_node=payee.pubkey)
    tip = tipper.tip(root.id, 20_000)
    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert (forward.state, forward.attempts) == ("pending", 1)
    assert forward.last_error and forward.next_attempt_at > timezone.now()
    assert forward.forward_entry is None
    assert not LedgerEntry.objects.filter(direction="out").exists()

    # Not due yet: the periodic sweep leaves it alone.
    assert tasks.tips_forward_due() == 0
    assert TipForward.objects.get(pk=forward.pk).attempts == 1

    moderator = User.objects.create_user("mod", password="x")
    moderator.groups.add(Group.objects.get_or_create(name=MODERATOR_GROUP)[0])
    client.force_login(moderator)
    page = client.get("/mod/tips/").content.decode()
    assert f'data-tip-forward="{forward.pk}"' in page and forward.last_error[:20] in page
    assert "Retry now" in page

    payee_client = node.client("router2")
    before = local_balance_msat(payee_client)
    payee.accept_keysend = True
    try:
        # Time passes: the sweep finds it due and the task sends it.
        TipForward.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert tasks.tips_forward_due() == 1
        forward.refresh_from_db()
        assert (forward.state, forward.attempts, forward.last_error) == ("sent", 2, "")
        assert local_balance_msat(payee_client) - before == 18_000

        # Never twice: the sweep, the task and a moderator's retry all find it sent.
        TipForward.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert tasks.tips_forward_due() == 0
        assert tips.tip_forward_attempt(tip_payment_hash=tip.payment_hash).state == "sent"
        outcome = tips.tip_forward_retry(actor=moderator, forward=forward)
        assert outcome.state == "sent"
    finally:
        payee.accept_keysend = False
    assert local_balance_msat(payee_client) - before == 18_000
    assert LedgerEntry.objects.filter(purpose="tip_forward").count() == 1


def test_a_forward_paid_before_a_crash_is_recorded_not_paid_again(
    tipper, forum_node, simnet, board, author_key
):
    payee = simnet.network.nodes["router2"]
    root = published_thread(tipper, author_key, ln_node=payee.pubkey)
    tip = tipper.tip(root.id, 10_000)
    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert forward.state == "pending"
    payee_client = node.client("router2")
    before = local_balance_msat(payee_client)
    payee.accept_keysend = True
    try:
        # The node paid the forward, then the worker died before its transaction committed.
        preimage = tips.forward_preimage(tip_payment_hash=tip.payment_hash)
        paid, failure = payout.keysend_send(
            destination=payee.pubkey, amount_msat=forward.amount_msat, preimage=preimage
        )
        assert paid is not None and not failure
        assert local_balance_msat(payee_client) - before == 9_000
        # The retry pays nothing more: the node refuses the hash and reports the old payment.
        outcome = tips.tip_forward_attempt(tip_payment_hash=tip.payment_hash, force=True)
    finally:
        payee.accept_keysend = False
    assert outcome.state == "sent"
    assert local_balance_msat(payee_client) - before == 9_000
    out = TipForward.objects.get(pk=forward.pk).forward_entry
    assert out.payment_hash == paid.payment_hash and out.amount_msat == 9_000


def test_a_forward_gives_up_after_the_last_attempt_and_a_moderator_can_retry(
    client, tipper, simnet, board, author_key, settings
):
    settings.TIP_FORWARD_MAX_ATTEMPTS = 2
    settings.TIP_FORWARD_RETRY_SECONDS = 0  # due again at once
    payee = simnet.network.nodes["router2"]
    root = published_thread(tipper, author_key, ln_node=payee.pubkey)
    tip = tipper.tip(root.id, 10_000)
    assert tasks.tips_forward_due() == 1
    forward = TipForward.objects.get(tip_payment_hash=tip.payment_hash)
    assert (forward.state, forward.attempts) == ("failed", 2)
    assert tasks.tips_forward_due() == 0  # given up: only a moderator restarts it

    moderator = User.objects.create_user("mod2", password="x", is_staff=True)
    client.force_login(moderator)
    assert "failed" in client.get("/mod/tips/").content.decode()
    payee.accept_keysend = True
    try:
        response = client.post(f"/mod/tips/{forward.pk}/retry/", {"reason": "node is back"})
    finally:
        payee.accept_keysend = False
    assert response.status_code == 302
    forward.refresh_from_db()
    assert (forward.state, forward.attempts) == ("sent", 3)
    from forum.models import ModerationAction

    audit = ModerationAction.objects.get(action="tip.forward_retry")
    assert audit.details["state"] == "sent" and audit.reason == "node is back"


def test_tip_pages_are_for_moderators_only(client, db):
    assert client.get("/mod/tips/").status_code == 302  # to the login page
    client.force_login(User.objects.create_user("someone", password="x"))
    assert client.get("/mod/tips/").status_code == 403
    assert client.post("/mod/tips/1/retry/").status_code == 403


def test_open_pages_hear_the_new_sats_total(tipper, board, author_key):
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from forum import realtime

    root = published_thread(tipper, author_key)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(realtime.board_group("tips"), channel)
    tipper.tip(root.id, 7_000)

    async def receive() -> dict:
        return await asyncio.wait_for(layer.receive(channel), timeout=2)

    message = async_to_sync(receive)()
    assert message["type"] == "thread.updated"
    assert message["payload"]["thread"] == root.id
    assert message["payload"]["sats_msat"] == 17_000
