"""The listener: the forum node's settled invoices, streamed into the ledger exactly once,
written in batches (group commit).

One listener per node, enforced by a lease on the node's `ListenerCursor` row (a conditional
UPDATE, so it works the same on SQLite and PostgreSQL). The holder renews it from a heartbeat
thread and with every ledger write; each write is fenced by the lease, so a listener that lost
it (paused, partitioned) cannot write after its successor started.

Group commit: a reader thread turns the node's stream into a queue; the writer takes whatever
has arrived (up to `LISTENER_BATCH_SIZE`) and records it with the cursor in one transaction,
then hands the `Recorded` outcome to `on_recorded` (the caller's: send "paid", queue one
reconcile batch). A busy node therefore costs one transaction per batch, not per invoice, and
an idle one still writes each payment as soon as it arrives.

On PostgreSQL a listener first takes the node's advisory lock (`node_lock`), which the server
releases the moment a dead listener's connection goes. A standby waits on that lock and, once
it holds it, takes the lease over at once instead of waiting for it to lapse: a crashed
listener is replaced in about a second, not LISTENER_LEASE_SECONDS. The hold reviewer runs
inside the listener's session, so it moves with it.

lnd replay semantics (see LND.md, pitfalls): SubscribeInvoices replays settles with an index
strictly above the one given, but 0 means "no backlog". So a fresh cursor first catches up
with ListInvoices (in settle order), then subscribes from the highest settle index recorded.
A crash between two batches resumes after the last one written; the payment hash is unique,
so a replayed invoice is a no-op.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from forum.ingest import hold, ledger
from forum.ingest.node_lock import NodeLock
from forum.ingest.outcome import Recorded
from forum.models import ListenerCursor
from lightning.types import Invoice, LightningAuthError, LightningError

log = logging.getLogger(__name__)

OnRecorded = Callable[[Recorded], None]

# How long one wait for the node's advisory lock lasts before `stop` is checked again.
LOCK_WAIT_SECONDS = 1.0


def batch_limit() -> int:
    return int(getattr(settings, "LISTENER_BATCH_SIZE", 1000))


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_acquire(
    *, node_pubkey: str, holder: str, seconds: float, take_over: bool = False
) -> bool:
    """Take the node's lease if it is free, expired, or already ours.

    `take_over` takes it whoever holds it: only for a caller holding the node's advisory lock,
    which proves the previous holder's session is gone (its late writes are still fenced).
    """
    ledger.cursor_ensure(node_pubkey=node_pubkey)
    now = timezone.now()
    rows = ListenerCursor.objects.filter(node_pubkey=node_pubkey)
    if not take_over:
        free = Q(lease_holder="") | Q(lease_holder=holder) | Q(lease_expires_at__isnull=True)
        rows = rows.filter(free | Q(lease_expires_at__lt=now))
    taken = rows.update(lease_holder=holder, lease_expires_at=now + timedelta(seconds=seconds))
    return taken == 1


def listener_lock(node_pubkey: str) -> NodeLock:
    """The advisory lock every writer of a node's cursor takes (listener, rebuild_from_node)."""
    return NodeLock(name="listener", node_pubkey=node_pubkey)


def lease_renew(*, node_pubkey: str, holder: str, seconds: float) -> bool:
    """Extend our lease; False when someone else holds it now."""
    renewed = ListenerCursor.objects.filter(node_pubkey=node_pubkey, lease_holder=holder).update(
        lease_expires_at=timezone.now() + timedelta(seconds=seconds)
    )
    return renewed == 1


def lease_release(*, node_pubkey: str, holder: str) -> None:
    ListenerCursor.objects.filter(node_pubkey=node_pubkey, lease_holder=holder).update(
        lease_holder="", lease_expires_at=None
    )


def settled_backlog(client: Any, *, after_settle_index: int = 0) -> list[Invoice]:
    """Every settled invoice above a settle index, in settle order (ListInvoices is by add)."""
    settled = [
        inv
        for inv in client.iter_invoices()
        if inv.settled and inv.settle_index > after_settle_index
    ]
    return sorted(settled, key=lambda inv: inv.settle_index)


