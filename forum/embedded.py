"""The embedded default: one process that runs simnet, the listener and the periodic sweep
next to the web server, with Celery tasks eager. Used by `manage.py runforum` (make run).

Each background service is a daemon thread with a stop event, so Ctrl-C ends everything.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    simnet: object | None = None

    def spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        def run() -> None:
            try:
                target(self.stop)
            except Exception:
                log.exception("embedded service %s crashed", name)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def shutdown(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        if self.simnet is not None:
            self.simnet.stop()


def start_simnet() -> object:
    """Start the simulated Lightning network in this process and publish its node endpoints."""
    from forum.ingest import hold
    from forum.services import node
    from lightning.simnet import SimNet

    settings.SIMNET_DATA_DIR.mkdir(parents=True, exist_ok=True)
    simnet = SimNet.start(settings.SIMNET_DATA_DIR, base_port=settings.SIMNET_BASE_PORT)
    hold.simnet_apply(simnet)  # hold mode: the forum node holds keysends for review
    node.write_simnet_nodes(simnet, settings.SIMNET_DATA_DIR)
    node.reset_clients()
    for name, sim_node in simnet.nodes.items():
        log.info("simnet node %s %s at %s", name, sim_node.pubkey, sim_node.grpc_address)
    return simnet


# Background services of the embedded process, in start order: "module:function", each called
# with the running Embedded (it may spawn threads with `embedded.spawn`). Each owner adds its line.
STARTUP_HOOKS: list[str] = [
    "forum.tasks:listener_embedded_start",
    "forum.tasks:sweep_embedded_start",
    # Room expiry and tip-forward retries (Celery beat's job when there is one).
    "forum.tasks:upkeep_embedded_start",
    # After the listener: the demo seed's posts are paid by keysend and published by it.
    "forum.services.demo:startup_hook",
    # Demo mode only: the console's demo account, printed with the forum's address.
    "forum.services.moderation.demo:startup_hook",
]


def start() -> Embedded:
    embedded = Embedded()
    if settings.SIMNET_ENABLED:
        embedded.simnet = start_simnet()
    for dotted in STARTUP_HOOKS:
        module_name, func_name = dotted.split(":")
        hook: Callable[[Embedded], None] = getattr(importlib.import_module(module_name), func_name)
        hook(embedded)
    return embedded
