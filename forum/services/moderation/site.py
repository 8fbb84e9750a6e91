"""The console's board-independent prices: profiles (kind 0), deletions (5) and edits (1010).

One `SiteSettings` row. Every change is audited (`site.update` with the values before and
after), so the audit log is the price history the verdict reads at a payment's settle time
(`forum.ingest.lookups.site_settings_at`), as it does for boards.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from forum.models import SiteSettings
from forum.services.moderation.audit import audit_record


def site_settings_update(
    *, actor: AbstractBaseUser | None, reason: str = "", **values: Any
) -> bool:
    """Change some of `SiteSettings.EDITABLE_FIELDS`. False if nothing differs."""
    unknown = set(values) - set(SiteSettings.EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    for name, value in values.items():
        if value < 1:
            # A keysend carries at least 1 msat; a free kind would be an open spam door.
            raise ValidationError({name: "A price must be at least 1 msat."})
    with transaction.atomic():
        SiteSettings.objects.get_or_create(pk=1)
        site = SiteSettings.objects.select_for_update().get(pk=1)
        before = {n: getattr(site, n) for n in values if getattr(site, n) != values[n]}
        if not before:
            return False
        after = {n: values[n] for n in before}
        for name, value in after.items():
            setattr(site, name, value)
        site.save(update_fields=list(after))
        audit_record(
            actor=actor,
            action="site.update",
            target_type="site",
            target_id="prices",
            reason=reason,
            details={"before": before, "after": after},
        )
    return True
