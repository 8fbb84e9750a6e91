"""simnet as a plain lnd gRPC client sees it: raw generated stubs, no LightningClient.

These pin the wire behaviour a client built from lnd's own protos relies on:
status codes, error texts, streaming order and the deprecated fields.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from lightning.client import MAX_MESSAGE_SIZE
from lightning.rpc import (
    invoices_pb2,
    invoices_pb2_grpc,
    lightning_pb2,
    lightning_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from lightning.simnet import SimNet, SimNode
from lightning.types import KEYSEND_PREIMAGE_RECORD


class Stubs:
    def __init__(self, node: SimNode) -> None:
        creds = grpc.ssl_channel_credentials(node.tls_cert_path.read_bytes())
        self.channel = grpc.secure_channel(
            node.grpc_address,
            creds,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_SIZE)],
        )
        self.md = (("macaroon", node.macaroon_path.read_bytes().hex()),)
        self.ln = lightning_pb2_grpc.LightningStub(self.channel)
        self.router = router_pb2_grpc.RouterStub(self.channel)
        self.invoices = invoices_pb2_grpc.InvoicesStub(self.channel)


@pytest.fixture
def stubs(simnet: SimNet) -> Iterator[dict[str, Stubs]]:
    made = {name: Stubs(node) for name, node in simnet.nodes.items()}
    yield made
    for s in made.values():
        s.channel.close()


def _keysend_request(dest: str, amt_msat: int, **kw: Any) -> router_pb2.SendPaymentRequest:
    preimage = secrets.token_bytes(32)
    records = {KEYSEND_PREIMAGE_RECORD: preimage, **kw.pop("records", {})}
    return router_pb2.SendPaymentRequest(
        dest=bytes.fromhex(dest),
        amt_msat=amt_msat,
        payment_hash=hashlib.sha256(preimage).digest(),
        dest_custom_records=records,
        fee_limit_sat=10,
        timeout_seconds=30,
        **kw,
    )


def test_send_payment_v2_streams_in_flight_then_succeeded(
    simnet: SimNet, stubs: dict[str, Stubs]
) -> None:
    alice = stubs["alice"]
    request = _keysend_request(simnet.nodes["forum"].pubkey, 2_000, records={65537: b"hi"})
    updates = list(alice.router.SendPaymentV2(request, metadata=alice.md, timeout=10))
    statuses = [lightning_pb2.Payment.PaymentStatus.Name(u.status) for u in updates]
    assert statuses == ["IN_FLIGHT", "SUCCEEDED"]
    final = updates[-1]
    assert final.payment_hash == request.payment_hash.hex()
    assert final.value_msat == 2_000 and final.value_sat == 2
    (attempt,) = final.htlcs
    assert attempt.status == lightning_pb2.HTLCAttempt.SUCCEEDED
    (hop,) = attempt.route.hops
    assert hop.pub_key == simnet.nodes["forum"].pubkey
    assert hop.custom_records[65537] == b"hi" and KEYSEND_PREIMAGE_RECORD in hop.custom_records
    # no_inflight_updates leaves only the final update.
    quiet = _keysend_request(simnet.nodes["forum"].pubkey, 1_000, no_inflight_updates=True)
    assert [u.status for u in alice.router.SendPaymentV2(quiet, metadata=alice.md)] == [
        lightning_pb2.Payment.SUCCEEDED
    ]


def test_failed_payment_reports_zero_preimage_and_failure(
    simnet: SimNet, stubs: dict[str, Stubs]
) -> None:
    alice = stubs["alice"]
    request = _keysend_request(simnet.nodes["router1"].pubkey, 1_000, no_inflight_updates=True)
    (final,) = alice.router.SendPaymentV2(request, metadata=alice.md)
    assert final.status == lightning_pb2.Payment.FAILED
    assert final.failure_reason == lightning_pb2.FAILURE_REASON_INCORRECT_PAYMENT_DETAILS
    assert final.payment_preimage == "0" * 64
    assert final.htlcs[0].failure.code == lightning_pb2.Failure.INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS


def test_error_codes_and_texts(simnet: SimNet, stubs: dict[str, Stubs]) -> None:
    alice = stubs["alice"]
    forum = simnet.nodes["forum"].pubkey

    def error(call: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as exc_info:
            call()
        return exc_info.value

    low = _keysend_request(forum, 1_000, records={65535: b"x"})
    err = error(lambda: list(alice.router.SendPaymentV2(low, metadata=alice.md)))
    assert err.code() == grpc.StatusCode.UNKNOWN
    assert err.details() == "no custom records with types below 65536 allowed"

    paid = _keysend_request(forum, 1_000)
    list(alice.router.SendPaymentV2(paid, metadata=alice.md))
    err = error(lambda: list(alice.router.SendPaymentV2(paid, metadata=alice.md)))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "invoice is already paid",
    )

    both = _keysend_request(forum, 1_000, amt=1)
    err = error(lambda: list(alice.router.SendPaymentV2(both, metadata=alice.md)))
    assert err.details() == "sat and msat arguments are mutually exclusive"

    track = router_pb2.TrackPaymentRequest(payment_hash=b"\x01" * 32)
    err = error(lambda: list(alice.router.TrackPaymentV2(track, metadata=alice.md)))
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "payment isn't initiated")

    stubs["forum"].ln.AddInvoice(lightning_pb2.Invoice(value=1), metadata=stubs["forum"].md)
    lookup = lightning_pb2.PaymentHash(r_hash=b"\x02" * 32)
    err = error(lambda: stubs["forum"].ln.LookupInvoice(lookup, metadata=stubs["forum"].md))
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "unable to locate invoice")

    long_memo = lightning_pb2.Invoice(value=1, memo="x" * 1025)
    err = error(lambda: stubs["forum"].ln.AddInvoice(long_memo, metadata=stubs["forum"].md))
    assert err.details() == "memo too large: 1025 bytes (maxsize=1024)"


def test_invoice_wire_fields(simnet: SimNet, stubs: dict[str, Stubs]) -> None:
    alice, forum = stubs["alice"], stubs["forum"]
    request = _keysend_request(simnet.nodes["forum"].pubkey, 5_500, records={65537: b"m"})
    list(alice.router.SendPaymentV2(request, metadata=alice.md))
    inv = forum.ln.LookupInvoice(
        lightning_pb2.PaymentHash(r_hash=request.payment_hash), metadata=forum.md
    )
    assert inv.state == lightning_pb2.Invoice.SETTLED and inv.settled and inv.is_keysend
    # The deprecated amt_paid carries msat, as lnd fills it.
    assert (inv.amt_paid, inv.amt_paid_sat, inv.amt_paid_msat) == (5_500, 5, 5_500)
    assert (inv.value, inv.value_msat) == (5, 5_500)
    assert (
        inv.htlcs[0].custom_records[KEYSEND_PREIMAGE_RECORD]
        == request.dest_custom_records[KEYSEND_PREIMAGE_RECORD]
    )
    assert inv.htlcs[0].state == lightning_pb2.SETTLED


def test_cancel_is_seen_by_single_invoice_stream_only(stubs: dict[str, Stubs]) -> None:
    """SubscribeSingleInvoice reports CANCELED; SubscribeInvoices stays silent about it (lnd
    leaves CANCELED and ACCEPTED out) while still delivering the adds before and after."""
    forum = stubs["forum"]
    general = forum.ln.SubscribeInvoices(lightning_pb2.InvoiceSubscription(), metadata=forum.md)
    seen: list[tuple[bytes, int]] = []
    arrived = threading.Condition()

    def read() -> None:
        with contextlib.suppress(grpc.RpcError):  # our own cancel() ends it
            for invoice in general:
                with arrived:
                    seen.append((invoice.r_hash, invoice.state))
                    arrived.notify_all()

    def saw(r_hash: bytes, timeout: float) -> bool:
        with arrived:
            return arrived.wait_for(lambda: any(h == r_hash for h, _ in seen), timeout=timeout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Live events only (index 0: no backlog); the stream is open once a first add comes through.
    deadline = time.monotonic() + 5
    while True:
        added = forum.ln.AddInvoice(lightning_pb2.Invoice(value_msat=1_000), metadata=forum.md)
        if saw(added.r_hash, timeout=0.2):
            break
        assert time.monotonic() < deadline, "SubscribeInvoices delivered no add event"
    single = forum.invoices.SubscribeSingleInvoice(
        invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=added.r_hash), metadata=forum.md
    )
    assert next(single).state == lightning_pb2.Invoice.OPEN
    forum.invoices.CancelInvoice(
        invoices_pb2.CancelInvoiceMsg(payment_hash=added.r_hash), metadata=forum.md
    )
    assert next(single).state == lightning_pb2.Invoice.CANCELED
    looked_up = forum.invoices.LookupInvoiceV2(
        invoices_pb2.LookupInvoiceMsg(payment_hash=added.r_hash), metadata=forum.md
    )
    assert looked_up.state == lightning_pb2.Invoice.CANCELED
    # A later add is delivered: the stream went on past the cancel without reporting it.
    after = forum.ln.AddInvoice(lightning_pb2.Invoice(value_msat=2_000), metadata=forum.md)
    assert saw(after.r_hash, timeout=5), seen
    general.cancel()
    reader.join(timeout=5)
    ours = [state for h, state in seen if h in (added.r_hash, after.r_hash)]
    assert ours == [lightning_pb2.Invoice.OPEN, lightning_pb2.Invoice.OPEN]
    assert lightning_pb2.Invoice.CANCELED not in {state for _, state in seen}


def test_large_responses_pass_the_4_mib_default(simnet: SimNet) -> None:
    # ~6 MiB of ListInvoices: needs the 200 MiB limit on both ends.
    for _ in range(5_000):
        simnet.network.add_invoice(
            "forum", value_msat=1_000, memo="x" * 1024, expiry=3600, preimage=None
        )
    with simnet.nodes["forum"].client() as client:
        page = client.list_invoices(num_max_invoices=10_000)
    assert len(page.invoices) == 5_000


def test_keysend_with_wrong_preimage_is_rejected_by_receiver(
    simnet: SimNet, stubs: dict[str, Stubs]
) -> None:
    alice = stubs["alice"]
    request = _keysend_request(simnet.nodes["forum"].pubkey, 1_000, no_inflight_updates=True)
    request.payment_hash = b"\x09" * 32  # not sha256 of the preimage record
    (final,) = alice.router.SendPaymentV2(request, metadata=alice.md)
    assert final.failure_reason == lightning_pb2.FAILURE_REASON_INCORRECT_PAYMENT_DETAILS
