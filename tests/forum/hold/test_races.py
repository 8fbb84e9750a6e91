"""Hold mode when the forum and the node disagree about time, or the node is away.

- the forum's review is slow (a table lock holds its database read) and its settle comes after
  the node's hold timer cancelled the payment: nothing charged, the attempt on record;
- the forum decides to cancel while the node is down: the cancellation is recorded, the node is
  asked again when it is back, and the sats go back well before the node's own hold time;
- the node cancelled a part (its hold time is shorter than the forum believes) before the set
  completed: the rest of the set is cancelled, never settled on its own.

All over simnet with the real listener and reviewer; delays come from a real PostgreSQL lock or
a real node restart, not from stand-ins.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from forum import nostr, protocol
from forum.models import Event, LedgerEntry, Rejection
from lightning.types import LightningUnavailable
from tests.conftest import need
from tests.forum.hold.conftest import HOLD_SECONDS, Hold, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def blocked_on_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


@contextmanager
def boards_locked() -> Iterator[None]:
    """Another transaction holds the boards table exclusively: every read of it waits (as behind
    a migration or a long moderator transaction), the reviewer's verdict among them."""
    locked, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def hold_lock() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE forum_board IN ACCESS EXCLUSIVE MODE")
                locked.set()
                release.wait(60)
        except BaseException as exc:
            failed.append(exc)
        finally:
            locked.set()
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    assert not failed, failed
    try:
        yield
    finally:
        release.set()
        holder.join(10)


def node_state(hold: Hold, payment_hash: str) -> str | None:
    """The invoice's state on the node, None while our channel to it is still reconnecting."""
    try:
        return hold.client.lookup_invoice(payment_hash).state
    except LightningUnavailable:
        return None


def charged_msat(hold: Hold, before: dict[int, tuple[int, int]], name: str = "alice") -> int:
    return sum(before[c][0] - now for c, (now, _) in hold.balances_msat(name).items())


def rejection_of(payment_hash: str) -> Rejection:
    entry = wait_for(
        lambda: LedgerEntry.objects.filter(payment_hash=payment_hash).first(),
        what=f"a ledger row for {payment_hash[:12]}",
    )
    assert entry.status == LedgerEntry.Status.CANCELLED
    return Rejection.objects.get(ledger_entry=entry)


def test_settle_after_the_node_gave_up_is_recorded_and_not_charged(hold: Hold, board, alice_key):
    need(connection.vendor == "postgresql", "a lock that blocks reads needs PostgreSQL")
    hold.set_hold_seconds(2)
    hold.start_listener()
    event = nostr.thread_event(alice_key, board="general", title="late", content="valid")
    before = hold.balances_msat("alice")

    with boards_locked():
        future = hold.post(event, 10_000)
        # The reviewer has the held payment and waits for the boards table ...
        wait_for(lambda: blocked_on_lock() > 0, timeout=1.5, what="the reviewer to block")
        # ... while the node's hold timer runs out and the payment fails back.
        payment = hold.result(future, timeout=15)
        assert payment.failure_reason == CANCELED

    # The review finishes (the post is valid) and its settle finds the payment cancelled.
    rejection = rejection_of(payment.payment_hash)
    assert rejection.reason == "hold_expired"
    assert "No charge" in rejection.message
    assert hold.client.lookup_invoice(payment.payment_hash).state == "CANCELED"
    assert charged_msat(hold, before) == 0
    assert not Event.objects.filter(event_id=event.id).exists()
    assert not LedgerEntry.objects.filter(status=LedgerEntry.Status.SETTLED).exists()


