"""`/search`: full-text search over the public forum, a plain GET form (no JavaScript).

Results show only public posts and are the same for every reader, so the page is cached by
the home page's versions (`forum.services.versions`): every publish, hide, unhide, tip and
board edit bumps them, so a hidden post leaves the results at once.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from forum.selectors import pages as sel
from forum.selectors import search as search_sel
from forum.services.versions import versions_read
from forum.views.page_cache import cached_page, public


def _day(value: str, errors: list[str], name: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"“{value}” is not a date for “{name}” (use YYYY-MM-DD); it was ignored.")
        return None


def filters_from(request: HttpRequest) -> tuple[search_sel.SearchFilters, list[str]]:
    """The form's fields, cleaned: unknown kinds and bad dates are dropped with a reason."""
    get = request.GET
    errors: list[str] = []
    kind = get.get("kind", "").strip()
    if kind not in search_sel.KINDS:
        kind = ""
    filters = search_sel.SearchFilters(
        q=get.get("q", "")[: search_sel.MAX_QUERY_LENGTH],
        board=get.get("board", "").strip()[:64],
        author=get.get("author", "").strip()[:100],
        kind=kind,
        since=_day(get.get("since", ""), errors, "from"),
        until=_day(get.get("until", ""), errors, "to"),
    )
    return filters, errors


def _page_links(filters: search_sel.SearchFilters, page) -> dict[str, str]:
    params = {
        "q": filters.q,
        "board": filters.board,
        "author": filters.author,
        "kind": filters.kind,
        "since": filters.since.isoformat() if filters.since else "",
        "until": filters.until.isoformat() if filters.until else "",
    }
    params = {key: value for key, value in params.items() if value}
    links = {}
    if page is not None and page.has_previous():
        links["prev"] = "?" + urlencode({**params, "page": page.previous_page_number()})
    if page is not None and page.has_next():
        links["next"] = "?" + urlencode({**params, "page": page.next_page_number()})
    return links


@require_GET
def search(request: HttpRequest) -> HttpResponseBase:
    def render_search() -> HttpResponse:
        filters, errors = filters_from(request)
        found = search_sel.search(filters, page=request.GET.get("page", 1))
        context = {
            "filters": filters,
            "errors": errors,
            "found": found,
            "page": found.page,
            "links": _page_links(filters, found.page),
            "boards": sel.boards_for_home(),
            "kinds": search_sel.KINDS,
            "public_page": True,
        }
        return public(render(request, "forum/search.html", context))

    return cached_page(request, versions_read(), render_search)