def _chunks(items: Sequence[Invoice], size: int) -> Iterator[Sequence[Invoice]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _StreamEnded(Exception):
    """The reader thread's stream returned (the session is over)."""


@dataclass
class Listener:
    """Streams one node's settled invoices into the ledger while it holds the lease."""

    client: Any
    node_pubkey: str
    on_recorded: OnRecorded
    holder: str = field(default_factory=default_holder)
    lease_seconds: float = 15.0
    max_backoff: float = 10.0
    recorded: int = 0
    batches: int = 0

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: wait for the lock and lease, catch up, stream; on failure start over."""
        delay = 0.2
        lock = listener_lock(self.node_pubkey)
        while not stop.is_set():
            try:
                # Waits inside the server: wakes the moment the holder's session ends.
                if not lock.acquire(timeout=LOCK_WAIT_SECONDS):
                    continue
                if not lease_acquire(
                    node_pubkey=self.node_pubkey,
                    holder=self.holder,
                    seconds=self.lease_seconds,
                    take_over=lock.exclusive,
                ):
                    stop.wait(min(self.lease_seconds / 3, 2.0))
                    continue
                log.info("listener %s holds the lease on %s", self.holder, self.node_pubkey[:16])
                self._session(stop, lock)
                delay = 0.2
            except ledger.LeaseLost as exc:
                log.warning("listener stops writing: %s", exc)
            except LightningAuthError:
                raise  # wrong macaroon: retrying will not help
            except (LightningError, DatabaseError) as exc:
                log.warning(
                    "listener interrupted (%s: %s); resuming from the cursor",
                    type(exc).__name__,
                    exc,
                )
                connection.close()  # a broken connection is replaced on next use
            except Exception:
                log.exception("listener failed; resuming from the cursor")
                connection.close()
            if not lock.held():
                lock.release()  # its connection broke: wait for the lock again
            stop.wait(delay)
            delay = min(delay * 2, self.max_backoff)
        try:
            lease_release(node_pubkey=self.node_pubkey, holder=self.holder)
        except DatabaseError:
            pass
        finally:
            lock.release()  # after the lease: a standby then finds it free
            connection.close()  # this thread's connection ends with it

    def _session(self, stop: threading.Event, lock: NodeLock) -> None:
        session = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(stop, session, lock),
            name="listener-heartbeat",
            daemon=True,
        )
        heartbeat.start()
        # Hold mode: held keysends are checked (and settled or cancelled) beside the stream.
        reviewer = hold.session_reviewer(
            client=self.client, node_pubkey=self.node_pubkey, session=session
        )
        try:
            cursor = ListenerCursor.objects.get(node_pubkey=self.node_pubkey)
            # Subscribing with settle_index 0 replays nothing, and a payment that settles
            # between a catch-up and the subscription would be missed: until the node has
            # settled anything at all, poll ListInvoices instead of subscribing.
            while cursor.settle_index == 0 and not session.is_set():
                for chunk in _chunks(settled_backlog(self.client), batch_limit()):
                    self._record(chunk)
                cursor.refresh_from_db()
                if cursor.settle_index == 0:
                    session.wait(1.0)
            if session.is_set():
                if not stop.is_set():
                    raise ledger.LeaseLost("heartbeat could not renew the lease")
                return
            self._stream(cursor, session, reviewer)
            if not stop.is_set():
                raise ledger.LeaseLost("heartbeat could not renew the lease")
        finally:
            session.set()
            heartbeat.join(timeout=5)
            reviewer.join(timeout=5)

    def _stream(self, cursor: ListenerCursor, session: threading.Event, reviewer: Any) -> None:
        arrived: queue.Queue[Invoice | BaseException] = queue.Queue(maxsize=10 * batch_limit())

        def read() -> None:
            try:
                for invoice in self.client.invoice_events(
                    add_index=cursor.add_index,
                    settle_index=cursor.settle_index,
                    stop=session,
                    max_backoff=self.max_backoff,
                ):
                    arrived.put(invoice)
                arrived.put(_StreamEnded())
            except BaseException as exc:  # handed to the writer, which ends the session
                arrived.put(exc)

        reader = threading.Thread(target=read, name="listener-reader", daemon=True)
        reader.start()
        last = cursor.settle_index
        while not session.is_set():
            try:
                first = arrived.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < batch_limit():
                try:
                    batch.append(arrived.get_nowait())
                except queue.Empty:
                    break
            failure = next((item for item in batch if isinstance(item, BaseException)), None)
            invoices = [item for item in batch if isinstance(item, Invoice)]
            settled: list[Invoice] = []
            top = last
            for invoice in invoices:
                if not invoice.settled:
                    reviewer.submit(invoice)  # an add event: in hold mode, a payment to check
                    continue
                if invoice.settle_index > top + 1:
                    # Settle indices are dense: a jump means we subscribed after some settled
                    # (only possible from settle_index 0, which replays nothing). Fill it now.
                    settled.extend(
                        missed
                        for missed in settled_backlog(self.client, after_settle_index=top)
                        if missed.settle_index < invoice.settle_index
                    )
                settled.append(invoice)
                top = max(top, invoice.settle_index)
            if settled:
                self._record(settled)
                last = top
            if isinstance(failure, _StreamEnded):
                return
            if failure is not None:
                raise failure
        reader.join(timeout=2)

    def _record(self, invoices: Sequence[Invoice]) -> None:
        recorded = ledger.ledger_record_invoices(
            invoices=invoices,
            node_pubkey=self.node_pubkey,
            lease_holder=self.holder,
            lease_seconds=self.lease_seconds,
        )
        self.recorded += recorded.created
        self.batches += 1
        if recorded.created:
            self.on_recorded(recorded)

    def _heartbeat(self, stop: threading.Event, session: threading.Event, lock: NodeLock) -> None:
        """Renew the lease; end the session when it or the lock is lost, or the listener stops."""
        try:
            while not session.wait(self.lease_seconds / 3):
                if stop.is_set():
                    break
                if not lock.held():
                    # A standby may hold it now and take the lease: stop before it does.
                    log.warning("listener lock on %s was lost", self.node_pubkey[:16])
                    break
                try:
                    if not lease_renew(
                        node_pubkey=self.node_pubkey, holder=self.holder, seconds=self.lease_seconds
                    ):
                        log.warning("listener lease on %s was taken over", self.node_pubkey[:16])
                        break
                except DatabaseError:
                    log.warning("lease heartbeat failed; retrying", exc_info=True)
                    connection.close()
        finally:
            session.set()
            close_old_connections()
            connection.close()
