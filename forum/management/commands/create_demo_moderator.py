"""Create the demo moderator account (demo mode) and print its credentials."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from forum.services.moderation.demo import credentials_text, demo_moderator_ensure


class Command(BaseCommand):
    help = "Create or repair the demo moderator (moderator group) and print how to sign in."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="also outside demo mode (not for production)"
        )

    def handle(self, *args, force: bool, **options) -> None:
        if not settings.DEMO_MODE and not force:
            raise CommandError(
                "DEMO_MODE is off: create real accounts with `manage.py createsuperuser` "
                "(or pass --force)."
            )
        user, password, created = demo_moderator_ensure()
        self.stdout.write(
            ("Created. " if created else "") + credentials_text(user.username, password)
        )
