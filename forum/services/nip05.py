"""NIP-05: is `name@domain` in an author's profile really theirs? And the forum's own names.

`nip05_verify(pubkey=...)` fetches `https://<domain>/.well-known/nostr.json?name=<name>` (http
only when `NIP05_ALLOW_HTTP`, for tests and local setups), with a timeout, a size cap and no
redirects (NIP-05: fetchers must ignore them), and records on the author whether the document
names this very pubkey. Pages show the identifier only once verified. Celery runs it after a
profile with a new identifier is published and again every `NIP05_RECHECK_SECONDS`
(`nip05_due`), so a domain that drops the name stops vouching for the key.

The forum serves its own `/.well-known/nostr.json` for names a moderator assigns
(`author_nip05_assign`): `<name>@<this forum's host>`.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from forum.ingest.kinds import identifier_split
from forum.models import Author
from forum.services.moderation.audit import audit_record
from forum.services.versions import versions_bump_all

LOCAL_NAME = re.compile(r"^[a-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Nip05Result:
    identifier: str
    verified: bool
    error: str = ""


def _timeout() -> float:
    return float(getattr(settings, "NIP05_TIMEOUT_SECONDS", 5))


def _max_bytes() -> int:
    return int(getattr(settings, "NIP05_MAX_BYTES", 65_536))


def nip05_url(identifier: str) -> str:
    """The document that must list `identifier`'s name (https unless NIP05_ALLOW_HTTP)."""
    parts = identifier_split(identifier)
    if parts is None:
        raise ValueError(f"{identifier!r} is not name@domain")
    name, domain = parts
    scheme = "http" if getattr(settings, "NIP05_ALLOW_HTTP", False) else "https"
    return f"{scheme}://{domain}/.well-known/nostr.json?name={urllib.parse.quote(name)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        raise urllib.error.HTTPError(req.full_url, code, "redirects are not followed", headers, fp)


_opener = urllib.request.build_opener(_NoRedirect)


def nip05_lookup(identifier: str, *, pubkey: str) -> Nip05Result:
    """Fetch the domain's document: does it name `pubkey` for `identifier`? No database."""
    try:
        url = nip05_url(identifier)
    except ValueError as exc:
        return Nip05Result(identifier, False, str(exc))
    name = identifier_split(identifier)[0]  # type: ignore[index]
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    limit = _max_bytes()
    try:
        with _opener.open(request, timeout=_timeout()) as response:
            body = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        return Nip05Result(identifier, False, f"the domain answered HTTP {exc.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Nip05Result(identifier, False, f"the domain could not be reached ({reason})"[:300])
    if len(body) > limit:
        return Nip05Result(identifier, False, f"the document is over {limit} bytes")
    try:
        found = json.loads(body)["names"][name]
    except (ValueError, KeyError, TypeError):
        return Nip05Result(identifier, False, f"the document does not list the name {name!r}")
    if not isinstance(found, str) or found.lower() != pubkey:
        return Nip05Result(identifier, False, "the document names another key for it")
    return Nip05Result(identifier, True)


def nip05_verify(*, pubkey: str) -> Nip05Result | None:
    """Check the author's current identifier and record the answer (None: nothing to check)."""
    author = Author.objects.filter(pubkey=pubkey).first()
    if author is None or not author.profile_nip05:
        return None
    identifier = author.profile_nip05
    result = nip05_lookup(identifier, pubkey=pubkey)
    verified = identifier if result.verified else ""
    # Only if the profile still names this identifier (a newer profile may have come meanwhile).
    changed = (
        Author.objects.filter(pubkey=pubkey, profile_nip05=identifier)
        .exclude(nip05_verified=verified, nip05_error=result.error)
        .exists()
    )
    Author.objects.filter(pubkey=pubkey, profile_nip05=identifier).update(
        nip05_verified=verified, nip05_error=result.error, nip05_checked_at=timezone.now()
    )
    if changed:
        versions_bump_all()  # the identifier shows beside the name on every page
    return result


def nip05_due(*, limit: int = 200) -> list[str]:
    """Pubkeys whose identifier was never checked or was checked too long ago."""
    every = int(getattr(settings, "NIP05_RECHECK_SECONDS", 86400))
    since = timezone.now() - timedelta(seconds=every)
    rows = (
        Author.objects.exclude(profile_nip05="")
        .filter(Q(nip05_checked_at__isnull=True) | Q(nip05_checked_at__lt=since))
        .order_by(F("nip05_checked_at").asc(nulls_first=True))
    )
    return list(rows.values_list("pubkey", flat=True)[:limit])


# --- the forum's own names ------------------------------------------------------------------


def author_nip05_assign(*, actor: AbstractBaseUser | None, pubkey: str, name: str) -> bool:
    """Give `pubkey` the name `name` under the forum's domain ("" takes it away); audited."""
    name = name.strip().lower()
    if name and not LOCAL_NAME.match(name):
        raise ValidationError({"name": "Use 1-64 of a-z, 0-9, '.', '_' and '-'."})
    with transaction.atomic():
        author, _ = Author.objects.select_for_update().get_or_create(pubkey=pubkey)
        if author.nip05_local == name:
            return False
        if name and Author.objects.filter(nip05_local=name).exclude(pk=author.pk).exists():
            raise ValidationError({"name": f"The name {name!r} is taken."})
        before = author.nip05_local
        author.nip05_local = name
        author.save(update_fields=["nip05_local"])
        audit_record(
            actor=actor,
            action="author.nip05",
            target_type="author",
            target_id=pubkey,
            details={"before": before, "after": name},
        )
    return True


def local_names(name: str | None) -> dict[str, str]:
    """`{name: pubkey}` for the forum's own nostr.json (one name, or all when None)."""
    rows = Author.objects.exclude(nip05_local="")
    if name is not None:
        rows = rows.filter(nip05_local=name.strip().lower())
    return dict(rows.values_list("nip05_local", "pubkey")[:1000])
