"""Public forum pages: readable without an account and without JavaScript.

Views are adapters: they parse the request, call selectors in `forum.selectors.pages` and
render. The composer (static/forum/compose.js) and live updates (static/forum/live.js) are
progressive enhancements on top of these pages.

Home, board and thread pages are the same for every reader, so they are cached by version and
answered with HTTP validators (`forum.views.page_cache`); they carry no per-reader data (no
CSRF token: scripts that post fetch one from `/csrf`).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from forum.models import Thread
from forum.ranking import TOP_PERIODS
from forum.selectors import pages as sel
from forum.services import identity
from forum.services.demo import demo_node_flags
from forum.services.versions import versions_read
from forum.views.page_cache import cached_page, cards_for_keys, cards_render, public
from forum.views.room_access import room_redirect

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _event_id(value: str) -> str:
    value = value.lower()
    if not _HEX64.fullmatch(value):
        raise Http404("not an event id")
    return value


def _page_links(page, **params: str) -> dict[str, str]:
    """Query strings for prev/next that keep the other parameters (sort)."""
    from urllib.parse import urlencode

    links = {}
    if page.has_previous():
        links["prev"] = "?" + urlencode({**params, "page": page.previous_page_number()})
    if page.has_next():
        links["next"] = "?" + urlencode({**params, "page": page.next_page_number()})
    return links


def composer_context() -> dict:
    """What every page with a composer needs to know, server-side (no extra request)."""
    return {
        "composer": {
            "quote_url": "/api/quote",
            "status_url": "/api/status/",
            "records_url": reverse("compose-records"),
            "demo_wallet_url": reverse("demo-keysend") if settings.DEMO_MODE else "",
            # Demo mode: the "pay from my own node" commands use a demo user's simnet node.
            "demo_node": demo_node_flags(),
            # The composer counts against the limits instead of letting maxlength cut text.
            "title_max_length": Thread._meta.get_field("title").max_length,
        }
    }


def _room_redirect(request: HttpRequest, event_id: str, *, target: str) -> HttpResponse:
    """A private room's post: its room URL if this session unlocked the room, else 404."""
    return room_redirect(request, event_id.lower(), target=target)


@require_GET
def home(request: HttpRequest) -> HttpResponseBase:
    def render_home() -> HttpResponse:
        feed = sel.latest_feed(page=request.GET.get("page", 1))
        links = {}
        if feed.has_previous:
            links["prev"] = f"?page={feed.number - 1}"
        if feed.has_next:
            links["next"] = f"?page={feed.number + 1}"
        context = {
            "boards": sel.boards_for_home(),
            "feed": feed,
            "feed_links": links,
            "feed_page_size": sel.FEED_PER_PAGE,
            "public_page": True,
        }
        return public(render(request, "forum/home.html", context))

    return cached_page(request, versions_read(), render_home)


# The sorts a thread list offers (the board's "sats" stays valid for old links: Top, all time).
LIST_SORTS = ("latest", "newest", "hot", "top")


def ranking_params(request: HttpRequest, *, default: str) -> tuple[str, str]:
    """The list's sort and Top period from the query string (unknown values: the defaults)."""
    sort = request.GET.get("sort", default)
    if sort not in sel.BOARD_SORTS:
        sort = default
    period = request.GET.get("period", "week")
    if period not in TOP_PERIODS:
        period = "week"
    return sort, period


def ranking_context(page, sort: str, period: str) -> dict:
    params = {"sort": sort, "period": period} if sort == "top" else {"sort": sort}
    return {
        "sort": sort,
        "period": period,
        "sorts": LIST_SORTS,
        "periods": list(TOP_PERIODS),
        "links": _page_links(page, **params),
    }


@require_GET
def board(request: HttpRequest, slug: str) -> HttpResponseBase:
    def render_board() -> HttpResponse:
        board = sel.board_get(slug)
        sort, period = ranking_params(request, default="latest")
        page = sel.board_threads_page(
            board, sort=sort, period=period, page=request.GET.get("page", 1)
        )
        context = {
            "board": board,
            "page": page,
            **ranking_context(page, sort, period),
            "public_page": True,
            **composer_context(),
        }
        return public(render(request, "forum/board.html", context))

    return cached_page(request, versions_read(board=slug), render_board)


@require_GET
def thread(request: HttpRequest, event_id: str) -> HttpResponseBase:
    try:
        key = _event_id(event_id)
    except Http404:
        return _room_redirect(request, event_id, target="thread")

    def render_thread() -> HttpResponse:
        try:
            thread = sel.thread_get(key)
        except Http404:
            return _room_redirect(request, event_id, target="thread")  # never cached
        page = sel.thread_card_keys_page(thread, page=request.GET.get("page", 1))
        context = {
            "board": thread.board,
            "thread": thread,
            "page": page,
            "cards": cards_for_keys(page),
            "links": _page_links(page),
            "public_page": True,
            **composer_context(),
        }
        return public(render(request, "forum/thread.html", context))

    return cached_page(request, versions_read(thread=key), render_thread)


