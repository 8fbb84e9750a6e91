"""Private room pages under /r/<slug>/: locked until this browser session gives the password.

- `/r/<slug>/`: the password form, or (unlocked) the room's threads and the composer; HTTP 410
  "this room has self-destructed" once it expired (destroyed or about to be).
- `/r/<slug>/unlock` (POST): checks the password against the room's scrypt verifier
  (`services.rooms.room_unlock`: counted per client and room before it is checked, a few
  checks at a time; 429 with `Retry-After` past a budget or when the server is busy);
  success marks the room unlocked in this session only (another browser, or another session,
  stays locked).
- `/rooms/quote`: what renting a room costs and where to pay (for clients).
- `/r/<slug>/t/<id>/`, `/r/<slug>/e/<id>/`, `/r/<slug>/e/<id>.json`: thread, permalink and
  raw signed event, all behind the same check. The public `/t/`, `/e/` URLs of a room's posts
  redirect here for an unlocked session and are 404 for everyone else (`room_redirect`).

Every room response is `no-store`, so neither a shared cache nor the browser's history keeps a
copy after the room is gone.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from forum.models import Board
from forum.selectors import pages as public
from forum.selectors import rooms as sel
from forum.services import rooms
from forum.views.pages import _event_id, _page_links, composer_context
from forum.views.room_access import SESSION_KEY, is_unlocked
from forum.views.room_access import private as _private

MAX_PASSWORD_LENGTH = 1024


def _gone(request: HttpRequest, board: Board) -> HttpResponse:
    return _private(render(request, "forum/room_gone.html", {"slug": board.slug}, status=410))


def _locked(request: HttpRequest, board: Board, *, error: str = "", status: int = 200):
    context = {"slug": board.slug, "error": error}
    return _private(render(request, "forum/room_locked.html", context, status=status))


def _room_or_gone(request: HttpRequest, slug: str) -> Board | HttpResponse:
    """The unlocked room, or the response to send instead (gone, or the password form)."""
    board = sel.room_get(slug)
    if rooms.is_expired(board):
        return _gone(request, board)
    if not is_unlocked(request, board):
        return _locked(request, board)
    return board


@require_GET
def room(request: HttpRequest, slug: str) -> HttpResponse:
    board = _room_or_gone(request, slug)
    if isinstance(board, HttpResponse):
        return board
    sort = request.GET.get("sort", "latest")
    if sort not in public.BOARD_SORTS:
        sort = "latest"
    page = sel.room_threads_page(board, sort=sort, page=request.GET.get("page", 1))
    context = {
        "board": board,
        "page": page,
        "sort": sort,
        "sorts": list(public.BOARD_SORTS),
        "links": _page_links(page, sort=sort),
        **composer_context(),
    }
    return _private(render(request, "forum/room_board.html", context))


@require_POST
def room_unlock(request: HttpRequest, slug: str) -> HttpResponse:
    board = sel.room_get(slug)
    if rooms.is_expired(board):
        return _gone(request, board)
    password = request.POST.get("password", "")[:MAX_PASSWORD_LENGTH]
    if not password:
        return _locked(request, board, error="Type the room's password.", status=400)
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
    ip = request.META.get("REMOTE_ADDR", "") or "unknown"
    result = rooms.room_unlock(board=board, password=password, ip=ip)
    if result.outcome is rooms.Unlock.THROTTLED:
        minutes = max(1, round(result.retry_after / 60))
        error = (
            f"Too many wrong passwords. Wait {minutes} minute{'s' * (minutes > 1)} and try again."
        )
        return _retry_later(_locked(request, board, error=error, status=429), result)
    if result.outcome is rooms.Unlock.BUSY:
        error = (
            "The server is checking other passwords right now. Wait a few seconds and try again."
        )
        return _retry_later(_locked(request, board, error=error, status=429), result)
    if result.outcome is not rooms.Unlock.OPEN:
        return _locked(request, board, error="Wrong password.", status=403)
    # A new session key on privilege change, as on login (no session fixation).
    request.session.cycle_key()
    unlocked = dict(request.session.get(SESSION_KEY, {}))
    unlocked[board.slug] = sel.room_fingerprint(board)
    request.session[SESSION_KEY] = unlocked
    return redirect("room", slug=board.slug)


def _retry_later(response: HttpResponse, result: rooms.UnlockResult) -> HttpResponse:
    response["Retry-After"] = str(result.retry_after)
    return response


@require_POST
def room_lock(request: HttpRequest, slug: str) -> HttpResponse:
    """Forget the password in this session (leave the room)."""
    unlocked = dict(request.session.get(SESSION_KEY, {}))
    if unlocked.pop(slug, None) is not None:
        request.session[SESSION_KEY] = unlocked
    return redirect("room", slug=slug)


@require_GET
def room_thread(request: HttpRequest, slug: str, event_id: str) -> HttpResponse:
    board = _room_or_gone(request, slug)
    if isinstance(board, HttpResponse):
        return board
    thread = sel.room_thread_get(board, _event_id(event_id))
    page = sel.room_posts_page(thread, page=request.GET.get("page", 1))
    context = {
        "board": board,
        "thread": thread,
        "page": page,
        "links": _page_links(page),
        **composer_context(),
    }
    return _private(render(request, "forum/room_thread.html", context))


@require_GET
def room_event(request: HttpRequest, slug: str, event_id: str) -> HttpResponse:
    """The permalink of a thread or reply in the room: its page and anchor."""
    board = _room_or_gone(request, slug)
    if isinstance(board, HttpResponse):
        return board
    thread, post = sel.room_post_locate(board, _event_id(event_id))
    url = reverse("room-thread", args=[board.slug, thread.event.event_id])
    if post is not None:
        page = sel.room_post_page_number(post)
        url += (f"?page={page}" if page > 1 else "") + f"#p{post.number}"
    return _private(HttpResponseRedirect(url))


@require_GET
def room_event_json(request: HttpRequest, slug: str, event_id: str) -> HttpResponse:
    """The raw signed event, for a session that unlocked the room (no CORS: private)."""
    board = _room_or_gone(request, slug)
    if isinstance(board, HttpResponse):
        return board
    body = sel.room_event_raw(board, _event_id(event_id))
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{event_id}.json"'
    return _private(response)


@require_GET
def room_quote(request: HttpRequest) -> JsonResponse:
    """What renting a room costs now and what the room-create event must look like."""
    from forum.services.quote import node_contact

    response = JsonResponse(
        {
            "kind": rooms.KIND_ROOM_CREATE,
            "price_msat": rooms.price_msat(),
            "default_lifetime_seconds": rooms.default_lifetime(),
            "max_lifetime_seconds": rooms.max_lifetime(),
            "min_lifetime_seconds": rooms.MIN_LIFETIME_SECONDS,
            **node_contact(),
        }
    )
    response["Cache-Control"] = "no-store"
    return response
