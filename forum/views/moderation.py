"""The moderation console under /mod/: thin views over `forum.selectors.moderation` (reads)
and `forum.services.moderation` (writes).

Every view except the login page is wrapped in `moderator_required`: anonymous visitors are
sent to the login page, signed-in non-moderators get 403. State changes are POST only (with
Django's CSRF check) and redirect back, so a reload never repeats them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from forum.forms_moderation import (
    BanForm,
    BoardForm,
    ConsoleLoginForm,
    QueueFilterForm,
    ReasonForm,
    RevenueForm,
)
from forum.models import Board, Post, Rejection, Thread
from forum.permissions import (
    check_can_ban,
    check_can_edit_boards,
    check_can_moderate_content,
    check_can_refund,
    check_moderator,
)
from forum.selectors import moderation as selectors
from forum.services import moderation as services
from forum.services.moderation import throttle
from forum.views.moderation_chart import revenue_svg

PAGE_SIZE = 50
PUBKEY_RE = re.compile(r"^[0-9a-f]{64}$")


def moderator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous: to the login page. Signed in without the role: 403 (PermissionDenied)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        check_moderator(request.user)
        response = view(request, *args, **kwargs)
        # Console pages show private data: no shared or browser cache may keep them.
        add_never_cache_headers(response)
        return response

    return wrapper


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    """Back to where the moderator pressed the button, if that is a page of this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(default)


def _reason(request: HttpRequest) -> str:
    form = ReasonForm(request.POST)
    return form.cleaned_data["reason"] if form.is_valid() else ""


def _page(request: HttpRequest, object_list):
    return Paginator(object_list, PAGE_SIZE).get_page(request.GET.get("page"))


def _report(request: HttpRequest, changed: bool, done: str, unchanged: str) -> None:
    if changed:
        messages.success(request, done)
    else:
        messages.info(request, unchanged)


# --- sign in / out ---------------------------------------------------------------------------


def _client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


class LoginView(auth_views.LoginView):
    """Django's login, for moderators, with failures rate limited per IP and username."""

    template_name = "moderation/login.html"
    form_class = ConsoleLoginForm
    redirect_authenticated_user = False

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        ip, username = _client_ip(request), request.POST.get("username", "")
        if throttle.login_throttled(ip=ip, username=username):
            form = self.get_form()
            form.errors.clear()
            response = self.render_to_response(
                self.get_context_data(
                    form=form,
                    throttled=True,
                    retry_minutes=throttle.WINDOW_SECONDS // 60,
                )
            )
            response.status_code = 429
            return response
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            throttle.login_succeeded(ip=ip, username=username)
        else:
            throttle.login_failed(ip=ip, username=username)
        return response

    def get_default_redirect_url(self) -> str:
        return reverse("mod:home")


@moderator_required
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    return redirect("mod:login")


# --- home: the queue ---------------------------------------------------------------------------


def _filters(request: HttpRequest) -> tuple[QueueFilterForm, selectors.QueueFilters]:
    form = QueueFilterForm(request.GET or None, boards=selectors.boards_for_filter())
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = selectors.QueueFilters(
            board=data["board"], pubkey=data["author"], reason=data["reason"], q=data["q"]
        )
    else:
        filters = selectors.QueueFilters()
    return form, filters


@moderator_required
def home(request: HttpRequest) -> HttpResponse:
    form, filters = _filters(request)
    return render(
        request,
        "moderation/home.html",
        {
            "form": form,
            "filters": filters,
            "counts": selectors.console_counts(),
            "today": selectors.revenue_today(),
            "threads": selectors.queue_threads(filters),
            "posts": selectors.queue_posts(filters),
            "rejections": selectors.rejection_rows(
                selectors.rejections_list(filters)[:15], blocker=services.refund_blocker
            ),
        },
    )


