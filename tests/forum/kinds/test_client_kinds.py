"""The terminal client sets a profile, edits and deletes a post by keysend through "your" lnd."""

from __future__ import annotations

import pytest

from forum import client as forum_client
from forum import nostr
from forum.models import Author, Thread

pytestmark = pytest.mark.django_db(transaction=True)


def test_profile_edit_and_delete_from_the_terminal(
    live_server, simnet, board, running_listener, tmp_path, capsys
):
    key_file = tmp_path / "key"
    assert forum_client.main(["keygen", "--key-file", str(key_file)]) == 0
    pubkey = nostr.public_key(key_file.read_text().strip())
    node = ["--lndconnect", simnet.nodes["bob"].lndconnect_uri(), "--forum-url", live_server.url]
    key = ["--key-file", str(key_file), "--wait-seconds", "20"]

    code = forum_client.main(["profile", "--name", "Term", "--about", "hi", *key, *node])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"profile published: {live_server.url}/a/{nostr.npub_encode(pubkey)}/" in out
    assert Author.objects.get(pubkey=pubkey).profile_name == "Term"

    code = forum_client.main(
        ["post", "--board", "general", "--title", "T", "--content", "typo", *key, *node]
    )
    assert code == 0, capsys.readouterr().out
    thread_id = Thread.objects.get().event.event_id
    code = forum_client.main(["edit", thread_id, "--content", "fixed", *key, *node])
    out = capsys.readouterr().out
    assert code == 0 and f"/e/{thread_id}/history" in out, out
    assert Thread.objects.get().content == "fixed"

    code = forum_client.main(["delete", thread_id, "--reason", "done", *key, *node])
    out = capsys.readouterr().out
    assert code == 0 and "deleted: 1 event(s)" in out, out
    assert Thread.objects.get().is_hidden


def test_deleting_an_unknown_event_says_why(
    live_server, simnet, board, running_listener, tmp_path, capsys
):
    key_file = tmp_path / "key"
    forum_client.main(["keygen", "--key-file", str(key_file)])
    node = ["--lndconnect", simnet.nodes["bob"].lndconnect_uri(), "--forum-url", live_server.url]
    code = forum_client.main(
        ["delete", "ab" * 32, "--key-file", str(key_file), "--wait-seconds", "20", *node]
    )
    out = capsys.readouterr().out
    assert code == 2 and "not a published thread or reply here" in out, out
