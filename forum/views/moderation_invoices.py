"""`/mod/invoices/`: the invoices the forum issued for posts (and tips) paid by BOLT11 —
waiting, paid, refused while held (not charged) or expired unpaid. Read-only."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from forum.models import InvoiceIntent
from forum.views.moderation import moderator_required

PAGE_SIZE = 50


@moderator_required
def invoices(request: HttpRequest) -> HttpResponse:
    rows = InvoiceIntent.objects.order_by("-created_at", "-id")
    state = request.GET.get("state", "")
    if state in InvoiceIntent.State.values:
        rows = rows.filter(state=state)
    counts = dict(InvoiceIntent.objects.values_list("state").annotate(n=Count("id")))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        # With hold mode off nobody closes a plain invoice at expiry: shown expired all the same.
        "now": timezone.now(),
        "state": state,
        "states": [
            (value, label, counts.get(value, 0)) for value, label in InvoiceIntent.State.choices
        ],
    }
    return render(request, "moderation/invoices.html", context)
