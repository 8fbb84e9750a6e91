"""Rendering hostile Markdown costs work in proportion to its length, not its square.

Measured by counting, not timing: every regular expression the renderer (markdown-it-py,
linkify-it-py and `forum.markdown`) runs is wrapped by a meter that adds up how many characters
it was handed to look at (the text from the start position on). A construct that rescans
everything before or after it on every occurrence (20,000 characters of `<ab://` took 2 s,
40,000 took 6.3 s) quadruples that count when the input doubles; bounded constructs double it.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import linkify_it
import markdown_it
import pytest

from forum import markdown
from forum.markdown import render_markdown

_SCANNING = ("search", "match", "fullmatch", "finditer", "findall", "split", "sub", "subn")


class _Meter:
    def __init__(self) -> None:
        self.chars = 0

    def count(self, text: Any, pos: Any = 0) -> None:
        if isinstance(text, str):
            self.chars += max(0, len(text) - (pos if isinstance(pos, int) else 0))


class _MeteredPattern:
    """A compiled pattern that reports the text handed to it, then does the real work."""

    def __init__(self, pattern: re.Pattern, meter: _Meter) -> None:
        self._pattern, self._meter = pattern, meter

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._pattern, name)
        if name not in _SCANNING:
            return attr

        def metered(*args: Any, **kwargs: Any) -> Any:
            if name in ("sub", "subn"):
                self._meter.count(args[1] if len(args) > 1 else kwargs.get("string"))
            else:
                text = args[0] if args else kwargs.get("string")
                self._meter.count(text, args[1] if len(args) > 1 else kwargs.get("pos", 0))
            return attr(*args, **kwargs)

        return metered


def _metered_re_module(meter: _Meter) -> types.ModuleType:
    """A stand-in for `re` in a module that calls `re.search(pattern, text)` and friends."""
    proxy = types.ModuleType("re")
    proxy.__dict__.update(vars(re))

    def wrap(name: str):
        real = getattr(re, name)

        def metered(pattern: Any, string: Any, *args: Any, **kwargs: Any) -> Any:
            meter.count(string if name not in ("sub", "subn") else args[0] if args else "")
            if isinstance(pattern, _MeteredPattern):
                pattern = pattern._pattern
            return real(pattern, string, *args, **kwargs)

        return metered

    for name in _SCANNING:
        setattr(proxy, name, wrap(name))
    return proxy


def _renderer_modules() -> list[types.ModuleType]:
    # forum.markdown and whatever rules of ours it loads (forum.markdown_*).
    modules = [
        module
        for name, module in list(sys.modules.items())
        if name == "forum.markdown" or name.startswith("forum.markdown_")
    ]
    for package in (markdown_it, linkify_it):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            modules.append(importlib.import_module(info.name))
    return modules


@contextmanager
def regex_meter() -> Iterator[_Meter]:
    """Meter every regex in the renderer's modules and its linkify-it instance, then undo."""
    meter = _Meter()
    namespaces: list[dict[str, Any]] = [vars(module) for module in _renderer_modules()]
    linkify = markdown._MD.linkify
    namespaces.append(linkify.re)
    namespaces.extend(schema for schema in vars(linkify).get("_compiled", {}).values())
    undo: list[tuple[dict[str, Any], str, Any]] = []
    try:
        for namespace in namespaces:
            for key, value in list(namespace.items()):
                if isinstance(value, re.Pattern):
                    namespace[key] = _MeteredPattern(value, meter)
                elif value is re:
                    namespace[key] = _metered_re_module(meter)
                else:
                    continue
                undo.append((namespace, key, value))
        yield meter
    finally:
        for namespace, key, value in reversed(undo):
            namespace[key] = value


def _render_cost(text: str) -> tuple[int, str]:
    # linkify-it compiles some expressions on first use: let that happen outside the meter,
    # or the first measurement misses their work.
    render_markdown(text[:2_000])
    markdown._render.cache_clear()
    with regex_meter() as meter:
        html = str(render_markdown(text))
    return meter.chars, html


def _repeat(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


HOSTILE = [
    "<ab://",  # the reported one: 20,000 characters took 2 s
    "ab://",
    "h://x",
    "<http://",
    "http://",
    "http://a.b/(",
    "https://a.co/ ",
    "[x](",
    "[",
    "*a",
    "x.com ",
]


@pytest.mark.parametrize("unit", HOSTILE)
def test_doubling_hostile_input_at_most_doubles_the_regex_work(unit):
    small, small_html = _render_cost(_repeat(unit, 20_000))
    large, large_html = _render_cost(_repeat(unit, 40_000))
    assert small > 0  # the meter sees the renderer's expressions
    # Linear work doubles; a rescan of the text on every occurrence quadruples it.
    assert large <= 2.5 * small, (unit, small, large)
    # The output is produced and keeps the text (markup characters may become tags).
    visible = re.sub(r"<[^>]+>", "", large_html)
    assert len(visible) >= 0.4 * 40_000


def test_meter_counts_a_rescan_as_quadratic():
    """The meter itself: a rule that searches all the text before it on every `://` (what
    markdown-it-py's own linkify rule does) quadruples the count when the text doubles."""
    from markdown_it.rules_inline.linkify import linkify as upstream_linkify

    rules = markdown._MD.inline.ruler
    index = rules.__find__("linkify")
    bounded = rules.__rules__[index].fn
    rules.__rules__[index].fn = upstream_linkify
    rules.__cache__ = None
    try:
        small, _ = _render_cost(_repeat("<ab://", 10_000))
        large, _ = _render_cost(_repeat("<ab://", 20_000))
    finally:
        rules.__rules__[index].fn = bounded
        rules.__cache__ = None
    assert large > 3.5 * small


def test_links_are_still_found_next_to_long_text():
    text = "x" * 30_000 + " see https://example.com/a_(b) and more"
    html = str(render_markdown(text))
    assert '<a href="https://example.com/a_(b)"' in html
    # A scheme glued to a long word is not a scheme (as upstream): no link, no error.
    glued = str(render_markdown("y" * 100 + "https://example.com"))
    assert "<a " not in glued


def test_long_urls_are_linked_up_to_the_limit_and_longer_ones_keep_their_text():
    ok = "https://example.com/" + "a" * (markdown.MAX_AUTOLINK_LENGTH - 100)
    assert f'<a href="{ok}"' in str(render_markdown(ok))
    long = "https://example.com/" + "b" * (markdown.MAX_AUTOLINK_LENGTH + 10)
    html = str(render_markdown(long))
    assert f'href="{long}"' not in html
    assert "b" * (markdown.MAX_AUTOLINK_LENGTH + 10) in re.sub(r"<[^>]+>", "", html)
