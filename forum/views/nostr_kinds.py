"""Pages of the side kinds: a post's edit history, and the forum's own NIP-05 document."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from forum.selectors.kinds import edit_history
from forum.services.nip05 import local_names


@require_GET
def event_history(request: HttpRequest, event_id: str) -> HttpResponse:
    """Every version of a thread or reply: the signed original and its edits, newest first."""
    history = edit_history(event_id.lower())
    return render(request, "forum/history.html", {"history": history})


@require_GET
def nostr_json(request: HttpRequest) -> HttpResponse:
    """NIP-05 `/.well-known/nostr.json?name=`: the names a moderator gave keys on this forum."""
    name = request.GET.get("name")
    response = JsonResponse({"names": local_names(name)})
    # NIP-05: web clients fetch this from other origins.
    response["Access-Control-Allow-Origin"] = "*"
    return response
