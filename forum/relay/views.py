"""HTTP side of ``/relay``: the NIP-11 document for Nostr clients, a short page for browsers.

NIP-11 asks for the document on the websocket URL itself when the request carries
``Accept: application/nostr+json``, with CORS headers so web clients on any origin can read it.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods

from forum.relay import selectors
from forum.relay.info import HOW_TO_POST_PATH, RelayLimits, nip11_document

NOSTR_JSON = "application/nostr+json"

_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
}


def _with_cors(response: HttpResponse) -> HttpResponse:
    for name, value in _CORS_HEADERS.items():
        response[name] = value
    # The same URL answers JSON or HTML depending on Accept: caches must keep them apart.
    response["Vary"] = "Accept"
    return response


def relay_ws_url(request: HttpRequest) -> str:
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{request.path}"


@require_http_methods(["GET", "HEAD", "OPTIONS"])
def relay_info(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        # CORS preflight: nothing but the headers.
        return _with_cors(HttpResponse(status=204))
    how_to_url = request.build_absolute_uri(HOW_TO_POST_PATH)
    if NOSTR_JSON in request.headers.get("Accept", ""):
        document = nip11_document(
            limits=RelayLimits.from_settings(),
            boards=selectors.listed_board_prices(),
            side_prices=selectors.side_prices(),
            max_content_length=selectors.max_content_length(),
            node_pubkey=selectors.forum_node_pubkey(),
            how_to_url=how_to_url,
        )
        body = json.dumps(document, ensure_ascii=False)
        return _with_cors(HttpResponse(body, content_type=NOSTR_JSON))
    page = format_html(
        "<!doctype html><title>Nostr relay</title>"
        "<h1>This is a Nostr relay</h1>"
        "<p>Point a Nostr client at <code>{}</code> to read this forum's threads (kind 11)"
        " and replies (kind 1111).</p>"
        "<p>The relay is read-only: posts are published by Lightning keysend, see"
        ' <a href="{}">how to post</a>. Clients can fetch the relay information document'
        " (NIP-11) here with <code>Accept: application/nostr+json</code>.</p>",
        relay_ws_url(request),
        how_to_url,
    )
    return _with_cors(HttpResponse(page, content_type="text/html; charset=utf-8"))
