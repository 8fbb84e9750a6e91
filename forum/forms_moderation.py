"""Forms of the moderation console. They validate input; the services do the work."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from forum import nostr
from forum.models import Board, Rejection
from forum.permissions import is_moderator
from forum.services.moderation.boards import EDITABLE_FIELDS

MSAT_PER_SAT = 1000


def pubkey_from_input(value: str) -> str:
    """Hex pubkey (or a hex prefix) from what a moderator pastes: hex or npub."""
    value = (value or "").strip()
    if value.lower().startswith("npub1"):
        try:
            return nostr.npub_decode(value.lower())
        except Exception as exc:
            raise ValidationError("That npub does not decode.") from exc
    value = value.lower()
    if value and not all(c in "0123456789abcdef" for c in value):
        raise ValidationError("Give a hex pubkey (or its start) or an npub.")
    return value


class ConsoleLoginForm(AuthenticationForm):
    """Django's login form, refusing accounts that are not moderators."""

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if not is_moderator(user):
            raise ValidationError(
                "This account is not a moderator. Ask an admin to add it to the moderator group.",
                code="not_moderator",
            )


class ReasonForm(forms.Form):
    """The reason a moderator gives for an action; it goes into the audit log."""

    reason = forms.CharField(max_length=500, required=False)
    next = forms.CharField(max_length=500, required=False)


class QueueFilterForm(forms.Form):
    board = forms.ChoiceField(required=False)
    author = forms.CharField(required=False, max_length=80, label="Author (hex or npub)")
    reason = forms.ChoiceField(
        required=False, choices=[("", "any reason"), *Rejection.Reason.choices]
    )
    q = forms.CharField(required=False, max_length=200, label="Text")

    def __init__(self, *args, boards: list[Board], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["board"].choices = [("", "all boards")] + [(b.slug, b.slug) for b in boards]

    def clean_author(self) -> str:
        return pubkey_from_input(self.cleaned_data["author"])


BAN_DURATIONS = {
    "": None,
    "1h": dt.timedelta(hours=1),
    "1d": dt.timedelta(days=1),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}


class BanForm(ReasonForm):
    duration = forms.ChoiceField(
        required=False,
        choices=[
            ("", "until unbanned"),
            ("1h", "1 hour"),
            ("1d", "1 day"),
            ("7d", "7 days"),
            ("30d", "30 days"),
        ],
    )

    def expires_at(self) -> dt.datetime | None:
        delta = BAN_DURATIONS[self.cleaned_data.get("duration") or ""]
        return timezone.now() + delta if delta else None


class SatsField(forms.DecimalField):
    """A price typed in sats (down to the msat), stored as integer msat."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_digits", 15)
        kwargs.setdefault("decimal_places", 3)
        kwargs.setdefault("min_value", Decimal("0.001"))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, int):
            return Decimal(value) / MSAT_PER_SAT
        return value

    def clean(self, value) -> int:
        sats = super().clean(value)
        return int(sats * MSAT_PER_SAT)


class BoardForm(forms.Form):
    """Board settings. Prices are shown and typed in sats; the model keeps msat."""

    slug = forms.SlugField(max_length=64)
    title = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    thread_price_msat = SatsField(label="Thread price (sats)")
    reply_price_msat = SatsField(label="Reply price (sats)")
    escalation_window_seconds = forms.IntegerField(min_value=0, label="Escalation window (seconds)")
    escalation_factor = forms.IntegerField(min_value=1, label="Escalation factor")
    max_content_length = forms.IntegerField(min_value=1, label="Max content length (characters)")
    position = forms.IntegerField(initial=0)
    is_listed = forms.BooleanField(required=False, initial=True, label="Listed on the home page")
    allow_deletions = forms.BooleanField(
        required=False, initial=True, label="Authors may delete their posts (NIP-09 kind 5)"
    )
    reason = forms.CharField(max_length=500, required=False, label="Reason (for the audit log)")

    SETTINGS = EDITABLE_FIELDS

    def __init__(self, *args, board: Board | None = None, **kwargs) -> None:
        if board is not None and "initial" not in kwargs:
            kwargs["initial"] = {"slug": board.slug} | {
                name: getattr(board, name) for name in self.SETTINGS
            }
        elif board is None and "initial" not in kwargs:
            defaults = Board()
            kwargs["initial"] = {name: getattr(defaults, name) for name in self.SETTINGS}
        super().__init__(*args, **kwargs)
        self.board = board
        if board is not None:
            # The slug is in every URL and event tag of the board: not editable.
            self.fields["slug"].disabled = True

    def settings(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.SETTINGS}


class RevenueForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    board = forms.ChoiceField(required=False)

    MAX_DAYS = 366

    def __init__(self, *args, boards: list[Board], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["board"].choices = [("", "all boards")] + [(b.slug, b.slug) for b in boards]
        if not self.is_bound:
            # Show the default range in the date inputs instead of empty fields.
            start, end = self.range()
            self.initial.setdefault("start", start)
            self.initial.setdefault("end", end)

    def range(self) -> tuple[dt.date, dt.date]:
        """The chosen days, defaulting to the last 30 (UTC), at most a year."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        end = data.get("end") or timezone.now().astimezone(dt.UTC).date()
        start = data.get("start") or end - dt.timedelta(days=29)
        if start > end:
            start, end = end, start
        start = max(start, end - dt.timedelta(days=self.MAX_DAYS - 1))
        return start, end
