"""Template helpers for the moderation console."""

from __future__ import annotations

from django import template
from django.http import HttpRequest

register = template.Library()


@register.filter
def msat_sats(msat: int | None) -> str:
    """msat -> sats with thousands separators; fractions of a sat kept to the msat."""
    msat = int(msat or 0)
    if msat % 1000 == 0:
        return f"{msat // 1000:,}"
    return f"{msat / 1000:,.3f}"


@register.filter
def short_key(value: str | None, length: int = 12) -> str:
    """The start of a hex key or id: enough to tell rows apart; the full value goes in title."""
    value = value or ""
    return value if len(value) <= length else value[:length] + "…"


@register.simple_tag(takes_context=True)
def here(context) -> str:
    """This page's path with its query, for the `next` field of the action forms."""
    request: HttpRequest | None = context.get("request")
    return request.get_full_path() if request is not None else ""


@register.filter
def audit_details(details: dict | None) -> list[str]:
    """Audit details as short lines: changed fields as "name: before → after", else "key: value"."""
    details = dict(details or {})
    before, after = details.pop("before", None), details.pop("after", None)
    lines: list[str] = []
    if isinstance(after, dict):
        before = before if isinstance(before, dict) else {}
        for name, value in after.items():
            lines.append(
                f"{name}: {before[name]} → {value}" if name in before else f"{name}: {value}"
            )
    lines += [f"{key}: {value}" for key, value in details.items() if value not in (None, "")]
    return lines
