"""Cached public pages and post cards, keyed by version (never expired by time).

Two layers, both in the `pages` cache (`forum.services.versions`):

- **Post cards.** A reply is an immutable signed event, so its card (author, content rendered
  from Markdown, links) only changes when its sats change (a tip) or its parent is hidden; it
  is stored under its event id and those (and its number and alias, which a rebuild sets). A thread page after a new reply renders one card, not fifty.
- **Whole pages.** Home, board and thread pages are stored under the versions they depend on
  plus the URL. The same versions give the HTTP validators (`ETag`, `Last-Modified`), so a
  conditional GET is answered 304 before anything is rendered or queried.

Relative ages ("5 minutes ago") are the one thing in a page that changes with time alone: the
cache keeps the HTML as rendered and `ages_refresh` rewrites each `<time>` element's text when
the page is served (user content cannot contain a `<time>` tag: Markdown is sanitised to an
allow-list without it, and everything else is escaped).

Only the public views use this module, with the public selectors: a private room's pages and
cards are rendered per request and never stored here.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.safestring import SafeString, mark_safe

from forum.selectors.pages import CardKey, card_key_of, posts_visible_get
from forum.services.versions import Versions, page_cache

log = logging.getLogger(__name__)

# Memory hygiene only: every key names the versions it was rendered for, so an old entry is
# never served, it just waits to be evicted.
PAGE_SECONDS = 24 * 3600
CARD_SECONDS = 7 * 24 * 3600

# Shared caches (a reverse proxy) may store public pages but must ask again every time; the
# answer to that question is a 304 that costs one cache read (docs/operations.md).
CACHE_CONTROL = "public, max-age=0, must-revalidate"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of what shapes a page's HTML (templates, tags, Markdown, static files), so pages
    cached by an older deployment are not served by a newer one sharing the same Redis."""
    base = Path(settings.BASE_DIR)
    digest = hashlib.sha256()
    sources = [
        *sorted((base / "templates").rglob("*.html")),
        *sorted((base / "static").rglob("*.js")),
        *sorted((base / "static").rglob("*.css")),
        *sorted((base / "forum" / "templatetags").glob("*.py")),
        base / "forum" / "markdown.py",
        base / "forum" / "views" / "page_cache.py",
        base / "forum" / "views" / "pages.py",
        base / "forum" / "selectors" / "pages.py",
        base / "forum" / "selectors" / "search.py",
        base / "forum" / "views" / "search.py",
        base / "forum" / "feeds.py",
    ]
    for path in sources:
        if path.is_file():
            digest.update(str(path.relative_to(base)).encode())
            digest.update(path.read_bytes())
    digest.update(b"demo" if settings.DEMO_MODE else b"")
    return digest.hexdigest()[:16]


# --- ages ------------------------------------------------------------------------------------

_TIME = re.compile(r'(<time datetime="([^"]+)"[^>]*>)[^<]*(</time>)')


def ages_refresh(html: str) -> str:
    """Rewrite the relative age inside every `<time datetime=...>` for the current time."""
    from forum.templatetags.forum_tags import ago

    def one(match: re.Match) -> str:
        try:
            when = datetime.fromisoformat(match.group(2))
        except ValueError:
            return match.group(0)
        return f"{match.group(1)}{ago(when)}{match.group(3)}"

    return _TIME.sub(one, html)


# --- post cards ------------------------------------------------------------------------------


def _card_key(key: CardKey) -> str:
    # Everything in the card that its signed event does not fix (forum.selectors.pages.CardKey):
    # sats (tips), whether the parent it quotes is hidden, its number, the names shown (the
    # alias rebuilt from the node, kind 0 profiles) and an edit (kind 1010).
    what = (
        f"{key.sats_msat}|{int(key.parent_hidden)}|{key.number}|{key.alias}|{key.parent_alias}"
        f"|{key.profile_name}|{key.nip05_verified}|{key.parent_profile_name}|{key.edited_ref}"
    )
    digest = hashlib.sha256(what.encode()).hexdigest()[:16]
    return f"card:{code_fingerprint()}:{key.event_id}:{digest}"


