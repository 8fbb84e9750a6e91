"""Identicons: a small symmetric picture generated from a pubkey, so people are recognisable
at a glance without any image from elsewhere.

A 5x5 grid mirrored left to right (15 free cells) drawn in one colour on a light background.
The cells and the hue come from sha256 of the 32-byte pubkey, so the picture is a pure
function of the key: the same everywhere, for ever, and cacheable without limit.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

GRID = 5


@lru_cache(maxsize=4096)
def identicon_svg(pubkey_hex: str) -> str:
    """An SVG document (about 1 KB) for a 64-hex-character pubkey."""
    digest = hashlib.sha256(bytes.fromhex(pubkey_hex)).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    saturation = 45 + digest[2] % 30
    lightness = 38 + digest[3] % 20
    bits = int.from_bytes(digest[4:8], "big")
    half = (GRID + 1) // 2
    rects = []
    for column in range(half):
        for row in range(GRID):
            if bits >> (column * GRID + row) & 1:
                for x in {column, GRID - 1 - column}:
                    rects.append(f'<rect x="{x + 1}" y="{row + 1}" width="1" height="1"/>')
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 7 7" '
        'shape-rendering="crispEdges">'
        '<rect width="7" height="7" fill="#f2f2f2"/>'
        f'<g fill="hsl({hue},{saturation}%,{lightness}%)">{"".join(rects)}</g></svg>'
    )
