"""`manage.py listen`: stream the forum node's settled invoices into the ledger (one per node)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from forum.tasks import listener_run


class Command(BaseCommand):
    help = "Record the forum node's settled invoices in the ledger and queue their reconciliation."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--holder", default=None, help="lease holder name (default host:pid)")
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=None,
            help="how long the lease outlives a silent listener (LISTENER_LEASE_SECONDS)",
        )

    def handle(self, *args, holder: str | None, lease_seconds: float | None, **options) -> None:
        stop = threading.Event()

        def on_signal(signum, frame) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.stdout.write("listening for settled invoices (Ctrl-C to stop)")
        listener_run(stop=stop, holder=holder, lease_seconds=lease_seconds)
