"""The demo moderator: in demo mode `make run` creates it and prints how to sign in.

The password is random on first creation and kept in the data dir (mode 0600), so it stays
the same across restarts and is never in the repository. Outside demo mode nothing happens:
real deployments create accounts with `manage.py createsuperuser` or the moderator group.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from forum.permissions import MODERATOR_GROUP

DEMO_USERNAME = "moderator"
PASSWORD_FILE = "demo-moderator-password"


def _password_path() -> Path:
    return Path(settings.DATA_DIR) / PASSWORD_FILE


def _stored_password(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password)
    return password


def demo_moderator_ensure(*, username: str = DEMO_USERNAME) -> tuple[User, str, bool]:
    """Create (or repair) the demo moderator; returns (user, password, created)."""
    password = _stored_password(_password_path())
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=MODERATOR_GROUP)
        user, created = User.objects.get_or_create(username=username)
        if created or not user.check_password(password) or not user.is_active:
            user.set_password(password)
            user.is_active = True
            user.save()
        user.groups.add(group)
    return user, password, created


def credentials_text(username: str, password: str, base_url: str = "") -> str:
    return (
        f"Moderation console: {base_url}/mod/  user {username!r}  password {password!r}"
        "  (demo mode only)"
    )


def startup_hook(embedded: object) -> None:
    """STARTUP_HOOKS entry of the embedded process (forum.embedded)."""
    if not settings.DEMO_MODE:
        return
    user, password, _created = demo_moderator_ensure()
    print(credentials_text(user.get_username(), password), flush=True)
