"""Safe Markdown for post content: the only place user text becomes HTML.

Two independent layers, so a bug in one is not an XSS:

1. markdown-it-py (CommonMark) with raw HTML disabled and linkify-it-py for bare URLs; images
   render as plain links (a paid forum should not load third-party trackers into every
   reader's page), and `nostr:` references and #hashtags become local links
   (`forum.markdown_links`).
2. nh3 (ammonia) sanitises the result against a small allow-list of tags and attributes, keeps
   only http/https/mailto links and forces rel="nofollow ugc noopener" on every link.

Content is immutable per event, so results are memoised: a 1,000-reply thread renders each
post once per process, not once per request.

Rendering cost is linear in the text. markdown-it-py's own inline linkify rule searched all
the text before each `://` for a scheme and handed linkify-it all the text after it, so 20,000
characters of `<ab://` took 2 s and 40,000 took 6 s. `_linkify_bounded` replaces it: it looks
at most `SCHEME_LOOKBEHIND` characters back for the scheme and `MAX_AUTOLINK_LENGTH` forward
for the URL (a longer bare URL stays text; `[text](url)` links have no such limit).
tests/forum/web/test_markdown_cost.py counts the characters every regex is handed.
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from linkify_it import LinkifyIt
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline

from forum import markdown_links

ALLOWED_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow ugc noopener"


# linkify-it's schemes are at most 6 letters (mailto); RFC 3986 allows longer ones, and a run of
# letters longer than this before `://` is a word, not a scheme.
SCHEME_LOOKBEHIND = 32
# Longer bare URLs stay plain text; a Markdown link `[text](url)` can be as long as it likes.
MAX_AUTOLINK_LENGTH = 2048
# RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ); as markdown-it-py's rule.
_SCHEME_AT_END = re.compile(r"(?:^|[^a-z0-9.+-])([a-z][a-z0-9.+-]*)$", re.IGNORECASE)


class _BoundedLinkifyIt(LinkifyIt):
    """linkify-it, with each scheme's URL validated within `MAX_AUTOLINK_LENGTH` characters.

    Its validators match a URL from the scheme on with no bound on how far its path may run,
    once for every scheme-like spot in a long word. Each sees a bounded window instead (and
    the 3 characters before the position, which the `//` validator looks back at); a URL
    that fills the window is not a link.
    """

    def test_schema_at(self, text: str, name: str, position: int) -> int:
        start = max(0, position - 3)
        window = text[start : position + MAX_AUTOLINK_LENGTH + 1]
        length = super().test_schema_at(window, name, position - start)
        return 0 if length > MAX_AUTOLINK_LENGTH else length


def _linkify_bounded(state: StateInline, silent: bool) -> bool:
    """markdown-it-py's inline `linkify` rule (a bare `scheme://...` URL) with bounded reach."""
    pos = state.pos
    if state.linkLevel > 0 or not state.src.startswith("://", pos):
        return False
    pending = state.pending
    tail = pending[-SCHEME_LOOKBEHIND:]
    match = _SCHEME_AT_END.search(tail)
    # A scheme filling the whole window may continue before it: a word, not a scheme.
    if match is None or (match.start(1) == 0 and len(tail) < len(pending)):
        return False
    proto = match.group(1)
    start = pos - len(proto)
    window = state.src[start : start + MAX_AUTOLINK_LENGTH + 1]
    link = state.md.linkify.match_at_start(window)
    if link is None or len(link.url) > MAX_AUTOLINK_LENGTH:
        return False
    url = link.url.rstrip("*")  # a trailing `*` is emphasis, not part of the URL (as upstream)
    full_url = state.md.normalizeLink(url)
    if not state.md.validateLink(full_url):
        return False
    if not silent:
        state.pending = pending[: -len(proto)]
        token = state.push("link_open", "a", 1)
        token.attrs = {"href": full_url}
        token.markup, token.info = "linkify", "auto"
        token = state.push("text", "", 0)
        token.content = state.md.normalizeLinkText(url)
        token = state.push("link_close", "a", -1)
        token.markup, token.info = "linkify", "auto"
    state.pos += len(url) - len(proto)
    return True


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.enable(["linkify", "table", "strikethrough"])
    md.linkify = _BoundedLinkifyIt()
    md.inline.ruler.at("linkify", _linkify_bounded)
    md.core.ruler.push("content_links", markdown_links.content_links)
    md.add_render_rule("image", markdown_links.render_image_as_link)
    return md


_MD = _parser()


@lru_cache(maxsize=8192)
def _render(text: str) -> str:
    html = _MD.render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(text: str) -> SafeString:
    """Sanitised HTML for a post's Markdown ``text``, safe to put in a template unescaped."""
    return mark_safe(_render(text or ""))  # noqa: S308 - sanitised by nh3 just above
