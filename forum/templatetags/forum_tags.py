"""Template helpers for the public pages: sats, npubs, Markdown, QR codes."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from forum.markdown import render_markdown
from forum.selectors.pages import npub, short_npub

register = template.Library()


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
