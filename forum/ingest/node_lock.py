"""One live process per node, known at once: a PostgreSQL session-level advisory lock.

The listener's lease (a row with an expiry, see `listener`) is the write fence, but a crashed
holder's lease only lapses after LISTENER_LEASE_SECONDS, and nothing is recorded meanwhile. A
session-level advisory lock held on a dedicated connection is released by the server the moment
that connection goes: a killed process's socket is closed by its kernel at once, a vanished
host is noticed by TCP keepalives (set short here). A standby waits for the lock inside the
server, so it wakes as soon as the holder is gone, and may then take the lease over without
waiting for it to lapse: whoever held it has no session left.

On SQLite (the embedded default, one process) there is no such lock: `acquire` always succeeds
and `exclusive` is False, so the lease alone decides, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

log = logging.getLogger(__name__)

# Server-side keepalives of the lock's connection: a holder whose host vanished without closing
# its socket releases the lock after about idle + interval * count seconds.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 5, 2, 3


def lock_key(name: str, node_pubkey: str) -> int:
    """A stable signed 64-bit advisory lock key for (`name`, node)."""
    digest = hashlib.sha256(f"lnforum:{name}:{node_pubkey}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class NodeLock:
    """An advisory lock named after a node, held by this process while it works for the node."""

    def __init__(self, *, name: str, node_pubkey: str, alias: str = DEFAULT_DB_ALIAS) -> None:
        self.name = name
        self.key = lock_key(name, node_pubkey)
        self._alias = alias
        self._conn = None

    @property
    def exclusive(self) -> bool:
        """Whether holding this lock proves that no other live process holds it."""
        return connections[self._alias].vendor == "postgresql"

    def acquire(self, *, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the lock; True once held (at once on SQLite).

        Raises OperationalError when the database cannot be reached (the caller backs off).
        """
        if not self.exclusive:
            return True
        if self._conn is not None:
            return True  # held already (re-entrant for the caller, not counted twice)
        import psycopg

        try:
            conn = self._connect()
        except psycopg.Error as exc:
            raise OperationalError(f"advisory lock connection failed: {exc}") from exc
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, false)",
                    [f"{max(1, timeout * 1000):.0f}"],
                )
                cursor.execute("SELECT pg_advisory_lock(%s)", [self.key])
        except psycopg.errors.LockNotAvailable:
            conn.close()
            return False
        except psycopg.Error as exc:
            conn.close()
            raise OperationalError(f"advisory lock failed: {exc}") from exc
        self._conn = conn
        log.info("%s lock %s taken", self.name, self.key)
        return True

    def held(self) -> bool:
        """Still ours: the lock's connection answers (the server drops the lock only with it)."""
        if not self.exclusive:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
            return True
        except Exception:
            self.release()
            return False

    def release(self) -> None:
        """Give the lock up (closing the session releases it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            # Already broken or not: either way the server drops the lock with the session.
            with contextlib.suppress(Exception):
                conn.close()

    def _connect(self):
        import psycopg

        params = connections[self._alias].get_connection_params()
        params.pop("cursor_factory", None)  # Django's cursor classes are for its own wrapper
        params.pop("context", None)
        conn = psycopg.connect(
            **params,
            autocommit=True,
            connect_timeout=5,
            application_name=f"lnforum {self.name} lock",
        )
        for setting, value in (
            ("tcp_keepalives_idle", KEEPALIVE_IDLE),
            ("tcp_keepalives_interval", KEEPALIVE_INTERVAL),
            ("tcp_keepalives_count", KEEPALIVE_COUNT),
        ):
            conn.execute("SELECT set_config(%s, %s, false)", [setting, str(value)])
        return conn
