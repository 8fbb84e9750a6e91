"""JSON API for clients and the composer: the quote and a message's status. Thin adapters."""

from __future__ import annotations

import re

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from forum.selectors.status import message_status, status_unknown
from forum.services.quote import QuoteError, quote_for

_KEY = re.compile(r"[0-9a-fA-F]{64}")


@require_GET
def quote(request: HttpRequest) -> JsonResponse:
    try:
        body = quote_for(
            board_slug=request.GET.get("board", ""),
            pubkey=request.GET.get("pubkey", ""),
            kind=request.GET.get("kind"),
        )
    except QuoteError as exc:
        return JsonResponse({"error": exc.message, "field": exc.field}, status=exc.status)
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"  # prices move with every accepted post
    return response


@require_GET
def status(request: HttpRequest, key: str) -> JsonResponse:
    if _KEY.fullmatch(key) is None:
        return JsonResponse({"error": "expected an event id or payment hash (64 hex)"}, status=400)
    body = message_status(key=key)
    if body is None:
        # Not (yet) paid: a composer keeps polling; the shape stays the same.
        response = JsonResponse(status_unknown(key.lower()), status=404)
    else:
        response = JsonResponse(body)
    response["Cache-Control"] = "no-store"
    return response
