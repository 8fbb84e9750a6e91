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
from contextlib import contextmanager
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
        self.group_send(realtime.PUBLIC_FEED_GROUP, "post.published", payload)

    def group_send(self, group: str, message_type: str, payload: dict[str, Any]) -> None:
        from channels.layers import InMemoryChannelLayer, get_channel_layer

        layer = get_channel_layer()
        if isinstance(layer, InMemoryChannelLayer):
            # In-memory queues belong to the server's event loop: hand the send to that loop.
            message = {"type": message_type, "payload": payload}
            future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), self.loop)
            future.result(timeout=5)
        else:
            # With Redis, the same call the core makes.
            realtime.broadcast_now(group, message_type, payload)


@contextmanager
def _no_lingering_db_connections(django_db_blocker: Any) -> Iterator[None]:
    """Consumers read through ``database_sync_to_async``, i.e. on asgiref's single worker
    thread, and PostgreSQL cannot flush or drop the test database while that thread keeps a
    connection open. So connections there close after every use (CONN_MAX_AGE 0), and
    whatever is still open is closed at the end. Nesting is harmless.
    """
    from asgiref.sync import SyncToAsync
    from django.conf import settings

    db_settings = settings.DATABASES["default"]
    previous_max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)
        db_settings["CONN_MAX_AGE"] = previous_max_age


@pytest.fixture(scope="session", autouse=True)
def _relay_tests_close_db_connections(django_db_blocker) -> Iterator[None]:
    with _no_lingering_db_connections(django_db_blocker):
        yield


_server: LiveRelay | None = None


def _start_daphne() -> LiveRelay:
    """Start daphne once per test process.

    Twisted's reactor is process-wide and cannot be restarted, so one server serves the whole
    session, even if the fixture is instantiated again (e.g. imported into another folder's
    module); it stops when the session's fixtures are torn down.
    """
    global _server
    if _server is not None:
        return _server
    import daphne.server  # first: it installs the asyncio Twisted reactor
    from twisted.internet import reactor

    from config.asgi import application

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
    _server = LiveRelay(port=server.listening_addresses[0][1], loop=reactor._asyncioEventloop)
    return _server


def _stop_daphne() -> None:
    """At the end of the session: close the sockets and stop the reactor (once)."""
    from twisted.internet import reactor

    if reactor.running:
        reactor.callFromThread(reactor.stop)


@pytest.fixture(scope="session")
def live_relay(django_db_setup, django_db_blocker) -> Iterator[LiveRelay]:
    """A real daphne serving ``config.asgi.application`` (HTTP and websockets)."""
    # Also here, not only in this folder's autouse fixture: other folders import this fixture.
    with _no_lingering_db_connections(django_db_blocker):
        yield _start_daphne()
    _stop_daphne()


@pytest.fixture
def core_feed(live_relay: LiveRelay, monkeypatch: pytest.MonkeyPatch) -> LiveRelay:
    """Let the core's own broadcasts (``realtime.broadcast_now``) reach the threaded server.

    With Redis nothing changes. With the in-memory layer, a send from the test's thread would
    touch queues owned by the server's event loop, so it is handed to that loop instead.
    """
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        monkeypatch.setattr(realtime, "broadcast_now", live_relay.group_send)
    return live_relay
