"""The node runner's client against a forum in hold mode (the default): a payment the forum
turns away fails at the node with only FAILURE_REASON_INCORRECT_PAYMENT_DETAILS, so the
client must ask the forum why and say it, with the price now and what to do."""

from __future__ import annotations

import pytest

from forum import client as forum_client
from forum.models import LedgerEntry, Thread
from forum.services.moderation.lock import thread_lock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(live_server, listening, tmp_path):
    key_file = tmp_path / "my.key"
    assert forum_client.main(["keygen", "--key-file", str(key_file)]) == 0
    node = [
        "--lndconnect",
        listening.net.nodes["alice"].lndconnect_uri(),
        "--forum-url",
        live_server.url,
        "--wait-seconds",
        "20",
    ]

    def run(*args: str) -> list[str]:
        return ["post", "--board", "general", "--key-file", str(key_file), *args, *node]

    return run


def test_underpaid_says_the_price_and_how_to_send_it_again(board, cli, capsys, live_server):
    code = forum_client.main(cli("--title", "Cheap", "--content", "hi", "--amount-sats", "1"))
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "FAILURE_REASON" not in out + err
    assert "refused, nothing charged: this post costs 10 sats now" in out, out
    assert "price now: 10 sats" in out
    assert "what to do: send it again at the price" in out and "without --amount-sats" in out
    assert not LedgerEntry.objects.filter(status=LedgerEntry.Status.SETTLED, amount_msat=1_000)

    # Doing what it said publishes, and the client prints where.
    code = forum_client.main(cli("--title", "Cheap", "--content", "hi"))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    thread = Thread.objects.get()
    assert f"published: {live_server.url}/t/{thread.event.event_id}/" in out
    assert "status: unknown" not in out


def test_reply_to_a_locked_thread(board, cli, capsys):
    assert forum_client.main(cli("--title", "Soon closed", "--content", "first")) == 0
    thread = Thread.objects.get()
    thread_lock(actor=None, thread=thread, reason="test")
    capsys.readouterr()
    code = forum_client.main(cli("--reply-to", thread.event.event_id, "--content", "late"))
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "FAILURE_REASON" not in out + err
    assert "refused, nothing charged: the thread is locked" in out, out
    assert "what to do: the thread takes no new replies; start a new thread" in out


def test_too_long_is_refused_before_paying(board, cli, capsys):
    text = "x" * (board.max_content_length + 1)
    code = forum_client.main(cli("--title", "Long", "--content", text))
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip() == (
        "error: not sent: the content is 5,001 characters, over the limit of 5,000 on board "
        "general. Shorten it and send it again. Nothing was paid."
    )
    assert not LedgerEntry.objects.exists()


def test_too_long_refused_by_the_forum_says_why(board, cli, capsys, monkeypatch):
    """A client that does not check the size first (or a limit lowered after the quote): the
    parts are held, the joined event is refused, every part cancelled; the forum says why."""
    monkeypatch.setattr(forum_client, "check_length", lambda content, quote: None)
    text = "y" * (board.max_content_length + 1)
    code = forum_client.main(cli("--title", "Long", "--content", text))
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "FAILURE_REASON" not in out + err
    assert "refused, nothing charged: the content is 5001 characters, over the limit of 5000" in (
        out
    ), out
    assert "what to do: shorten it" in out
