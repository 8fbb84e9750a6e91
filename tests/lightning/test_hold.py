"""Hold invoices and keysend hold mode (lnd --keysend-hold-time) in simnet."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from lightning.client import LightningClient
from lightning.rpc import lightning_pb2, router_pb2, router_pb2_grpc
from lightning.simnet import SimNet
from lightning.types import LightningRequestError, PaymentAlreadyExists
from tests.lightning.conftest import StartSimnet

HELD_KEYSEND: dict[str, Any] = {
    "nodes": [
        {"name": "forum", "accept_keysend": True, "keysend_hold_seconds": 1},
        {"name": "alice"},
    ],
    "channels": [{"node1": "alice", "node2": "forum", "capacity_sat": 1_000_000}],
}


def _wait_state(client: LightningClient, payment_hash: str, state: str) -> None:
    for inv in client.subscribe_single_invoice(payment_hash):
        if inv.state == state:
            return


def _unsettled(client: LightningClient) -> int:
    return sum(
        c.capacity_sat - c.local_balance_sat - c.remote_balance_sat for c in client.list_channels()
    )


def test_hold_invoice_settle(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    forum, bob = clients["forum"], clients["bob"]
    preimage = secrets.token_bytes(32)
    payment_hash = hashlib.sha256(preimage).hexdigest()
    invoice = forum.add_hold_invoice(payment_hash=payment_hash, value_msat=50_000, memo="held")
    assert invoice.state == "OPEN" and invoice.preimage is None
    events = forum.subscribe_invoices(add_index=invoice.add_index, settle_index=0)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.append(next(events).state), daemon=True)
    reader.start()

    with ThreadPoolExecutor(1) as pool:
        paying = pool.submit(bob.pay_invoice, invoice.payment_request)
        _wait_state(forum, payment_hash, "ACCEPTED")
        held = forum.lookup_invoice(payment_hash)
        assert held.amt_paid_msat == 50_000 and held.htlcs[0].state == "ACCEPTED"
        assert bob.track_payment(payment_hash).status == "IN_FLIGHT"
        with pytest.raises(PaymentAlreadyExists, match="payment is in transition"):
            bob.pay_invoice(invoice.payment_request)
        # The HTLC amounts are locked on every hop, in neither side's balance.
        assert _unsettled(bob) == 51 and _unsettled(forum) == 50
        assert not paying.done()
        forum.settle_invoice(preimage)
        payment = paying.result(timeout=10)

    assert payment.succeeded and payment.preimage == preimage.hex() and payment.fee_msat == 1000
    settled = forum.lookup_invoice(payment_hash)
    assert settled.state == "SETTLED" and settled.settle_index == 1
    assert settled.preimage == preimage.hex()
    assert _unsettled(bob) == 0 and _unsettled(forum) == 0
    # SubscribeInvoices saw the settle, never the ACCEPTED state.
    reader.join(timeout=10)
    assert seen == ["SETTLED"]
    forum.settle_invoice(preimage)  # settling again succeeds, as in lnd


def test_hold_invoice_cancel_fails_the_payment(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    forum, alice = clients["forum"], clients["alice"]
    payment_hash = hashlib.sha256(b"\x01" * 32).hexdigest()
    invoice = forum.add_hold_invoice(payment_hash=payment_hash, value_msat=10_000)
    before = alice.list_channels()
    with pytest.raises(LightningRequestError, match="invoice still open"):
        forum.settle_invoice(b"\x01" * 32)
    with ThreadPoolExecutor(1) as pool:
        paying = pool.submit(alice.pay_invoice, invoice.payment_request)
        _wait_state(forum, payment_hash, "ACCEPTED")
        forum.cancel_invoice(payment_hash)
        payment = paying.result(timeout=10)
    assert payment.failure_reason == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"
    assert forum.lookup_invoice(payment_hash).state == "CANCELED"
    assert alice.list_channels() == before
    with pytest.raises(LightningRequestError, match="invoice already canceled"):
        forum.settle_invoice(b"\x01" * 32)


def test_keysend_hold_mode_settle_and_timeout(start_simnet: StartSimnet) -> None:
    net = start_simnet(topology=HELD_KEYSEND)
    forum_node = net.nodes["forum"]
    with net.nodes["alice"].client() as alice, forum_node.client() as forum:
        results: dict[str, Any] = {}

        def pay(name: str, text: bytes) -> None:
            results[name] = alice.keysend(forum_node.pubkey, 1_000, {65537: text})

        settle = threading.Thread(target=pay, args=("settle", b"inspect me"))
        settle.start()
        # The message can be read while the payment is held...
        first = next(iter(forum.list_invoices().invoices), None)
        while first is None or first.state != "ACCEPTED":
            time.sleep(0.02)
            first = next(iter(forum.list_invoices().invoices), None)
        assert first.custom_records[65537] == b"inspect me" and first.is_keysend
        assert "settle" not in results
        # ...then released with the preimage the keysend carried.
        forum.settle_invoice(bytes.fromhex(first.preimage or ""))
        settle.join(timeout=10)
        assert results["settle"].succeeded

        started = time.monotonic()
        pay("timeout", b"nobody settles me")
        assert time.monotonic() - started >= 0.9  # held ~1 s, then canceled
        assert results["timeout"].failure_reason == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"
        states = [i.state for i in forum.list_invoices().invoices]
        assert states == ["SETTLED", "CANCELED"]
        assert sum(c.local_balance_sat for c in alice.list_channels()) == 500_000 - 1


def test_held_payment_survives_restart(start_simnet: StartSimnet, tmp_path) -> None:
    data_dir = tmp_path / "held"
    net = start_simnet(data_dir)
    preimage = b"\x05" * 32
    payment_hash = hashlib.sha256(preimage).hexdigest()
    with net.nodes["forum"].client() as forum:
        invoice = forum.add_hold_invoice(payment_hash=payment_hash, value_msat=20_000)
    with net.nodes["alice"].client() as alice, ThreadPoolExecutor(1) as pool:
        paying = pool.submit(alice.pay_invoice, invoice.payment_request)
        with net.nodes["forum"].client() as forum:
            _wait_state(forum, payment_hash, "ACCEPTED")
        net.stop()
        with pytest.raises(Exception):  # noqa: B017 - the stream dies with the server
            paying.result(timeout=10)
    net = start_simnet(data_dir)
    with net.nodes["alice"].client() as alice, net.nodes["forum"].client() as forum:
        assert alice.track_payment(payment_hash).status == "IN_FLIGHT"
        assert forum.lookup_invoice(payment_hash).state == "ACCEPTED"
        forum.settle_invoice(preimage)
        assert alice.track_payment(payment_hash, wait=True).succeeded
    total = net.network.total_balance_msat()
    assert total == sum(c.capacity_msat for c in net.network.channels.values())


SLOW_RECEIVER: dict[str, Any] = {
    "nodes": [
        {"name": "forum", "accept_keysend": True, "keysend_hold_seconds": 2},
        {"name": "alice"},
    ],
    "channels": [{"node1": "alice", "node2": "forum", "capacity_sat": 1_000_000}],
}


def test_timeout_and_canceled_failure_reasons(start_simnet: StartSimnet) -> None:
    """A held HTLC failing after the payment loop ended keeps lnd's reason for the end."""

    net = start_simnet(topology=SLOW_RECEIVER)
    forum = net.nodes["forum"].pubkey
    with net.nodes["alice"].client() as alice:
        # timeout_seconds=1 passes while forum holds the HTLC for 2 s.
        timed_out = alice.keysend(forum, 1_000, {65537: b"slow"}, timeout_seconds=1)
        assert timed_out.failure_reason == "FAILURE_REASON_TIMEOUT"

        # cancelable=true and the client goes away: FAILURE_REASON_CANCELED.
        node = net.nodes["alice"]
        channel = grpc.secure_channel(
            node.grpc_address, grpc.ssl_channel_credentials(node.tls_cert_path.read_bytes())
        )
        preimage = secrets.token_bytes(32)
        request = router_pb2.SendPaymentRequest(
            dest=bytes.fromhex(forum),
            amt_msat=1_000,
            payment_hash=hashlib.sha256(preimage).digest(),
            dest_custom_records={5482373484: preimage},
            timeout_seconds=30,
            fee_limit_msat=1_000,
            cancelable=True,
        )
        md = (("macaroon", node.macaroon_path.read_bytes().hex()),)
        stream = router_pb2_grpc.RouterStub(channel).SendPaymentV2(request, metadata=md)
        assert next(stream).status == lightning_pb2.Payment.IN_FLIGHT
        stream.cancel()
        channel.close()
        final = alice.track_payment(request.payment_hash.hex(), wait=True)
        assert final.failure_reason == "FAILURE_REASON_CANCELED"
