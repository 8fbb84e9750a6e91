"""The markup of one item of "Latest across the forum" (home page and its live updates)."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from forum.selectors.pages import FeedItem
from forum.templatetags.forum_tags import _author_link, _time, event_url, excerpt, thread_url

register = template.Library()


@register.simple_tag
def feed_item(item: FeedItem) -> SafeString:
    """A new thread ("New thread in Board") or a reply ("Reply #3 to Title in Board")."""
    board_link = format_html(
        '<a href="{}">{}</a>', reverse("board", args=[item.board.slug]), item.board.title
    )
    thread_link = format_html(
        '<a href="{}">{}</a>', thread_url(item.thread.event.event_id), item.thread.title
    )
    if item.post is None:
        where = format_html("New thread {} in {}", thread_link, board_link)
        link = thread_url(item.event_id)
    else:
        where = format_html("Reply #{} to {} in {}", item.post.number, thread_link, board_link)
        link = event_url(item.event_id)
    return format_html(
        '<li class="feed-item" data-event-id="{}" data-thread="{}">\n'
        '  <div class="feed-where">{}</div>\n'
        '  <div class="feed-excerpt"><a href="{}">{}</a></div>\n'
        '  <div class="feed-meta">{} {}</div>\n'
        "</li>",
        item.event_id,
        item.thread.event.event_id,
        where,
        link,
        excerpt(item.content, 160) or "(no text)",
        _author_link(item.author),
        _time(item.settled_at),
    )
