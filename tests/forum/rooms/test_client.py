"""`python -m forum.client room create` and `tip` against a live forum, paying through simnet."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from forum import client as forum_client
from forum import nostr
from forum.models import Board, Thread
from tests.forum.rooms.conftest import unlock

pytestmark = pytest.mark.django_db(transaction=True)


def test_room_create_and_tip_from_the_client(
    live_server,
    simnet,
    forum_node,
    running_listener,  # noqa: F811
    room_price,
    room_poster,
    tmp_path,
    capsys,
):
    key_file, password_file = tmp_path / "key", tmp_path / "pw"
    forum_client.main(["keygen", "--key-file", str(key_file)])
    password_file.write_text("open sesame\n")
    node = ["--lndconnect", simnet.nodes["alice"].lndconnect_uri(), "--forum-url", live_server.url]
    code = forum_client.main(
        ["room", "create", "--name", "Friday night", "--slug", "friday",
         "--password-file", str(password_file), "--lifetime", "7200",
         "--key-file", str(key_file), "--wait-seconds", "20", *node]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "open at " in out and "/r/friday/" in out
    board = Board.objects.get(slug="friday")
    assert board.title == "Friday night" and not board.is_listed
    browser = Client()
    assert unlock(browser, "friday", "open sesame").status_code == 302
    assert "Friday night" in browser.get("/r/friday/").content.decode()

    # A tip from the client lands on the post it names.
    Board.objects.create(slug="general", title="General")
    thread = nostr.thread_event(
        nostr.generate_secret_key(), board="general", title="t", content="c"
    )
    room_poster.post(thread, 10_000, record=False)  # the running listener records it
    wait_for(lambda: Thread.objects.filter(event__event_id=thread.id).exists())
    code = forum_client.main(["tip", thread.id, "--amt", "21", *node])
    assert code == 0, capsys.readouterr()
    wait_for(lambda: Thread.objects.filter(event__event_id=thread.id, sats_msat=31_000).exists())


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
