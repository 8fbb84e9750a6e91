"""Relay test fixtures: a real daphne serving the app, in a thread of the test process.

The server runs in-process (not as a subprocess) so that it shares the test database on SQLite
(pytest-django's in-memory database is only visible inside this process) as well as on
PostgreSQL, and shares the in-memory channel layer when there is no Redis.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections

from forum import realtime


@dataclass
class LiveRelay:
    """A daphne serving ``config.asgi.application`` on 127.0.0.1, in a background thread."""

    port: int
    loop: asyncio.AbstractEventLoop

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/relay"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/relay"

    def broadcast(self, payload: dict[str, Any]) -> None:
        """Announce a publish on the public feed, from a thread without an event loop."""
        from channels.layers import InMemoryChannelLayer, get_channel_layer

        layer = get_channel_layer()
        if isinstance(layer, InMemoryChannelLayer):
            # In-memory queues belong to the server's event loop: hand the send to that loop.
            message = {"type": "post.published", "payload": payload}
            future = asyncio.run_coroutine_threadsafe(
                layer.group_send(realtime.PUBLIC_FEED_GROUP, message), self.loop
            )
            future.result(timeout=5)
        else:
            # With Redis, the same call the core makes.
            realtime.broadcast_now(realtime.PUBLIC_FEED_GROUP, "post.published", payload)


def _close_thread_connections() -> None:
    connections.close_all()


@pytest.fixture(scope="session")
def live_relay(django_db_setup, django_db_blocker) -> Iterator[LiveRelay]:
    import daphne.server  # first: it installs the asyncio Twisted reactor
    from channels.db import database_sync_to_async
    from django.conf import settings
    from twisted.internet import reactor

    from config.asgi import application

    # Server threads must not keep database connections between calls: PostgreSQL cannot
    # flush or drop the test database while another thread holds one open.
    db_settings = settings.DATABASES["default"]
    previous_max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0

    ready = threading.Event()
    server = daphne.server.Server(
        application,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        signal_handlers=False,
        ready_callable=ready.set,
        verbosity=0,
    )
    runner = threading.Thread(target=server.run, name="relay-daphne", daemon=True)
    runner.start()
    # ready_callable fires just before the reactor runs; the port is known once it listens.
    deadline = time.monotonic() + 15
    while not (ready.is_set() and server.listening_addresses):
        if time.monotonic() > deadline or not runner.is_alive():
            pytest.fail("daphne did not start listening")
        time.sleep(0.05)
    loop = reactor._asyncioEventloop
    try:
        yield LiveRelay(port=server.listening_addresses[0][1], loop=loop)
    finally:
        with django_db_blocker.unblock():
            asyncio.run_coroutine_threadsafe(
                database_sync_to_async(_close_thread_connections)(), loop
            ).result(timeout=10)
        reactor.callFromThread(reactor.stop)
        runner.join(timeout=10)
        db_settings["CONN_MAX_AGE"] = previous_max_age
