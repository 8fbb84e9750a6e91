"""Names and faces: every author shows a generated identicon and the moderator-set alias
(the npub on hover), else a short npub."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from forum import nostr
from forum.identicon import identicon_svg
from forum.selectors.pages import short_npub
from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


def cells(svg: str) -> set[tuple[int, int]]:
    return {(int(x), int(y)) for x, y in re.findall(r'<rect x="(\d)" y="(\d)" width="1"', svg)}


def test_identicon_is_a_symmetric_svg_fixed_by_the_key(client):
    one, two = "11" * 32, "22" * 32
    svg = identicon_svg(one)
    assert svg == identicon_svg(one) and svg != identicon_svg(two)
    drawn = cells(svg)
    assert drawn and all((6 - x, y) in drawn for x, y in drawn)  # mirrored left to right
    response = client.get(f"/i/{one}.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert "immutable" in response["Cache-Control"]
    assert response.content.decode() == svg
    assert "<script" not in svg and "href" not in svg  # nothing remote, nothing active
    assert client.get("/i/xyz.svg").status_code == 404


def test_authors_have_faces_and_names_everywhere(client):
    board = f.board("general")
    alice, alice_secret = f.author(alias="alice")
    anon, anon_secret = f.author()
    thread, root = f.thread(board, title="Faces", content="hello faces", secret=alice_secret)
    first = f.replies(thread, root, 1, secret=anon_secret, content="anon faces")[0]
    f.replies(thread, root, 1, secret=anon_secret, parent=first, content="again")
    alice_face = f'<img class="identicon" src="/i/{alice.pubkey}.svg"'
    anon_face = f'<img class="identicon" src="/i/{anon.pubkey}.svg"'
    alice_link = f'title="{nostr.npub_encode(alice.pubkey)}">{alice_face} alt="" width="16" height="16">alice</a>'
    pages = {
        "thread": client.get(reverse("thread", args=[root.id])).content.decode(),
        "board": client.get("/b/general/").content.decode(),
        "home": client.get("/").content.decode(),
        "search": client.get("/search?q=faces").content.decode(),
    }
    for name, html in pages.items():
        assert alice_link in html, name
    for name in ("thread", "home"):
        assert anon_face in pages[name] and short_npub(anon.pubkey) in pages[name], name
    assert short_npub(alice.pubkey) not in pages["thread"]  # the name replaces the short npub
    author_page = client.get(f"/a/{nostr.npub_encode(alice.pubkey)}/").content.decode()
    assert f'src="/i/{alice.pubkey}.svg" alt="" width="48"' in author_page
    assert ">alice</span></h1>" in author_page


def test_reply_quotes_name_their_parent_author(client):
    board = f.board("general")
    _, bob_secret = f.author(alias="bob")
    thread, root = f.thread(board)
    parent = f.replies(thread, root, 1, secret=bob_secret)[0]
    f.replies(thread, root, 1, parent=parent)
    html = client.get(reverse("thread", args=[root.id])).content.decode()
    assert "↪ in reply to #1</a> by bob:" in html
