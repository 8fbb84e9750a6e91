"""Serve the forum with daphne; in the embedded default also run simnet, the listener and the sweep."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from forum import embedded


class Command(BaseCommand):
    help = (
        "Run the forum (HTTP + websockets) and, in the embedded default, its background services."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-background",
            action="store_true",
            help="web only: no simnet, listener or sweep here",
        )

    def handle(self, *args, host: str, port: int, no_background: bool, **options) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from config.asgi import application

        running = None if no_background else embedded.start()
        self.stdout.write(f"Forum at http://{host}:{port}/  (Ctrl-C to stop)")
        try:
            Server(
                application=application,
                endpoints=build_endpoint_description_strings(host=host, port=port),
                verbosity=0,
            ).run()
        finally:
            if running is not None:
                running.shutdown()
