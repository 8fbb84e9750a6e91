"""The revenue chart as server-rendered SVG: no JavaScript and nothing loaded from elsewhere.

One bar per UTC day: net revenue in sats (received minus refunds, forwards and fees), drawn
below the axis when a day lost money. Every value written into the markup is a number or an
escaped string, so the result is safe to embed.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from forum.selectors.moderation import RevenueRow

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 14, 36


def _sats(msat: int) -> str:
    sats = msat / 1000
    return f"{sats:,.0f}" if sats == int(sats) else f"{sats:,.3f}"


def revenue_svg(days: list[RevenueRow], *, title: str = "Net revenue per day (sats)") -> SafeString:
    values = [row.net_msat for row in days]
    high = max([0, *values])
    low = min([0, *values])
    span = (high - low) or 1
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    n = max(len(days), 1)
    step = plot_w / n
    bar_w = max(step * 0.7, 1.0)

    def y(value: int) -> float:
        return TOP + (high - value) / span * plot_h

    zero = y(0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="revenue-chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" aria-labelledby="revenue-chart-title">',
        f'<title id="revenue-chart-title">{escape(title)}</title>',
        f'<line class="axis" x1="{LEFT}" y1="{zero:.1f}" x2="{WIDTH - RIGHT}" y2="{zero:.1f}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{y(high) + 4:.1f}" text-anchor="end">'
        f"{escape(_sats(high))}</text>",
    ]
    if low < 0:
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y(low) + 4:.1f}" text-anchor="end">'
            f"{escape(_sats(low))}</text>"
        )
    parts.append(f'<text class="tick" x="{LEFT - 6}" y="{zero + 4:.1f}" text-anchor="end">0</text>')
    label_every = max(1, n // 10)
    for i, row in enumerate(days):
        x = LEFT + i * step + (step - bar_w) / 2
        top, bottom = sorted((y(row.net_msat), zero))
        cls = "bar loss" if row.net_msat < 0 else "bar"
        label = f"{row.key}: {_sats(row.net_msat)} sats net, {_sats(row.received_msat)} received"
        parts.append(
            f'<rect class="{cls}" x="{x:.1f}" y="{top:.1f}" width="{bar_w:.1f}" '
            f'height="{max(bottom - top, 0.5):.1f}"><title>{escape(label)}</title></rect>'
        )
        if i % label_every == 0:
            parts.append(
                f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(str(row.key)[5:])}</text>'
            )
    parts.append("</svg>")
    # Safe: built only from numbers and escaped text.
    return mark_safe("".join(parts))