def test_part_the_node_cancelled_is_not_settled_with_the_rest(hold: Hold, board, alice_key):
    # The node's hold time (lnd --keysend-hold-time) is 2 s; the forum believes HOLD_SECONDS.
    hold.net.network.set_keysend_hold("forum", 2)
    assert hold.settings.HOLD_SECONDS == HOLD_SECONDS > 2
    hold.start_listener()
    event = nostr.thread_event(alice_key, board="general", title="long", content="word " * 120)
    data = protocol.pack_event(event)
    half = len(data) // 2
    parts = [
        protocol.encode_part(event.id, 0, 2, data[:half]),
        protocol.encode_part(event.id, 1, 2, data[half:]),
    ]
    before = hold.balances_msat("alice")

    first = hold.result(hold.pay(parts[0], 5_000))
    assert first.failure_reason == CANCELED  # the node's timer, while the set waited
    # The second part completes the set as far as the forum's memory goes; the node says no.
    second = hold.result(hold.pay(parts[1], 5_000))
    assert second.failure_reason == CANCELED

    assert charged_msat(hold, before) == 0
    rejection = rejection_of(second.payment_hash)
    assert rejection.reason == "incomplete_parts"
    assert "1 of 2" in rejection.message
    assert not Event.objects.filter(event_id=event.id).exists()
    assert not LedgerEntry.objects.filter(status=LedgerEntry.Status.SETTLED).exists()
    assert not hold.held()


# --- the node down when the forum cancels --------------------------------------------------


class Restartable(Hold):
    """`Hold` on a simnet of its own that can be stopped and started on the same ports."""

    def stop_node(self) -> None:
        self.net.stop()

    def start_node(self) -> None:
        from lightning.simnet import SimNet

        address = self.net.nodes["forum"].grpc_address
        self.net = SimNet.start(self.net.network.data_dir)
        assert self.net.nodes["forum"].grpc_address == address


@pytest.fixture
def own_hold(settings, tmp_path) -> Iterator[Restartable]:
    from forum.services import identity, node
    from lightning.simnet import SimNet

    topology = json.loads(
        (Path(__file__).parents[3] / "lightning/simnet/topology.json").read_text()
    )
    net = SimNet.start(tmp_path / "simnet", topology=topology)
    with net.nodes["alice"].client() as alice:  # a settled invoice: the listener streams
        assert alice.keysend(net.nodes["forum"].pubkey, 1_000, {}).succeeded
    net.network.set_keysend_hold("forum", HOLD_SECONDS)
    node.write_simnet_nodes(net, tmp_path / "simnet")
    settings.SIMNET_DATA_DIR = tmp_path / "simnet"
    settings.SIMNET_ENABLED = True
    settings.LND_GRPC_HOST = ""
    settings.LND_CONNECT = ""
    settings.HOLD_MODE = True
    settings.HOLD_SECONDS = HOLD_SECONDS
    settings.HOLD_SCAN_SECONDS = 0.25
    node.reset_clients()
    identity.forget()
    helper = Restartable(net, settings)
    helper.cursor_to_now()
    try:
        yield helper
    finally:
        helper.stop_listener()
        helper.pool.shutdown(wait=False, cancel_futures=True)
        helper.net.stop()
        node.reset_clients()
        identity.forget()


def test_cancel_while_the_node_is_down_is_repeated_when_it_is_back(
    own_hold: Restartable, board, alice_key
):
    need(connection.vendor == "postgresql", "a lock that blocks reads needs PostgreSQL")
    hold = own_hold
    hold.start_listener()
    event = nostr.thread_event(alice_key, board="nowhere", title="t", content="unknown board")
    before = hold.balances_msat("alice")

    with boards_locked():
        future: Any = hold.post(event, 10_000)
        (held,) = hold.wait_held(1)
        wait_for(lambda: blocked_on_lock() > 0, timeout=5, what="the reviewer to block")
        hold.stop_node()  # the verdict (cancel) will find the node gone
    rejection = rejection_of(held.payment_hash)  # recorded first, whatever the node says
    assert rejection.reason == "unknown_board"
    time.sleep(0.5)  # a few scans against a node that does not answer
    hold.start_node()

    # The next scan asks again; the node cancels, the payer gets the sats back.
    wait_for(lambda: node_state(hold, held.payment_hash) == "CANCELED", HOLD_SECONDS + 5, "cancel")
    # The forum's cancel, not the node's hold timer: resolved before the hold time was up.
    (htlc,) = hold.client.lookup_invoice(held.payment_hash).htlcs
    assert htlc.resolve_time - htlc.accept_time < HOLD_SECONDS
    assert charged_msat(hold, before) == 0
    assert LedgerEntry.objects.filter(payment_hash=held.payment_hash).count() == 1
    assert Rejection.objects.filter(ledger_entry__payment_hash=held.payment_hash).count() == 1
    assert not hold.held()
    future.cancel()
