"""Who may see a private room's content: the session's unlock, and the public URLs of a room's
posts (a redirect for an unlocked session, 404 for everyone else). Shared by the public pages
and the room views, so neither imports the other."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from forum.models import Board
from forum.selectors import rooms as sel

SESSION_KEY = "forum.rooms.unlocked"


def is_unlocked(request: HttpRequest, board: Board) -> bool:
    return sel.fingerprint_matches(board, request.session.get(SESSION_KEY, {}))


ROOM_TARGETS = {"thread": "room-event", "event": "room-event", "json": "room-event-json"}


def private(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def room_redirect(request: HttpRequest, event_id: str, *, target: str) -> HttpResponse:
    """For the public pages: a room's post, for a session that unlocked the room, moves to its
    room URL; for everyone else it does not exist (404, the same as an unknown id)."""
    board = sel.room_of_event(event_id)
    if board is None or not is_unlocked(request, board):
        raise Http404("no such post")
    url = reverse(ROOM_TARGETS[target], args=[board.slug, event_id])
    return private(HttpResponseRedirect(url))