def cards_render(posts: Iterable) -> list[SafeString]:
    """The cards of public replies, from the cache where they are (one round trip), rendering
    and storing the rest (one more)."""
    from forum.templatetags.forum_tags import post_card

    posts = list(posts)
    keys = [_card_key(card_key_of(post)) for post in posts]
    cache = page_cache()
    found = _quietly(lambda: cache.get_many(keys), {}) if keys else {}
    fresh: dict[str, str] = {}
    cards = []
    for post, key in zip(posts, keys, strict=True):
        html = found.get(key)
        if html is None:
            html = fresh[key] = str(post_card(post))
        cards.append(mark_safe(html))  # noqa: S308 - rendered by post_card, which escapes
    if fresh:
        _quietly(lambda: cache.set_many(fresh, timeout=CARD_SECONDS), None)
    return cards


def cards_for_keys(card_keys: Iterable[CardKey]) -> list[SafeString]:
    """The cards of a page of public replies known by their card keys: from the cache (one
    round trip); only the replies whose card is missing (after a publish, the new one) are
    read with their relations (one query) and rendered."""
    card_keys = list(card_keys)
    keys = [_card_key(key) for key in card_keys]
    found = _quietly(lambda: page_cache().get_many(keys), {}) if keys else {}
    missing = [key.pk for key, name in zip(card_keys, keys, strict=True) if name not in found]
    fresh: dict[int, SafeString] = {}
    if missing:
        posts = posts_visible_get(missing)
        present = [pk for pk in missing if pk in posts]  # hidden meanwhile: left out
        fresh = dict(zip(present, cards_render([posts[pk] for pk in present]), strict=True))
    cards = []
    for key, cache_key in zip(card_keys, keys, strict=True):
        html = found.get(cache_key)
        if html is not None:
            cards.append(mark_safe(html))  # noqa: S308 - stored by cards_render
        elif key.pk in fresh:
            cards.append(fresh[key.pk])
    return cards


def _quietly(call: Callable[[], Any], default: Any) -> Any:
    """A cache operation that must not turn a readable page into an error if Redis is down."""
    try:
        return call()
    except Exception:
        log.warning("page cache unavailable", exc_info=True)
        return default


# --- whole pages -----------------------------------------------------------------------------


def _etag(versions: Versions, request: HttpRequest) -> str:
    raw = f"{code_fingerprint()}|{versions.tag}|{request.get_full_path()}"
    return 'W/"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def _last_modified(versions: Versions) -> float | None:
    """The last bump rounded up to a whole second, or None while it is under a second old.

    HTTP dates have one-second resolution. Waiting a second guarantees that any later bump
    gets a strictly later date, so `If-Modified-Since` alone can never hide a change.
    """
    import math
    import time

    changed = versions.changed_at
    if time.time() - changed < 1:
        return None
    return float(math.ceil(changed))


def _public_headers(response: HttpResponseBase, etag: str, last_modified: float | None) -> None:
    response["ETag"] = etag
    if last_modified is not None:
        response["Last-Modified"] = formatdate(last_modified, usegmt=True)
    response["Cache-Control"] = CACHE_CONTROL


def cached_page(
    request: HttpRequest,
    versions: Versions,
    render: Callable[[], HttpResponse],
) -> HttpResponseBase:
    """Answer a public GET from the cache by version: 304 if the client has it, the stored page
    if there is one, else `render()` (stored only if it is a public 200)."""
    etag = _etag(versions, request)
    last_modified = _last_modified(versions)
    not_modified = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if not_modified is not None:
        _public_headers(not_modified, etag, last_modified)
        return not_modified
    cache = page_cache()
    key = "page:" + etag[3:-1]
    html = _quietly(lambda: cache.get(key), None)
    if html is None:
        response = render()
        if response.status_code != 200 or not getattr(response, "public_page", False):
            return response  # an error, a redirect, a room: per request, never stored
        html = response.content.decode()
        _quietly(lambda: cache.set(key, html, timeout=PAGE_SECONDS), None)
    response = HttpResponse(ages_refresh(html))
    _public_headers(response, etag, last_modified)
    return response


def public(response: HttpResponse) -> HttpResponse:
    """Mark a rendered response as the same for every reader (so it may be stored)."""
    response.public_page = True
    return response
