"""The node runner's client: sign, quote, split, keysend through "their" lnd, follow the status."""

from __future__ import annotations

import socket

import pytest

from forum import client as forum_client
from forum import nostr
from forum.models import MessagePart, Post, Thread

pytestmark = pytest.mark.django_db(transaction=True)


def test_split_amount_covers_the_price():
    assert forum_client.split_amount_msat(10_500, 3) == [4_000, 4_000, 3_000]
    assert sum(forum_client.split_amount_msat(1_000, 4)) == 4_000  # at least 1 sat each


def test_post_thread_multipart_and_reply(
    live_server, simnet, board, running_listener, tmp_path, capsys
):
    key_file = tmp_path / "key"
    assert forum_client.main(["keygen", "--key-file", str(key_file)]) == 0
    node = ["--lndconnect", simnet.nodes["bob"].lndconnect_uri(), "--forum-url", live_server.url]
    long_text = "A long opening post. " * 150  # > one onion on 3 hops
    code = forum_client.main(
        ["post", "--board", "general", "--title", "Big", "--content", long_text,
         "--key-file", str(key_file), "--wait-seconds", "20", *node]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    thread = Thread.objects.get()
    assert thread.content == long_text
    assert f"published: {live_server.url}/t/{thread.event.event_id}/" in out
    assert MessagePart.objects.filter(event_id=thread.event.event_id).count() > 1
    code = forum_client.main(
        ["post", "--board", "general", "--reply-to", thread.event.event_id, "--content", "me too",
         "--key-file", str(key_file), "--wait-seconds", "20", *node]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    post = Post.objects.get()
    assert post.thread == thread and post.content == "me too"
    assert post.event.pubkey == nostr.public_key(key_file.read_text().strip())


def test_underpaid_then_topup(live_server, simnet, board, running_listener, tmp_path, capsys):
    key_file = tmp_path / "key"
    forum_client.main(["keygen", "--key-file", str(key_file)])
    node = ["--lndconnect", simnet.nodes["alice"].lndconnect_uri(), "--forum-url", live_server.url]
    code = forum_client.main(
        ["post", "--board", "general", "--title", "t", "--content", "c", "--amount-sats", "4",
         "--key-file", str(key_file), "--wait-seconds", "20", *node]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 2 and "Top up 6 sats" in out, out
    event_id = out.split("event ")[1].split(":")[0]
    # Hold mode off: the forum kept the 4 sats, so the client says to top up, not resend.
    assert "not published yet (paid, waiting for a top-up)" in out, out
    assert f"forum.client topup --event-id {event_id} --amount-sats 6" in out, out
    code = forum_client.main(
        ["topup", "--event-id", event_id, "--amount-sats", "6", "--wait-seconds", "20", *node]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert Thread.objects.get().event.event_id == event_id
    assert f"published: {live_server.url}/t/{event_id}/" in out, out


def _one_line_error(capsys) -> str:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_missing_node_files_and_unreachable_node_are_one_line(
    live_server, simnet, board, tmp_path, capsys
):
    """As the how-to-post page used to show them: lnd's default paths that do not exist here,
    and a port nobody listens on. One line each, saying what to fix; nothing is paid."""
    key_file = tmp_path / "key"
    forum_client.main(["keygen", "--key-file", str(key_file)])
    capsys.readouterr()
    post = ["post", "--board", "general", "--title", "t", "--content", "c",
            "--key-file", str(key_file), "--forum-url", live_server.url]  # fmt: skip
    missing = tmp_path / "nope" / "tls.cert"
    code = forum_client.main(
        [*post, "--rpcserver", "localhost:10009", "--tlscertpath", str(missing),
         "--macaroonpath", str(tmp_path / "admin.macaroon")]
    )  # fmt: skip
    assert code == 1
    assert _one_line_error(capsys) == (
        f"error: --tlscertpath {missing}: no such file (the path to your node's tls.cert)"
    )
    alice = simnet.nodes["alice"]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code = forum_client.main(
        [*post, "--rpcserver", f"127.0.0.1:{port}", "--tlscertpath", str(alice.tls_cert_path),
         "--macaroonpath", str(alice.macaroon_path)]
    )  # fmt: skip
    assert code == 1
    line = _one_line_error(capsys)
    assert line.startswith(f"error: cannot reach the Lightning node at 127.0.0.1:{port}: ")
    assert line.endswith("Is it running, and is that its gRPC address (lncli's --rpcserver)?")
    code = forum_client.main(
        [*post[:5], "--content-file", str(tmp_path / "post.md"), *post[7:],
         "--lndconnect", alice.lndconnect_uri()]
    )  # fmt: skip
    assert code == 1
    assert "--content-file" in _one_line_error(capsys)
    code = forum_client.main([*post[:-1], "http://127.0.0.1:9", "--lndconnect", "x"])
    assert _one_line_error(capsys).startswith("error: cannot reach the forum at")


def test_lightning_pay_missing_file_is_one_line(tmp_path, capsys):
    from lightning import pay

    code = pay.main(
        ["--keysend", "--dest", "02" + "11" * 32, "--amt", "1",
         "--tlscertpath", str(tmp_path / "tls.cert")]
    )  # fmt: skip
    assert code == 2
    assert _one_line_error(capsys) == (
        f"error: --tlscertpath {tmp_path / 'tls.cert'}: no such file (the path to your node's "
        "tls.cert)"
    )


def test_no_route_is_explained(live_server, simnet, board, tmp_path, capsys):
    """A payment the forum never saw: the client says what lnd's reason means for the user."""
    key_file = tmp_path / "key"
    forum_client.main(["keygen", "--key-file", str(key_file)])
    capsys.readouterr()
    nowhere = "02" + "ab" * 32  # a node the simulated network does not know
    code = forum_client.main(
        ["post", "--board", "general", "--title", "t", "--content", "c", "--key-file",
         str(key_file), "--forum-url", live_server.url, "--dest", nowhere,
         "--lndconnect", simnet.nodes["alice"].lndconnect_uri()]
    )  # fmt: skip
    assert code == 1
    line = _one_line_error(capsys)
    assert "FAILURE_REASON_NO_ROUTE" in line and f"no route to the forum's node {nowhere}" in line


def test_a_site_that_is_not_the_forum_is_named_for_gets_and_posts():
    """A --forum-url that answers 200 with a web page (not the forum's JSON): every call says
    so, the POSTs that ask for an invoice as much as the GETs."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotTheForum(BaseHTTPRequestHandler):
        def _page(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>a blog</html>")

        do_GET = do_POST = _page

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotTheForum)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    forum = forum_client.Forum(url=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        with pytest.raises(forum_client.ClientError, match="did not answer like the forum"):
            forum.quote(board="general", pubkey="ab" * 32, kind=11)
        with pytest.raises(forum_client.ClientError, match=r"no JSON at /api/tip\)"):
            forum.tip_invoice("cd" * 32, 21)
    finally:
        server.shutdown()
        server.server_close()


def test_credit_checks_the_pubkey_before_asking_anyone(capsys):
    """A mistyped --pubkey is named at once, before the forum or a node is reached."""
    nowhere = ["--forum-url", "http://127.0.0.1:9", "--lndconnect", "x", "--amount-sats", "5"]
    assert forum_client.main(["credit", "--pubkey", "ab" * 31, *nowhere]) == 1
    assert _one_line_error(capsys) == (
        "error: --pubkey: pubkey must be 64 hex characters (x-only, as in Nostr) or an npub"
    )
    assert forum_client.main(["credit", "--pubkey", "npub1" + "q" * 58, *nowhere]) == 1
    assert _one_line_error(capsys).startswith("error: --pubkey: not a valid npub: ")
