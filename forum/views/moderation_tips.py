"""`/mod/tips/`: tip forwards for moderators — what is waiting, what failed, a retry button.

Thin views over `forum.selectors.tips` and `forum.services.tips`, behind the console's own
`moderator_required` (anonymous: login page; signed in without the role: 403).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from forum.models import TipForward
from forum.permissions import check_can_refund
from forum.selectors.tips import tip_forwards_summary
from forum.services import tips
from forum.views.moderation import moderator_required


@moderator_required
def tip_forwards(request: HttpRequest) -> HttpResponse:
    context = {"summary": tip_forwards_summary(), "share_percent": tips.share_percent()}
    return render(request, "moderation/tips.html", context)


@moderator_required
@require_POST
def tip_forward_retry(request: HttpRequest, pk: int) -> HttpResponse:
    # Sending sats is the same power as a refund.
    check_can_refund(request.user)
    forward = get_object_or_404(TipForward, pk=pk)
    outcome = tips.tip_forward_retry(
        actor=request.user, forward=forward, reason=request.POST.get("reason", "")[:500]
    )
    if outcome.state == tips.State.SENT:
        messages.success(request, "Tip forwarded.")
    else:
        messages.error(request, f"Forward not sent: {outcome.error or outcome.state}.")
    return redirect("mod:tips")
