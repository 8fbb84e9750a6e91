"""Done when: a moderator signs in, finds a spammy author from the queue, bans them, hides their
posts, raises a board's price, refunds a wrongly rejected payment, and sees all four actions in
the audit log and the revenue chart. Real keysends over simnet; the console through HTTP."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from forum import nostr, protocol, tasks
from forum.models import Board, Event, Post, Rejection, Thread
from forum.services import node
from tests.conftest import record_invoice
from tests.forum.moderation.conftest import backdate_bans, deliver, local_balance_sat

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def test_moderator_day(client, moderator, forum_node, simnet):
    board = Board.objects.create(
        slug="lounge", title="Lounge", thread_price_msat=10_000, reply_price_msat=2_000
    )
    carol_key, spam_key = nostr.generate_secret_key(), nostr.generate_secret_key()
    carol, spammer = nostr.public_key(carol_key), nostr.public_key(spam_key)
    bob_node = simnet.nodes["bob"].pubkey

    # An honest thread (from bob's node, two hops away) and a burst of spam (alice's node).
    welcome = nostr.thread_event(
        carol_key, board="lounge", title="Welcome", content="say hi", ln_node=bob_node
    )
    deliver(forum_node, welcome, 10_000, sender="bob")
    spam = [nostr.thread_event(spam_key, board="lounge", title="BUY NOW", content="cheap sats")]
    spam += [
        nostr.reply_event(spam_key, board="lounge", root=welcome, content=f"visit spam.example {i}")
        for i in range(3)
    ]
    for event in spam:
        deliver(forum_node, event, 100_000, sender="alice")
    assert Post.objects.filter(author__pubkey=spammer).count() == 3

    # Sign in.
    response = client.post(reverse("mod:login"), {"username": "mod", "password": PASSWORD})
    assert response.status_code == 302

    # The queue shows the spam; its author links to the author page.
    queue = client.get(reverse("mod:home")).content.decode()
    assert "visit spam.example" in queue and "BUY NOW" in queue
    author_url = reverse("mod:author", args=[spammer])
    assert author_url in queue
    page = client.get(author_url).content.decode()
    assert "not banned" in page and page.count("visit spam.example") == 3

    # Ban, then hide everything they posted.
    client.post(reverse("mod:author-ban", args=[spammer]), {"reason": "spam", "duration": ""})
    client.post(reverse("mod:author-hide-all", args=[spammer]), {"reason": "spam"})
    assert not Post.objects.filter(author__pubkey=spammer, is_hidden=False).exists()
    assert Thread.objects.get(author__pubkey=spammer).is_hidden
    board.refresh_from_db()
    assert (board.thread_count, board.post_count) == (1, 1)  # only the welcome thread
    # A new payment from the banned key is rejected `banned`.
    backdate_bans()
    late = nostr.reply_event(spam_key, board="lounge", root=welcome, content="still here")
    entry = deliver(forum_node, late, 100_000)
    assert Rejection.objects.get(ledger_entry=entry).reason == Rejection.Reason.BANNED

    # Raise the reply price from 2 to 5 sats.
    edit = reverse("mod:board-edit", args=["lounge"])
    form = client.get(edit).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None and k != "is_listed"}
    data.update(reply_price_msat="5", reason="spam wave", is_listed="on")
    assert client.post(edit, data).status_code == 302
    assert Board.objects.get(slug="lounge").reply_price_msat == 5_000

    # Carol replies with a stale quote (2 sats): rejected underpaid. The moderator refunds her.
    reply = nostr.reply_event(
        carol_key, board="lounge", root=welcome, content="thanks", ln_node=bob_node
    )
    entry = deliver(forum_node, reply, 2_000, sender="bob")
    wrong = Rejection.objects.get(ledger_entry=entry)
    assert wrong.reason == Rejection.Reason.UNDERPAID
    listing = client.get(reverse("mod:rejections"), {"author": carol}).content.decode()
    refund_url = reverse("mod:rejection-refund", args=[wrong.pk])
    assert refund_url in listing
    bob_before = local_balance_sat(node.client("bob"))
    response = client.post(refund_url, {"reason": "price changed under her"}, follow=True)
    assert "Refunded." in response.content.decode()
    assert local_balance_sat(node.client("bob")) - bob_before == 2
    wrong.refresh_from_db()
    assert wrong.refund_entry is not None
    # The refunded event no longer waits: a top-up cannot publish it with refunded money.
    assert Event.objects.get(event_id=reply.id).state == Event.State.REJECTED
    topup = forum_node.keysend(protocol.encode_topup(reply.id), 3_000, sender="bob")
    top_entry, _ = record_invoice(
        invoice=topup, node_pubkey=forum_node.pubkey, advance_cursor=False, enqueue=False
    )
    tasks.reconcile_batch()
    assert not Post.objects.filter(event__event_id=reply.id).exists()
    # A second press does nothing.
    response = client.post(refund_url, follow=True)
    assert "already refunded" in response.content.decode()

    # All four kinds of action are in the audit log, by this moderator.
    audit = client.get(reverse("mod:audit")).content.decode()
    for action in ("author.ban", "thread.hide", "post.hide", "board.update", "rejection.refund"):
        assert f"<code>{action}</code>" in audit, action
    assert "spam wave" in audit and "price changed under her" in audit

    # Revenue: the chart is there and the refund is subtracted.
    revenue = client.get(reverse("mod:revenue"))
    body = revenue.content.decode()
    assert "<svg" in body and re.search(r'<rect class="bar"', body)
    total = revenue.context["revenue"].total
    received = 10_000 + 4 * 100_000 + 100_000 + 2_000 + 3_000
    assert total.received_msat == received
    assert total.refunded_msat == 2_000
    assert total.net_msat == received - 2_000 - wrong.refund_entry.fee_msat
    lounge = {row.key: row for row in revenue.context["revenue"].boards}["lounge"]
    assert lounge.refunded_msat == 2_000
    csv_total = client.get(reverse("mod:revenue-csv")).content.decode().splitlines()[-1]
    assert csv_total.split(",")[3] == "2000"
