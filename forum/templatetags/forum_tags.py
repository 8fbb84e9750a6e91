"""Template helpers for the public pages: sats, npubs, Markdown, QR codes."""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from forum.markdown import render_markdown
from forum.selectors.pages import npub, short_npub

register = template.Library()


_PLACEHOLDER = "0" * 64


@lru_cache(maxsize=32)
def _url_pattern(name: str) -> str:
    return reverse(name, args=[_PLACEHOLDER])


def _url(name: str, key: str) -> str:
    # `{% url %}` costs a resolver walk per call (~0.25 ms); a thread page links every post
    # four times. The URLconf stays the source of truth: reverse once, then substitute.
    return _url_pattern(name).replace(_PLACEHOLDER, key, 1)


@register.filter
def event_url(event_id: str) -> str:
    return _url("event", event_id)


@register.filter
def event_json_url(event_id: str) -> str:
    return _url("event-json", event_id)


@register.filter
def thread_url(event_id: str) -> str:
    return _url("thread", event_id)


@register.filter
def author_url(pubkey: str) -> str:
    return _url("author", pubkey)


@register.filter
def sats(msat: int | None) -> str:
    """msat -> "1,234 sats" (fractions kept: "0.5 sats"), the unit people pay in."""
    msat = int(msat or 0)
    whole, rest = divmod(msat, 1000)
    text = f"{whole:,}" if not rest else f"{msat / 1000:,.3f}".rstrip("0")
    return f"{text} sat" if msat == 1000 else f"{text} sats"


@register.filter
def ago(when) -> str:
    """ "just now", "5 minutes ago", "3 days ago": relative age for lists and posts."""
    from django.utils import timezone
    from django.utils.timesince import timesince

    if when is None:
        return ""
    if (timezone.now() - when).total_seconds() < 60:
        return "just now"
    return f"{timesince(when, depth=1)} ago"


@register.filter
def duration(seconds: int | None) -> str:
    """600 -> "10 min", 90 -> "90 s", 7200 -> "2 h": escalation windows in words."""
    seconds = int(seconds or 0)
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


@register.filter
def npub_full(pubkey: str) -> str:
    return npub(pubkey)


@register.filter
def npub_short(pubkey: str) -> str:
    return short_npub(pubkey)


@register.filter
def markdown(text: str) -> SafeString:
    return render_markdown(text)


@register.filter
def excerpt(text: str, length: int = 140) -> str:
    """A one-line plain excerpt of Markdown source (escaped by the template as usual)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


@register.simple_tag
def qr_svg(data: str, scale: int = 4) -> SafeString:
    """An inline SVG QR code, rendered server-side (segno) so no script or CDN is needed."""
    import segno

    svg = segno.make(data, error="m").svg_inline(scale=scale, border=2, dark="#111", light="#fff")
    return mark_safe(svg)  # noqa: S308 - segno's own SVG; the data is encoded, not embedded


# --- post and thread-row cards -------------------------------------------------------------
# A thread page shows 50 posts and a board page 30 rows. As `{% include %}`d templates they
# cost ~1 ms each in variable lookups alone (bench/pages.py); built with format_html they
# cost a few µs, with the same escaping. These two functions are the only markup of a post
# and of a thread row: pages and the live fragments (/e/<id>/fragment) both use them.


@register.filter
def identicon_url(pubkey: str) -> str:
    return _url("identicon", pubkey)


@register.filter
def author_name(author) -> str:
    """The name an author is shown by: the moderator-set alias, else the name of the author's
    own kind 0 profile, else a short npub (the full npub always goes in a title).

    The alias comes first because it is the forum's decision (it can correct a misleading
    self-chosen name); a profile name is the author's own word, so the npub stays on hover.
    """
    return author.alias or author.profile_name or short_npub(author.pubkey)


def author_title(author) -> str:
    """The hover text of an author: the npub, and the NIP-05 identifier once verified."""
    verified = author.nip05_verified
    return f"{npub(author.pubkey)} · {verified} ✓" if verified else npub(author.pubkey)


@register.simple_tag
def identicon(pubkey: str, size: int = 16) -> SafeString:
    """The author's generated picture (same origin, `forum.identicon`); decorative (alt="")."""
    return format_html(
        '<img class="identicon" src="{}" alt="" width="{}" height="{}">',
        identicon_url(pubkey),
        size,
        size,
    )


