"""`manage.py rebuild_from_node`: rebuild the ledger and the forum from the node's invoices."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from forum.services.rebuild import RebuildRefused, forum_rebuild_from_node


class Command(BaseCommand):
    help = (
        "Rebuild the incoming ledger and every derived table (events, threads, posts, authors, "
        "rejections) from the forum node's invoice history, keeping moderation decisions. "
        "Stop the listener first."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, yes: bool, **options) -> None:
        if not yes and options.get("interactive", True):
            answer = input(
                "This replaces the ledger and all posts with the node's history. Go on? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("aborted")
        try:
            report = forum_rebuild_from_node()
        except RebuildRefused as exc:
            raise CommandError(str(exc)) from exc
        for key, value in report.as_dict().items():
            self.stdout.write(f"{key}: {value}")
