"""SubscribeInvoices replay semantics, restarts, and the reconnecting invoice_events."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest

from lightning.client import LightningClient
from lightning.simnet import SimNet
from lightning.types import Invoice, LightningUnavailable
from tests.lightning.conftest import StartSimnet

Event = tuple[int, int, str]


class Collector:
    """Drains an invoice iterator on a thread so tests can wait for events."""

    def __init__(self, events: Iterator[Invoice]) -> None:
        self.queue: queue.Queue[Invoice | BaseException] = queue.Queue()
        self._events = events
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for inv in self._events:
                self.queue.put(inv)
        except BaseException as exc:  # handed to the test thread
            self.queue.put(exc)

    def take(self, n: int, timeout: float = 10.0) -> list[Event]:
        out: list[Event] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            item = self.queue.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(item, BaseException):
                raise item
            out.append((item.add_index, item.settle_index, item.state))
        return out

    def quiet(self, wait: float = 0.3) -> bool:
        time.sleep(wait)
        return self.queue.empty()


def _seed(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    """forum: invoices 1-3 added (OPEN), 4-5 keysends (settle 1-2)."""
    for value in (1_000, 2_000, 3_000):
        clients["forum"].add_invoice(value_msat=value)
    for _ in range(2):
        assert (
            clients["alice"].keysend(simnet.nodes["forum"].pubkey, 1_000, {65537: b"m"}).succeeded
        )


def _pay(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    assert clients["alice"].keysend(simnet.nodes["forum"].pubkey, 1_000, {65537: b"m"}).succeeded


def test_zero_indices_mean_no_backlog(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    _seed(simnet, clients)
    stream = Collector(clients["forum"].subscribe_invoices(add_index=0, settle_index=0))
    assert stream.quiet()
    _pay(simnet, clients)
    # A keysend is an OPEN add event, then SETTLED.
    assert stream.take(2) == [(6, 0, "OPEN"), (6, 3, "SETTLED")]


def test_backlog_is_strictly_greater_adds_then_settles(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    _seed(simnet, clients)
    stream = Collector(clients["forum"].subscribe_invoices(add_index=2, settle_index=1))
    # Adds after 2 in their current state, then settles after 1, then live.
    assert stream.take(4) == [
        (3, 0, "OPEN"),
        (4, 1, "SETTLED"),
        (5, 2, "SETTLED"),
        (5, 2, "SETTLED"),
    ]
    assert stream.quiet()
    _pay(simnet, clients)
    assert stream.take(2) == [(6, 0, "OPEN"), (6, 3, "SETTLED")]


def test_settle_only_backlog(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    _seed(simnet, clients)
    stream = Collector(clients["forum"].subscribe_invoices(add_index=0, settle_index=1))
    assert stream.take(1) == [(5, 2, "SETTLED")]
    assert stream.quiet()


def test_keysend_settled_event_carries_the_message(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    stream = Collector(clients["forum"].subscribe_invoices(add_index=0, settle_index=0))
    time.sleep(0.2)
    payment = clients["bob"].keysend(simnet.nodes["forum"].pubkey, 3_000, {34349334: b"gm"})
    stream.take(1)
    settled = stream.queue.get(timeout=5)
    assert isinstance(settled, Invoice)
    assert settled.state == "SETTLED" and settled.is_keysend
    assert settled.payment_hash == payment.payment_hash
    assert settled.custom_records[34349334] == b"gm"
    assert settled.amt_paid_msat == 3_000 and settled.settle_date > 0


def test_resume_after_client_restart(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    forum = simnet.nodes["forum"]
    _seed(simnet, clients)
    with forum.client() as first:
        stream = Collector(first.subscribe_invoices(add_index=5, settle_index=2))
        assert stream.quiet()
        _pay(simnet, clients)
        assert stream.take(2) == [(6, 0, "OPEN"), (6, 3, "SETTLED")]
    _pay(simnet, clients)  # while no client listens
    with forum.client() as second:
        stream = Collector(second.subscribe_invoices(add_index=6, settle_index=3))
        assert stream.take(2) == [(7, 4, "SETTLED"), (7, 4, "SETTLED")]
        assert stream.quiet()


def test_state_and_replay_survive_simnet_restart(start_simnet: StartSimnet, tmp_path) -> None:
    data_dir = tmp_path / "restart"
    net = start_simnet(data_dir)
    clients = {name: node.client() for name, node in net.nodes.items()}
    _seed(net, clients)
    pubkeys = {name: node.pubkey for name, node in net.nodes.items()}
    addresses = {name: node.grpc_address for name, node in net.nodes.items()}
    channels = clients["alice"].list_channels()
    net.stop()

    net = start_simnet(data_dir)
    assert {name: node.pubkey for name, node in net.nodes.items()} == pubkeys
    # Ports are reused, so clients (and lndconnect URIs) keep working.
    assert {name: node.grpc_address for name, node in net.nodes.items()} == addresses
    assert clients["alice"].list_channels() == channels
    page = clients["forum"].list_invoices()
    assert [(i.add_index, i.settle_index) for i in page.invoices] == [
        (1, 0),
        (2, 0),
        (3, 0),
        (4, 1),
        (5, 2),
    ]
    stream = Collector(clients["forum"].subscribe_invoices(add_index=4, settle_index=1))
    assert stream.take(2) == [(5, 2, "SETTLED"), (5, 2, "SETTLED")]
    _pay(net, clients)
    # Indices continue where they were.
    assert stream.take(2) == [(6, 0, "OPEN"), (6, 3, "SETTLED")]
    for client in clients.values():
        client.close()


def test_raw_stream_raises_unavailable_when_server_stops(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    stream = Collector(clients["forum"].subscribe_invoices(add_index=0, settle_index=0))
    time.sleep(0.2)
    simnet.stop()
    with pytest.raises(LightningUnavailable):
        stream.take(1, timeout=10)


def test_invoice_events_reconnect_after_restart(start_simnet: StartSimnet, tmp_path) -> None:
    data_dir = tmp_path / "reconnect"
    net = start_simnet(data_dir)
    forum = net.nodes["forum"]
    listener = forum.client()
    stop = threading.Event()
    stream = Collector(
        listener.invoice_events(add_index=0, settle_index=0, stop=stop, max_backoff=0.5)
    )
    time.sleep(0.2)
    with net.nodes["alice"].client() as alice:
        alice.keysend(forum.pubkey, 1_000, {65537: b"before"})
    assert stream.take(2) == [(1, 0, "OPEN"), (1, 1, "SETTLED")]

    net.stop()
    net = start_simnet(data_dir)
    # Paid right after the restart, most likely before the listener is back:
    # then the replay brings it in its current state (SETTLED, no OPEN event,
    # as lnd's backlog does); either way it arrives exactly once.
    with net.nodes["alice"].client() as alice:
        alice.keysend(forum.pubkey, 2_000, {65537: b"during"})
        first = stream.take(1)
        if first == [(2, 0, "OPEN")]:
            first += stream.take(1)
        assert first[-1] == (2, 2, "SETTLED")
        alice.keysend(forum.pubkey, 3_000, {65537: b"after"})
        assert stream.take(2) == [(3, 0, "OPEN"), (3, 3, "SETTLED")]
    assert stream.quiet()

    stop.set()
    stream.thread.join(timeout=5)
    assert not stream.thread.is_alive()
    listener.close()


def test_invoice_events_resume_from_given_indices(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    _seed(simnet, clients)
    stop = threading.Event()
    stream = Collector(clients["forum"].invoice_events(add_index=5, settle_index=1, stop=stop))
    # The settle backlog repeats invoice 5 (already seen in the add backlog): de-duplicated.
    assert stream.take(1) == [(5, 2, "SETTLED")]
    assert stream.quiet()
    stop.set()
    stream.thread.join(timeout=5)
    assert not stream.thread.is_alive()