def _author_link(author) -> SafeString:
    return format_html(
        '<a class="author" href="{}" title="{}">{}{}</a>',
        author_url(author.pubkey),
        author_title(author),
        identicon(author.pubkey),
        author_name(author),
    )


@register.simple_tag
def author_link(author) -> SafeString:
    """An author as every page shows one (name or short npub, the npub on hover)."""
    return _author_link(author)


@register.filter
def history_url(event_id: str) -> str:
    return _url("event-history", event_id)


@register.simple_tag
def edited_link(row) -> SafeString:
    """ "edited" linking to the post's history, when its author replaced its text (kind 1010)."""
    if not row.edited_ref:
        return mark_safe("")
    return format_html(
        ' <a class="edited" href="{}" title="Edited {} UTC: see every version">edited</a>',
        history_url(row.event.event_id),
        row.edited_at.strftime("%Y-%m-%d %H:%M") if row.edited_at else "",
    )


def _time(when) -> SafeString:
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        when.isoformat(),
        when.strftime("%Y-%m-%d %H:%M:%S"),
        ago(when),
    )


@register.simple_tag
def post_card(post) -> SafeString:
    """One reply: author, age, sats, permalink, verify, reply, the parent quote, the content."""
    event_id = post.event.event_id
    quote = ""
    if post.parent_id:
        parent = post.parent
        if parent.is_hidden:
            inner = mark_safe('<span class="muted">in reply to a hidden post</span>')
        else:
            inner = format_html(
                '<a href="{}" class="reply-ref" data-parent-number="{}">↪ in reply to #{}</a>'
                ' by {}: <span class="reply-excerpt">{}</span>',
                event_url(parent.event.event_id),
                parent.number,
                parent.number,
                author_name(parent.author),
                excerpt(parent.content, 120),
            )
        quote = format_html('\n  <blockquote class="reply-to">{}</blockquote>', inner)
    return format_html(
        '<article class="post{}" id="p{}" data-event-id="{}" data-number="{}">\n'
        '  <header class="post-head">\n'
        "    {}\n    {}\n"
        '    <span class="post-sats" title="paid">{}</span>\n'
        '    <span class="post-links">\n'
        '      <a class="permalink" href="{}" title="Permanent link">#{}</a>\n'
        '      <a class="verify" href="{}" title="The raw signed Nostr event: check its id and'
        ' signature yourself">verify</a>{}\n'
        '      <button type="button" class="linkish reply-button" data-reply-to="{}"'
        ' data-reply-pubkey="{}" data-reply-number="{}" hidden>reply</button>\n'
        "    </span>\n  </header>{}\n"
        '  <div class="content">{}</div>\n</article>',
        " is-nested" if post.parent_id else "",
        post.number,
        event_id,
        post.number,
        _author_link(post.author),
        _time(post.settled_at),
        sats(post.sats_msat),
        event_url(event_id),
        post.number,
        event_json_url(event_id),
        edited_link(post),
        event_id,
        post.author.pubkey,
        post.number,
        quote,
        render_markdown(post.content),
    )


@register.simple_tag
def thread_row(thread, with_board: bool = False) -> SafeString:
    """One line of a board: flags, title, author, age, replies, sats (and, in a list across
    boards, the thread's board)."""
    flags = format_html(
        "{}{}",
        mark_safe('<span class="tag tag-pin" title="Pinned">pinned</span>')
        if thread.is_pinned
        else "",
        mark_safe('<span class="tag tag-lock" title="Locked: no new replies">locked</span>')
        if thread.is_locked
        else "",
    )
    replies = thread.reply_count
    return format_html(
        '<li class="thread-row{}" data-event-id="{}">\n'
        '  <div class="thread-title">{}<a href="{}">{}</a></div>\n'
        '  <div class="thread-meta">{}{} <span class="age">{}</span></div>\n'
        '  <div class="thread-nums"><span class="replies" title="replies">{} {}</span>'
        ' <span class="sats" title="sats paid for this thread and its replies">{}</span></div>\n'
        "</li>",
        " is-pinned" if thread.is_pinned else "",
        thread.event.event_id,
        flags,
        thread_url(thread.event.event_id),
        thread.title,
        format_html(
            '<a class="board-name" href="{}">{}</a> · ',
            _url("board", thread.board.slug),
            thread.board.title,
        )
        if with_board
        else "",
        _author_link(thread.author),
        _time(thread.settled_at),
        replies,
        "reply" if replies == 1 else "replies",
        sats(thread.sats_msat),
    )
