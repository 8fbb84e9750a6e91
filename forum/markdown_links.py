"""Links the forum adds to post content: `nostr:` references, #hashtags, images as links.

A markdown-it core rule (`content_links`) and an image renderer, installed by
`forum.markdown._parser`:

- `nostr:npub1…` / `nostr:nprofile1…` link to the author's page here, `nostr:note1…` /
  `nostr:nevent1…` to the post's permalink (`/e/<id>`, which redirects to it or 404s if it is
  not here); a `[text](nostr:…)` link is pointed at the same place. A reference that does not
  decode stays text.
- `#hashtag` (a letter or `_` first, up to 64 word characters) links to `/search?q=%23tag`.
- `![alt](url)` renders as a plain link to the image (`alt`, or the URL), never an `<img>`: a
  paid forum does not load third-party images (trackers) into every reader's page.

Cost stays linear: one pass of one bounded regex over each text token, outside links and code.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote

from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from forum import nostr

_LINKABLE = re.compile(
    r"nostr:((?:npub|nprofile|note|nevent)1[02-9ac-hj-np-z]{6,600})"
    r"|(?<![\w#&/])#([^\W\d]\w{0,63})(?!\w)",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _paths() -> dict[str, str]:
    from django.urls import reverse

    placeholder = "0" * 64
    return {
        "author": reverse("author", args=[placeholder]),
        "event": reverse("event", args=[placeholder]),
        "search": reverse("search"),
    }


def _tlv_special(data: bytes) -> bytes | None:
    """NIP-19 TLV: the value of the first type-0 ("special") entry, if it is 32 bytes."""
    i = 0
    while i + 2 <= len(data):
        kind, length = data[i], data[i + 1]
        value = data[i + 2 : i + 2 + length]
        if kind == 0:
            return value if len(value) == 32 else None
        i += 2 + length
    return None


def nostr_reference(reference: str) -> tuple[str, str] | None:
    """(kind, hex) of a NIP-19 reference (without `nostr:`): ("npub", pubkey) for npub and
    nprofile, ("note", event id) for note and nevent; None if it does not decode."""
    try:
        hrp, data = nostr.bech32_decode(reference)
    except (ValueError, nostr.EventError):
        return None
    if hrp in ("nprofile", "nevent"):
        data = _tlv_special(data) or b""
    if len(data) != 32:
        return None
    if hrp in ("npub", "nprofile"):
        return "npub", data.hex()
    if hrp in ("note", "nevent"):
        return "note", data.hex()
    return None


# `nostr:npub1…` / `nostr:nprofile1…` in a text: who it mentions (`mentioned_pubkeys`).
_PROFILE_REFERENCE = re.compile(r"nostr:((?:npub|nprofile)1[02-9ac-hj-np-z]{6,600})", re.IGNORECASE)


def mentioned_pubkeys(text: str, *, limit: int) -> list[str]:
    """The pubkeys a text names with `nostr:npub…`/`nostr:nprofile…`, first `limit`, in order."""
    found: dict[str, None] = {}
    for match in _PROFILE_REFERENCE.finditer(text):
        decoded = nostr_reference(match.group(1))
        if decoded is not None and decoded[0] == "npub":
            found.setdefault(decoded[1], None)
            if len(found) >= limit:
                break
    return list(found)


def nostr_path(reference: str) -> str | None:
    """The local path for a NIP-19 reference (without `nostr:`), or None if it is not one."""
    decoded = nostr_reference(reference)
    if decoded is None:
        return None
    kind, value = decoded
    placeholder = "0" * 64
    if kind == "npub":
        return _paths()["author"].replace(placeholder, nostr.npub_encode(value))
    return _paths()["event"].replace(placeholder, value)


def _label(reference: str) -> str:
    """`nostr:npub1abcdef…uvwxyz`: a reference is 60-400 characters; the title has it whole."""
    return reference if len(reference) <= 30 else f"{reference[:18]}…{reference[-6:]}"


def _link(state: StateCore, href: str, text: str, level: int) -> list[Token]:
    opening = Token("link_open", "a", 1, level=level)
    opening.attrs = {"href": href}
    if text.startswith("nostr:"):
        opening.attrs["title"] = text
        text = _label(text)
    inner = Token("text", "", 0, level=level + 1)
    inner.content = text
    closing = Token("link_close", "a", -1, level=level)
    return [opening, inner, closing]


def _split(state: StateCore, token: Token) -> list[Token]:
    text = token.content
    out: list[Token] = []
    last = 0
    for match in _LINKABLE.finditer(text):
        if match.group(1):
            href = nostr_path(match.group(1))
        else:
            href = f"{_paths()['search']}?q={quote('#' + match.group(2))}"
        if href is None:
            continue
        if match.start() > last:
            before = Token("text", "", 0, level=token.level)
            before.content = text[last : match.start()]
            out.append(before)
        out.extend(_link(state, href, match.group(0), token.level))
        last = match.end()
    if not out:
        return [token]
    if last < len(text):
        after = Token("text", "", 0, level=token.level)
        after.content = text[last:]
        out.append(after)
    return out


def content_links(state: StateCore) -> None:
    """Core rule: link `nostr:` references and hashtags in text outside links."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        in_link = 0
        for child in block.children:
            if child.type == "link_open":
                in_link += 1
                href = child.attrs.get("href")
                if isinstance(href, str) and href.lower().startswith("nostr:"):
                    child.attrs["href"] = nostr_path(href[6:]) or ""
            elif child.type == "link_close":
                in_link -= 1
            if (
                child.type == "text"
                and not in_link
                and ("#" in child.content or ":" in child.content)
            ):
                children.extend(_split(state, child))
            else:
                children.append(child)
        block.children = children


def render_image_as_link(self, tokens, idx, options, env) -> str:
    """An image token as `<a href="src">alt</a>` (sanitised again by nh3 afterwards)."""
    token = tokens[idx]
    src = str(token.attrs.get("src", ""))
    alt = self.renderInlineAsText(token.children or [], options, env) or src
    return f'<a href="{escapeHtml(src)}">{escapeHtml(alt)}</a>'
