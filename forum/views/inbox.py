"""The inbox of a pubkey (`forum.selectors.inbox`): a page, an Atom feed and an unread count.

No accounts: `/a/<npub>/inbox/` is public like the author page, so a node runner follows
`/a/<npub>/inbox.atom` in any feed reader. The browser's bell (static/forum/inbox.js) asks
`/a/<npub>/inbox.json?after=<id>` for the local key's unread count, keeps the "read up to" id
itself, and hears of new ones over the live socket (`/ws/inbox/<hex pubkey>/`).

The page and the feed follow the home page's versions (every publish, hide, tip and board edit
bumps them), as the author feed does.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from forum import feeds, nostr
from forum.selectors import inbox as sel
from forum.selectors.pages import npub, short_npub
from forum.services.versions import versions_read
from forum.views.feeds import _EMPTY_UPDATED, _feed_response, _meta
from forum.views.page_cache import cached_page, public


def _pubkey(key: str) -> str:
    try:
        return nostr.pubkey_parse(key)
    except nostr.EventError:
        raise Http404("not an npub or a hex pubkey") from None


@require_GET
def inbox_page(request: HttpRequest, key: str) -> HttpResponseBase:
    pubkey = _pubkey(key)

    def render_inbox() -> HttpResponse:
        items = sel.inbox(pubkey)
        context = {
            "pubkey": pubkey,
            "npub": npub(pubkey),
            "short": short_npub(pubkey),
            "items": items,
            "latest_id": items[0].id if items else 0,
            "public_page": True,
        }
        return public(render(request, "forum/inbox.html", context))

    return cached_page(request, versions_read(), render_inbox)


@require_GET
def inbox_unread(request: HttpRequest, key: str) -> JsonResponse:
    """`{"unread": n, "capped": bool}`: visible notifications newer than `?after=<id>`."""
    pubkey = _pubkey(key)
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        return JsonResponse({"error": "after must be a notification id (an integer)"}, status=400)
    count = sel.unread_count(pubkey, after=after)
    response = JsonResponse(
        {"unread": min(count, sel.UNREAD_CAP), "capped": count > sel.UNREAD_CAP}
    )
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def inbox_feed(request: HttpRequest, key: str) -> HttpResponseBase:
    """The inbox as Atom: what a feed reader shows of replies, mentions and tips."""
    pubkey = _pubkey(key)

    def build() -> bytes:
        items = sel.inbox(pubkey)
        full = npub(pubkey)
        meta = _meta(
            request,
            reverse("inbox-feed", args=[full]),
            reverse("inbox", args=[full]),
            f"Inbox of {short_npub(pubkey)} · Lightning Forum",
            f"Replies, mentions and tips for {full}",
        )
        updated = items[0].created_at if items else _EMPTY_UPDATED
        return feeds.inbox_feed(meta, items, absolute=request.build_absolute_uri, updated=updated)

    return _feed_response(request, versions_read(), build)
