"""Ban and unban pubkeys.

A ban is a `Ban` row; the forum core rejects, with reason `banned`, every message whose payment
settled while a ban on its pubkey was active (`Ban.objects.active(at=settle time)`). So a ban
never touches what was published before it: hide those separately (`author_hide_all`).

Unbanning sets `lifted_at` instead of deleting the row, so the history of bans stays readable
and payments settled during the ban keep their verdict on a rebuild.
"""

from __future__ import annotations

import datetime as dt
import re

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from forum.models import Ban
from forum.services.moderation.audit import audit_record

PUBKEY_RE = re.compile(r"^[0-9a-f]{64}$")


def normalize_pubkey(pubkey: str) -> str:
    """Nostr pubkeys are 32-byte x-only keys in lowercase hex."""
    value = (pubkey or "").strip().lower()
    if not PUBKEY_RE.match(value):
        raise ValidationError("A pubkey is 64 hex characters.")
    return value


def author_ban(
    *,
    actor: AbstractBaseUser | None,
    pubkey: str,
    reason: str = "",
    expires_at: dt.datetime | None = None,
) -> bool:
    """Ban `pubkey` from now until `expires_at` (None: until unbanned).

    Returns False if an active ban with the same expiry already exists. An active ban with a
    different expiry is changed to the new one (and audited as `author.ban`, with both expiries).
    """
    pubkey = normalize_pubkey(pubkey)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError("The expiry must be in the future.")
    with transaction.atomic():
        active = list(Ban.objects.select_for_update().active(at=now).filter(pubkey=pubkey))
        if any(ban.expires_at == expires_at for ban in active):
            return False
        details: dict = {"expires_at": expires_at.isoformat() if expires_at else None}
        if active:
            ban = active[0]
            details["previous_expires_at"] = ban.expires_at.isoformat() if ban.expires_at else None
            ban.expires_at = expires_at
            ban.reason = reason or ban.reason
            ban.save(update_fields=["expires_at", "reason"])
        else:
            Ban.objects.create(
                pubkey=pubkey,
                reason=reason,
                created_at=now,
                expires_at=expires_at,
                created_by=actor,
            )
        audit_record(
            actor=actor,
            action="author.ban",
            target_type="author",
            target_id=pubkey,
            reason=reason,
            details=details,
        )
        return True


def author_unban(*, actor: AbstractBaseUser | None, pubkey: str, reason: str = "") -> bool:
    """Lift every active ban on `pubkey`. Returns False if there was none."""
    pubkey = normalize_pubkey(pubkey)
    now = timezone.now()
    with transaction.atomic():
        lifted = Ban.objects.active(at=now).filter(pubkey=pubkey).update(lifted_at=now)
        if not lifted:
            return False
        audit_record(
            actor=actor,
            action="author.unban",
            target_type="author",
            target_id=pubkey,
            reason=reason,
            details={"bans_lifted": lifted},
        )
        return True
