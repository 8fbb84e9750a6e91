"""The HTML that live messages carry to public pages: a reply's card (thread pages), a thread's
row (board pages) and an item of "Latest across the forum" (the home page).

Rendered once, where the message is sent when that is possible: the worker that published a
batch adds the HTML to the batch's messages before they leave (`messages_render`: one query
per kind of fragment for the whole batch, the cards through the page cache, so the thread
page's next render finds the new card there). Every web process then relays the message as
it is. A message sent without it (a moderator's hide or lock, a tip) is rendered by each web
process's hub when it arrives (`fragments`), once per process, not per socket.

Only the public selectors are used: a private room's post is never rendered here (and never
stored in the page cache); room pages fetch what they show per session.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from forum import realtime
from forum.selectors import pages as sel
from forum.templatetags.feed_tags import feed_item
from forum.templatetags.forum_tags import thread_row
from forum.views.page_cache import cards_render

log = logging.getLogger(__name__)

# The key of a channel-layer message that holds its rendered fields: a dict merged into what
# the browser is told, or None for "the home feed does not show this" (a private room's post).
FRAGMENTS = "fragments"

Message = tuple[str, dict[str, Any]]


def _wants(group: str, message: dict[str, Any]) -> tuple[str, Any] | None:
    """What a message to `group` (a channel-layer group) needs rendered: ("card", post id),
    ("row", thread event id), ("feed", event id), or None."""
    kind = message.get("type")
    payload = message.get("payload") or {}
    if group == realtime.PUBLIC_FEED_GROUP:
        return ("feed", str(payload.get("event_id", ""))) if kind == "post.published" else None
    if group.startswith("thread.") and kind == "post.published" and payload.get("number"):
        return "card", int(payload.get("post_id") or 0)
    if group.startswith("board.") and kind in ("post.published", "thread.updated"):
        thread_id = payload.get("thread") or payload.get("thread_event_id")
        if thread_id and not payload.get("is_hidden"):
            return "row", str(thread_id)
    return None


def _render(wants: Iterable[tuple[str, Any]]) -> dict[tuple[str, Any], dict[str, str] | None]:
    """The fields for each want, with one query per kind (cards: one page-cache trip more)."""
    keys: dict[str, set] = {"card": set(), "row": set(), "feed": set()}
    for what, key in wants:
        keys[what].add(key)
    out: dict[tuple[str, Any], dict[str, str] | None] = {}
    if keys["card"]:
        posts = list(sel.posts_visible_get(keys["card"]).values())
        for post, html in zip(posts, cards_render(posts), strict=True):
            out["card", post.pk] = {"html": str(html)}
    if keys["row"]:
        for event_id, thread in sel.threads_visible_get(keys["row"]).items():
            out["row", event_id] = {"row_html": str(thread_row(thread))}
    if keys["feed"]:
        items = sel.feed_items_get(keys["feed"])
        for event_id in keys["feed"]:
            item = items.get(event_id)
            out["feed", event_id] = {"html": str(feed_item(item))} if item is not None else None
    return out


def fragments(group: str, message: dict[str, Any]) -> dict[str, str] | None:
    """The fields one message to a public page adds (`{}`: none), or None to drop it (the
    home feed, for what it does not show). `group` is the channel-layer group."""
    if FRAGMENTS in message:
        return message[FRAGMENTS]
    want = _wants(group, message)
    if want is None:
        # The feed relays publishes it shows and hides (sent only for the boards it shows).
        feed_drops = group == realtime.PUBLIC_FEED_GROUP and message.get("type") != "post.hidden"
        return None if feed_drops else {}
    return _render([want]).get(want, {})


def messages_render(messages: Iterable[Message]) -> list[Message]:
    """The same messages, each with its public HTML (`FRAGMENTS`) when it needs some.

    A message object shared by several groups is copied per group (each gets its own HTML).
    If rendering fails, the messages leave without it and each web process renders them.
    """
    messages = list(messages)
    wants = {i: _wants(group, message) for i, (group, message) in enumerate(messages)}
    if not any(wants.values()):
        return messages
    try:
        rendered = _render(want for want in wants.values() if want is not None)
    except Exception:
        log.exception("rendering live fragments failed; the web processes will render them")
        return messages
    out = []
    for i, (group, message) in enumerate(messages):
        want = wants[i]
        if want is not None:
            message = {**message, FRAGMENTS: rendered.get(want, {})}
        out.append((group, message))
    return out
