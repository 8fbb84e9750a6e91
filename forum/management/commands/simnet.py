"""`manage.py simnet`: serve the simulated Lightning network on its own, for the split process
layout (web, listener, workers and simnet in separate processes), and publish `nodes.json`
into SIMNET_DATA_DIR so the listener and the web find the nodes."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from forum.ingest import hold
from forum.services import node


class Command(BaseCommand):
    help = "Serve simnet (lnd-compatible gRPC) from SIMNET_DATA_DIR and write its nodes.json."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--base-port", type=int, default=settings.SIMNET_BASE_PORT)

    def handle(self, *args, host: str, base_port: int, **options) -> None:
        from lightning.simnet import SimNet

        settings.SIMNET_DATA_DIR.mkdir(parents=True, exist_ok=True)
        net = SimNet.start(settings.SIMNET_DATA_DIR, host=host, base_port=base_port)
        hold.simnet_apply(net)  # hold mode: the forum node holds keysends for review
        node.write_simnet_nodes(net, settings.SIMNET_DATA_DIR)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        for sim_node in net.nodes.values():
            self.stdout.write(f"{sim_node.name} {sim_node.pubkey} {sim_node.grpc_address}")
        self.stdout.write(f"simnet: serving from {settings.SIMNET_DATA_DIR} (Ctrl-C to stop)")
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            net.stop()