@require_GET
def threads_ranked(request: HttpRequest, sort: str) -> HttpResponseBase:
    """`/hot/` and `/top/?period=week`: threads across the listed boards, ranked."""

    def render_ranked() -> HttpResponse:
        _, period = ranking_params(request, default=sort)
        page = sel.board_threads_page(
            None, sort=sort, period=period, page=request.GET.get("page", 1)
        )
        context = {"page": page, "public_page": True, **ranking_context(page, sort, period)}
        context["sorts"] = ("hot", "top")
        return public(render(request, "forum/ranked.html", context))

    return cached_page(request, versions_read(), render_ranked)


@require_GET
def csrf_token(request: HttpRequest) -> JsonResponse:
    """A CSRF token (and its cookie) for scripts on cached pages, which carry none."""
    response = JsonResponse({"token": get_token(request)})
    response["Cache-Control"] = "private, no-store"
    return response


def _permalink(located: sel.Located) -> str:
    thread_url = reverse("thread", args=[located.thread.event.event_id])
    if located.post is None:
        return thread_url
    page = sel.post_page_number(located.post)
    query = f"?page={page}" if page > 1 else ""
    return f"{thread_url}{query}#p{located.post.number}"


@require_GET
def event_permalink(request: HttpRequest, event_id: str) -> HttpResponse:
    """`/e/<id>`: the stable address of any post; redirects to its page and anchor."""
    try:
        located = sel.event_locate(_event_id(event_id))
    except Http404:
        return _room_redirect(request, event_id, target="event")
    return HttpResponseRedirect(_permalink(located))


@require_GET
def event_json(request: HttpRequest, event_id: str) -> HttpResponse:
    """The raw signed event, byte for byte as the forum received it: anyone can verify it."""
    try:
        body = sel.event_raw_json(_event_id(event_id))
    except Http404:
        return _room_redirect(request, event_id, target="json")
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Access-Control-Allow-Origin"] = "*"  # public, signed data: let any verifier fetch
    response["Content-Disposition"] = f'inline; filename="{event_id}.json"'
    return response


@require_GET
def event_fragment(request: HttpRequest, event_id: str) -> HttpResponse:
    """Server-rendered HTML for a post that just went live, so live pages show exactly what a
    reload would (same card, escaping and Markdown) without rendering user content in JS."""
    from forum.templatetags.forum_tags import thread_row

    located = sel.event_locate(_event_id(event_id))
    if located.post is not None:
        return HttpResponse(cards_render([located.post])[0])
    return HttpResponse(thread_row(located.thread))


@require_GET
def author(request: HttpRequest, key: str) -> HttpResponse:
    person = sel.author_get(key)
    activity = sel.author_activity(person)
    context = {"author": person, "threads": activity.threads, "posts": activity.posts}
    return render(request, "forum/author.html", context)


@require_GET
def how_to_post(request: HttpRequest) -> HttpResponse:
    contact = node_contact()
    boards = sel.boards_for_home()
    # The lncli example posts on another board than the client's (a second post of the same
    # key on one board costs more), at its price for a new key, in whole sats (rounded up).
    lncli_board = boards[1] if len(boards) > 1 else (boards[0] if boards else None)
    context = {
        "node": contact,
        "record_types": sel.record_types(),
        "boards": boards,
        "demo_node": demo_node_flags(),
        "hold_mode": settings.HOLD_MODE,
        "lncli_board": lncli_board,
        "lncli_amt": -(-lncli_board.thread_price_msat // 1000) if lncli_board else 0,
    }
    return render(request, "forum/how_to_post.html", context)


@require_GET
def node_qr(request: HttpRequest) -> HttpResponse:
    """The forum node's URI (or pubkey) as an SVG QR code, for the composer's manual-pay box."""
    import io

    import segno

    contact = node_contact()
    if not contact.pubkey:
        raise Http404("node unavailable")
    out = io.BytesIO()
    segno.make(contact.uri or contact.pubkey, error="m").save(out, kind="svg", scale=5, border=2)
    response = HttpResponse(out.getvalue(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=60"
    return response


def node_contact() -> sel.NodeContact:
    """The forum node's pubkey and URI, from GetInfo (cached briefly: pages must not wait on
    lnd for every request, and the identity does not change)."""
    from django.core.cache import cache

    cached = cache.get("forum:node_contact")
    if cached is not None:
        return cached
    try:
        info = identity.forum_client().get_info()
    except Exception as exc:  # unreachable node, not configured, auth: say so on the page
        return sel.NodeContact(error=str(exc) or exc.__class__.__name__)
    uri = info.uris[0] if info.uris else ""
    contact = sel.NodeContact(pubkey=info.identity_pubkey, uri=uri, alias=info.alias)
    cache.set("forum:node_contact", contact, sel.NODE_CONTACT_CACHE_SECONDS)
    return contact
