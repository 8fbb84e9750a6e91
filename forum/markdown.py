"""Safe Markdown for post content: the only place user text becomes HTML.

Two independent layers, so a bug in one is not an XSS:

1. markdown-it-py (CommonMark) with raw HTML disabled and linkify-it-py for bare URLs; images
   are turned off (a paid forum should not load third-party trackers into every reader's page).
2. nh3 (ammonia) sanitises the result against a small allow-list of tags and attributes, keeps
   only http/https/mailto links and forces rel="nofollow ugc noopener" on every link.

Content is immutable per event, so results are memoised: a 1,000-reply thread renders each
post once per process, not once per request.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

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


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.enable(["linkify", "table", "strikethrough"])
    md.disable("image")
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
