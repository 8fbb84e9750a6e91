"""`python -m forum.client tip --invoice` against a live forum: the tip invoice paid by the
payer's own lnd (simnet), reconciled through the listener like any tip."""

from __future__ import annotations

import time

import bolt11
import pytest

from forum import client as forum_client
from forum import nostr
from forum.models import Board, Thread
from tests.forum.tips.conftest import Tipper

pytestmark = pytest.mark.django_db(transaction=True)


def test_tip_by_invoice_from_the_client(live_server, simnet, forum_node, running_listener, capsys):
    Board.objects.create(slug="general", title="General")
    thread = nostr.thread_event(
        nostr.generate_secret_key(), board="general", title="t", content="c"
    )
    Tipper(forum_node).post(thread, 10_000, record=False)  # the running listener records it
    deadline = time.monotonic() + 10
    while not Thread.objects.filter(event__event_id=thread.id).exists():
        assert time.monotonic() < deadline, "the thread was not published"
        time.sleep(0.05)
    node = ["--lndconnect", simnet.nodes["bob"].lndconnect_uri(), "--forum-url", live_server.url]

    code = forum_client.main(["tip", thread.id, "--amt", "42", "--invoice", *node])

    out = capsys.readouterr().out
    assert code == 0, out
    payment_request = next(line for line in out.splitlines() if line.startswith("lnbcrt"))
    decoded = bolt11.decode(payment_request)
    assert decoded.amount_msat == 42_000 and thread.id[:12] in decoded.description
    assert f"tipped 42 sats to {live_server.url}/e/{thread.id}/" in out
    deadline = time.monotonic() + 10  # the listener records it, a batch adds it
    while Thread.objects.get(event__event_id=thread.id).sats_msat != 52_000:
        assert time.monotonic() < deadline, "the tip did not reach the thread"
        time.sleep(0.05)


def test_no_tip_invoice_for_an_unknown_post(live_server, simnet, capsys):
    code = forum_client.main(
        ["tip", "ab" * 32, "--amt", "5", "--invoice", "--forum-url", live_server.url]
    )
    assert code != 0
    assert "no tip invoice" in capsys.readouterr().err