@moderator_required
def thread_detail(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_object_or_404(Thread.objects.select_related("board", "author", "event"), pk=pk)
    posts = thread.posts.select_related("author", "event").order_by("number")
    return render(
        request,
        "moderation/thread.html",
        {"thread": thread, "page": _page(request, posts)},
    )


# --- hide, lock, pin -------------------------------------------------------------------------

THREAD_VERBS = {
    "hide": (services.thread_hide, "Thread hidden.", "The thread was already hidden."),
    "unhide": (services.thread_unhide, "Thread visible again.", "The thread was not hidden."),
    "lock": (services.thread_lock, "Thread locked.", "The thread was already locked."),
    "unlock": (services.thread_unlock, "Thread unlocked.", "The thread was not locked."),
    "pin": (services.thread_pin, "Thread pinned.", "The thread was already pinned."),
    "unpin": (services.thread_unpin, "Thread unpinned.", "The thread was not pinned."),
}
POST_VERBS = {
    "hide": (services.post_hide, "Post hidden.", "The post was already hidden."),
    "unhide": (services.post_unhide, "Post visible again.", "The post was not hidden."),
}


@moderator_required
@require_POST
def thread_action(request: HttpRequest, pk: int, verb: str) -> HttpResponse:
    check_can_moderate_content(request.user)
    service, done, unchanged = THREAD_VERBS[verb]
    thread = get_object_or_404(Thread, pk=pk)
    changed = service(actor=request.user, thread=thread, reason=_reason(request))
    _report(request, changed, done, unchanged)
    return _back(request, reverse("mod:thread", args=[pk]))


@moderator_required
@require_POST
def post_action(request: HttpRequest, pk: int, verb: str) -> HttpResponse:
    check_can_moderate_content(request.user)
    service, done, unchanged = POST_VERBS[verb]
    post = get_object_or_404(Post, pk=pk)
    changed = service(actor=request.user, post=post, reason=_reason(request))
    _report(request, changed, done, unchanged)
    return _back(request, reverse("mod:thread", args=[post.thread_id]))


# --- authors and bans --------------------------------------------------------------------------


def _pubkey_or_404(pubkey: str) -> str:
    if not PUBKEY_RE.match(pubkey):
        raise Http404("not a pubkey")
    return pubkey


@moderator_required
def author(request: HttpRequest, pubkey: str) -> HttpResponse:
    overview = selectors.author_overview(_pubkey_or_404(pubkey))
    # No refund buttons here (the rejections page has them), so no blockers to work out.
    rows = selectors.rejection_rows(overview.rejections, blocker=lambda rejection: "")
    return render(
        request,
        "moderation/author.html",
        {"o": overview, "rejection_rows": rows, "ban_form": BanForm(), "reasons": Rejection.Reason},
    )


@moderator_required
@require_POST
def author_ban(request: HttpRequest, pubkey: str) -> HttpResponse:
    check_can_ban(request.user)
    pubkey = _pubkey_or_404(pubkey)
    form = BanForm(request.POST)
    if form.is_valid():
        changed = services.author_ban(
            actor=request.user,
            pubkey=pubkey,
            reason=form.cleaned_data["reason"],
            expires_at=form.expires_at(),
        )
        _report(request, changed, "Banned.", "Already banned with that expiry.")
    else:
        messages.error(request, "Check the ban form.")
    return _back(request, reverse("mod:author", args=[pubkey]))


@moderator_required
@require_POST
def author_unban(request: HttpRequest, pubkey: str) -> HttpResponse:
    check_can_ban(request.user)
    pubkey = _pubkey_or_404(pubkey)
    changed = services.author_unban(actor=request.user, pubkey=pubkey, reason=_reason(request))
    _report(request, changed, "Ban lifted.", "There was no active ban.")
    return _back(request, reverse("mod:author", args=[pubkey]))


@moderator_required
@require_POST
def author_hide_all(request: HttpRequest, pubkey: str) -> HttpResponse:
    check_can_moderate_content(request.user)
    pubkey = _pubkey_or_404(pubkey)
    count = services.author_hide_all(actor=request.user, pubkey=pubkey, reason=_reason(request))
    _report(request, bool(count), f"Hid {count} posts.", "Nothing visible left to hide.")
    return _back(request, reverse("mod:author", args=[pubkey]))


@moderator_required
def bans(request: HttpRequest) -> HttpResponse:
    return render(request, "moderation/bans.html", {"bans": selectors.active_bans()})


# --- boards ------------------------------------------------------------------------------------


@moderator_required
def boards(request: HttpRequest) -> HttpResponse:
    return render(request, "moderation/boards.html", {"boards": selectors.boards_list()})


@moderator_required
def board_create(request: HttpRequest) -> HttpResponse:
    check_can_edit_boards(request.user)
    form = BoardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            board = services.board_create(
                actor=request.user,
                slug=form.cleaned_data["slug"],
                reason=form.cleaned_data["reason"],
                **form.settings(),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Board {board.slug} created.")
            return redirect("mod:boards")
    return render(request, "moderation/board_form.html", {"form": form, "board": None})


@moderator_required
def board_edit(request: HttpRequest, slug: str) -> HttpResponse:
    check_can_edit_boards(request.user)
    board = get_object_or_404(Board, slug=slug)
    form = BoardForm(request.POST or None, board=board)
    if request.method == "POST" and form.is_valid():
        try:
            changed = services.board_update(
                actor=request.user,
                board=board,
                reason=form.cleaned_data["reason"],
                **form.settings(),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            _report(
                request,
                changed,
                f"Board {board.slug} saved; new payments are priced with it from now on.",
                "Nothing changed.",
            )
            return redirect("mod:boards")
    return render(request, "moderation/board_form.html", {"form": form, "board": board})


# --- rejected payments -----------------------------------------------------------------------


@moderator_required
def rejections(request: HttpRequest) -> HttpResponse:
    form, filters = _filters(request)
    refundable_only = request.GET.get("refundable") == "1"
    charged = request.GET.get("charged", "")
    listing = selectors.rejections_list(filters, refundable_only=refundable_only, charged=charged)
    page = _page(request, listing)
    rows = selectors.rejection_rows(page.object_list, blocker=services.refund_blocker)
    return render(
        request,
        "moderation/rejections.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "refundable_only": refundable_only,
            "charged": charged,
            "charged_choices": selectors.Charged.choices,
        },
    )


@moderator_required
@require_POST
def rejection_refund(request: HttpRequest, pk: int) -> HttpResponse:
    check_can_refund(request.user)
    rejection = get_object_or_404(Rejection, pk=pk)
    try:
        changed = services.rejection_refund(
            actor=request.user, rejection=rejection, reason=_reason(request)
        )
    except services.RefundError as exc:
        messages.error(request, f"Not refunded: {exc}")
    else:
        _report(request, changed, "Refunded.", "It was already refunded.")
    return _back(request, reverse("mod:rejections"))


# --- revenue -----------------------------------------------------------------------------------


def _revenue(request: HttpRequest) -> tuple[RevenueForm, selectors.Revenue]:
    form = RevenueForm(request.GET or None, boards=selectors.boards_list())
    start, end = form.range()
    board = form.cleaned_data.get("board", "") if form.is_bound and form.is_valid() else ""
    return form, selectors.revenue(start=start, end=end, board=board)


@moderator_required
def revenue(request: HttpRequest) -> HttpResponse:
    form, result = _revenue(request)
    return render(
        request,
        "moderation/revenue.html",
        {
            "form": form,
            "revenue": result,
            "days_newest_first": result.days[::-1],
            "chart": revenue_svg(result.days),
            "query": request.GET.urlencode(),
        },
    )


@moderator_required
def revenue_csv(request: HttpRequest) -> HttpResponse:
    _form, result = _revenue(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="revenue-{result.start}-{result.end}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(
        [
            "group",
            "key",
            "received_msat",
            "refunded_msat",
            "forwarded_msat",
            "fees_msat",
            "net_msat",
        ]
    )
    rows = [("day", row) for row in result.days] + [("board", row) for row in result.boards]
    rows.append(("total", result.total))
    for group, row in rows:
        key = str(row.key) if group != "board" else (row.key or "(no board)")
        if key[:1] in ("=", "+", "-", "@"):
            # Spreadsheets would run it as a formula (CSV injection); a slug may start with "-".
            key = "'" + key
        writer.writerow(
            [
                group,
                key,
                row.received_msat,
                row.refunded_msat,
                row.forwarded_msat,
                row.fees_msat,
                row.net_msat,
            ]
        )
    return response


# --- audit log ---------------------------------------------------------------------------------


@moderator_required
def audit(request: HttpRequest) -> HttpResponse:
    action = request.GET.get("action", "")[:40]
    actor = request.GET.get("actor", "")[:150]
    target = request.GET.get("target", "")[:100]
    page = _page(request, selectors.audit_log(action=action, actor=actor, target=target))
    return render(
        request,
        "moderation/audit.html",
        {
            "page": page,
            "actions": selectors.audit_actions(),
            "action": action,
            "actor": actor,
            "target": target,
        },
    )
