"""Links in post content (forum.markdown_links): nostr references lead to the author or post
here, hashtags to search, images become plain links; the cost stays linear."""

from __future__ import annotations

import re

import pytest

from forum import nostr
from forum.markdown import render_markdown
from forum.markdown_links import nostr_path
from tests.forum.web import test_markdown_cost as cost

PUBKEY = nostr.public_key(nostr.generate_secret_key())
NPUB = nostr.npub_encode(PUBKEY)
EVENT_ID = "ab" * 32


def tlv_special(hrp: str, value_hex: str) -> str:
    relay = b"wss://relay.example"
    data = bytes([0, 32]) + bytes.fromhex(value_hex) + bytes([1, len(relay)]) + relay
    return nostr.bech32_encode(hrp, data)


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def test_nostr_references_link_here():
    note = nostr.bech32_encode("note", bytes.fromhex(EVENT_ID))
    nevent = tlv_special("nevent", EVENT_ID)
    nprofile = tlv_special("nprofile", PUBKEY)
    html = str(
        render_markdown(f"by nostr:{NPUB} in nostr:{note} and nostr:{nevent} / nostr:{nprofile}")
    )
    assert hrefs(html) == [f"/a/{NPUB}/", f"/e/{EVENT_ID}", f"/e/{EVENT_ID}", f"/a/{NPUB}/"]
    assert f'title="nostr:{NPUB}"' in html  # the whole reference on hover, a short label shown
    assert f">nostr:{NPUB[:12]}" in html and "…" in html


def test_markdown_links_to_nostr_are_pointed_here_and_bad_references_stay_text():
    html = str(render_markdown(f"[my profile](nostr:{NPUB})"))
    assert hrefs(html) == [f"/a/{NPUB}/"] and ">my profile<" in html
    broken = NPUB[:-1] + ("q" if NPUB[-1] != "q" else "p")  # checksum fails
    html = str(render_markdown(f"nostr:{broken} nostr:nsec1abcdefgh"))
    assert hrefs(html) == []
    assert nostr_path("nevent1qqqqqqqqqq") is None


def test_hashtags_link_to_search_but_not_numbers_entities_or_code():
    html = str(render_markdown("Talk #bitcoin and #Lightning_dev, not #2, a#b, `#code`"))
    assert hrefs(html) == ["/search?q=%23bitcoin", "/search?q=%23Lightning_dev"]
    assert "<code>#code</code>" in html
    assert hrefs(str(render_markdown("[#tag](https://example.com)"))) == ["https://example.com"]


def test_images_render_as_plain_links_without_a_stray_bang():
    html = str(render_markdown("look: ![a cat](https://example.com/cat.png) ok"))
    assert html == (
        '<p>look: <a href="https://example.com/cat.png" rel="nofollow ugc noopener">a cat</a>'
        " ok</p>\n"
    )
    bare = str(render_markdown("![](https://example.com/x.png)"))
    assert ">https://example.com/x.png</a>" in bare and "<img" not in bare
    assert "<img" not in str(render_markdown('![x](https://e.example/x.png "t\\" onerror=1")'))


def test_hashtag_links_find_the_post(client, db):
    from tests.forum.web import factories as f

    board = f.board("general")
    f.thread(board, title="Tagged", content="All about #zapping")
    page = client.get("/search?q=%23zapping").content.decode()
    assert "1 result for" in page and "Tagged" in page


@pytest.fixture
def metered_links(monkeypatch):
    from forum import markdown_links

    modules = cost._renderer_modules()
    monkeypatch.setattr(cost, "_renderer_modules", lambda: [*modules, markdown_links])


@pytest.mark.parametrize(
    "unit", ["#a ", "#", "nostr:", "nostr:npub1", f"nostr:{NPUB} ", "![x](", "![x](y) "]
)
def test_doubling_hostile_input_at_most_doubles_the_work(metered_links, unit):
    small, _ = cost._render_cost(cost._repeat(unit, 20_000))
    large, html = cost._render_cost(cost._repeat(unit, 40_000))
    assert small > 0
    assert large <= 2.5 * small, (unit, small, large)
