"""Console pages of the side kinds: the site prices of profiles, deletions and edits; what
authors deleted (NIP-09); the names the forum's own NIP-05 document gives keys.

Thin views behind the console's `moderator_required`; the services do the work and audit it.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from forum.forms_moderation import SatsField
from forum.models import SiteSettings
from forum.permissions import check_can_edit_boards, check_can_moderate_content
from forum.selectors.moderation_kinds import deletions_recent
from forum.services.moderation.site import site_settings_update
from forum.services.nip05 import author_nip05_assign
from forum.views.moderation import moderator_required


class SitePricesForm(forms.Form):
    profile_price_msat = SatsField(label="Profile, kind 0 (sats)")
    deletion_price_msat = SatsField(label="Deletion, kind 5 (sats)")
    edit_price_msat = SatsField(label="Edit, kind 1010 (sats)")
    reason = forms.CharField(max_length=500, required=False, label="Reason (for the audit log)")


class Nip05NameForm(forms.Form):
    name = forms.CharField(max_length=64, required=False, label="Name under this forum's domain")


@moderator_required
def site_prices(request: HttpRequest) -> HttpResponse:
    site = SiteSettings.current()
    if request.method == "POST":
        check_can_edit_boards(request.user)
        form = SitePricesForm(request.POST)
        if form.is_valid():
            values = {name: form.cleaned_data[name] for name in SiteSettings.EDITABLE_FIELDS}
            try:
                changed = site_settings_update(
                    actor=request.user, reason=form.cleaned_data["reason"], **values
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Prices saved." if changed else "Nothing changed.")
                return redirect("mod:site-prices")
    else:
        form = SitePricesForm(initial={n: getattr(site, n) for n in SiteSettings.EDITABLE_FIELDS})
    return render(request, "moderation/site_prices.html", {"form": form})


@moderator_required
def deletions(request: HttpRequest) -> HttpResponse:
    """Threads and replies their authors deleted (kind 5), newest first, with what they said."""
    return render(request, "moderation/deletions.html", {"rows": deletions_recent()})


@moderator_required
@require_POST
def author_nip05(request: HttpRequest, pubkey: str) -> HttpResponse:
    check_can_moderate_content(request.user)
    form = Nip05NameForm(request.POST)
    back = reverse("mod:author", args=[pubkey])
    if not form.is_valid():
        messages.error(request, "Check the name.")
        return redirect(back)
    try:
        changed = author_nip05_assign(
            actor=request.user, pubkey=pubkey.lower(), name=form.cleaned_data["name"]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    messages.success(request, "Name saved." if changed else "Nothing changed.")
    return redirect(back)
