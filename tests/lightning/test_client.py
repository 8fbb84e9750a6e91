"""Every LightningClient method against simnet over TLS with macaroons."""

from __future__ import annotations

import hashlib

import pytest

from lightning.client import LightningClient
from lightning.simnet import SimNet
from lightning.types import (
    KEYSEND_PREIMAGE_RECORD,
    InvoiceNotFound,
    LightningRequestError,
    PaymentNotFound,
)


def test_get_info(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    info = clients["forum"].get_info()
    assert info.identity_pubkey == simnet.nodes["forum"].pubkey
    assert len(info.identity_pubkey) == 66 and info.identity_pubkey == info.identity_pubkey.lower()
    assert info.alias == "forum"
    assert info.block_height == 950_000
    assert info.synced_to_chain
    assert info.version.startswith("0.21.2-beta")
    assert info.uris == (f"{info.identity_pubkey}@{simnet.nodes['forum'].grpc_address}",)


def test_list_channels(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    channels = {c.remote_pubkey: c for c in clients["alice"].list_channels()}
    forum, router2 = simnet.nodes["forum"].pubkey, simnet.nodes["router2"].pubkey
    assert set(channels) == {forum, router2}
    direct = channels[forum]
    assert (direct.capacity_sat, direct.local_balance_sat, direct.remote_balance_sat) == (
        5_000_000,
        4_000_000,
        1_000_000,
    )
    assert direct.active and direct.chan_id > 0
    # The same channel seen from the other side.
    mirror = {c.chan_id: c for c in clients["forum"].list_channels()}[direct.chan_id]
    assert mirror.local_balance_sat == direct.remote_balance_sat


def test_add_and_lookup_invoice(clients: dict[str, LightningClient]) -> None:
    forum = clients["forum"]
    first = forum.add_invoice(value_msat=21_000, memo="top-up")
    preimage = bytes(range(32))
    second = forum.add_invoice(value_msat=1_500, memo="", preimage=preimage, expiry=60)
    assert first.state == "OPEN" and not first.is_keysend
    assert (first.value_msat, first.memo, first.amt_paid_msat) == (21_000, "top-up", 0)
    assert first.payment_request.startswith("lnbcrt210n1")
    assert second.add_index == first.add_index + 1
    assert second.payment_hash == hashlib.sha256(preimage).hexdigest()
    assert second.preimage == preimage.hex()
    assert forum.lookup_invoice(first.payment_hash) == first


def test_lookup_invoice_errors(clients: dict[str, LightningClient]) -> None:
    forum = clients["forum"]
    with pytest.raises(InvoiceNotFound, match="there are no existing invoices"):
        forum.lookup_invoice("ab" * 32)
    forum.add_invoice(value_msat=1000)
    with pytest.raises(InvoiceNotFound, match="unable to locate invoice") as exc_info:
        forum.lookup_invoice("ab" * 32)
    assert exc_info.value.code == "NOT_FOUND"
    with pytest.raises(LightningRequestError, match="32 bytes"):
        forum.lookup_invoice("abcd")


def test_list_invoices_index_semantics(clients: dict[str, LightningClient]) -> None:
    forum = clients["forum"]
    made = [forum.add_invoice(value_msat=1000 * (i + 1), memo=f"#{i + 1}") for i in range(5)]
    # Settle #2 by paying it, so pending_only has something to leave out.
    paid = clients["alice"].pay_invoice(made[1].payment_request)
    assert paid.succeeded

    page = forum.list_invoices(index_offset=0, num_max_invoices=2)
    assert [i.add_index for i in page.invoices] == [1, 2]
    assert (page.first_index_offset, page.last_index_offset) == (1, 2)
    page = forum.list_invoices(index_offset=2, num_max_invoices=10)
    assert [i.add_index for i in page.invoices] == [3, 4, 5]
    # Reversed walks back from the offset (exclusive) but returns add order.
    page = forum.list_invoices(index_offset=4, num_max_invoices=2, reversed=True)
    assert [i.add_index for i in page.invoices] == [2, 3]
    assert (page.first_index_offset, page.last_index_offset) == (2, 3)
    page = forum.list_invoices(reversed=True, num_max_invoices=2)
    assert [i.add_index for i in page.invoices] == [4, 5]
    pending = forum.list_invoices(pending_only=True)
    assert [i.add_index for i in pending.invoices] == [1, 3, 4, 5]
    empty = forum.list_invoices(index_offset=5)
    assert empty.invoices == () and empty.last_index_offset == 0


def test_iter_invoices_pages_forward(clients: dict[str, LightningClient]) -> None:
    forum = clients["forum"]
    for i in range(7):
        forum.add_invoice(value_msat=1000, memo=str(i))
    assert [i.memo for i in forum.iter_invoices(page_size=3)] == [str(i) for i in range(7)]
    assert [i.add_index for i in forum.iter_invoices(index_offset=5, page_size=3)] == [6, 7]


def test_keysend_delivers_custom_records(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    forum_pubkey = simnet.nodes["forum"].pubkey
    records = {34349334: "héllo".encode(), 65537: b"\x00\xff"}
    payment = clients["alice"].keysend(forum_pubkey, 5_000, records)
    assert payment.status == "SUCCEEDED" and payment.failure_reason == "FAILURE_REASON_NONE"
    assert (payment.value_msat, payment.fee_msat, payment.route_length) == (5_000, 0, 1)
    assert hashlib.sha256(bytes.fromhex(payment.preimage)).hexdigest() == payment.payment_hash

    invoice = clients["forum"].lookup_invoice(payment.payment_hash)
    assert invoice.state == "SETTLED" and invoice.is_keysend
    assert (invoice.value_msat, invoice.amt_paid_msat) == (5_000, 5_000)
    assert invoice.payment_request == "" and invoice.memo == ""
    assert invoice.settle_index == 1 and invoice.settle_date >= invoice.creation_date > 0
    assert invoice.preimage == payment.preimage
    (htlc,) = invoice.htlcs
    assert htlc.state == "SETTLED" and htlc.amt_msat == 5_000
    # lnd reports every record >= 65536, the keysend preimage included.
    assert invoice.custom_records == {
        **records,
        KEYSEND_PREIMAGE_RECORD: bytes.fromhex(payment.preimage),
    }


def test_keysend_two_hops_pays_fees(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    payment = clients["bob"].keysend(simnet.nodes["forum"].pubkey, 2_000_000, {65537: b"hi"})
    assert payment.succeeded and payment.route_length == 2
    # router1's policy: base 1000 msat + 1 ppm.
    assert payment.fee_msat == 1000 + 2_000_000 // 1_000_000
    bob_side = {c.remote_pubkey: c for c in clients["bob"].list_channels()}
    assert bob_side[simnet.nodes["router1"].pubkey].local_balance_sat == 4_000_000 - 2_002


def test_track_and_list_payments(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    alice = clients["alice"]
    forum_pubkey = simnet.nodes["forum"].pubkey
    ok = alice.keysend(forum_pubkey, 1_000, {})
    failed = alice.keysend(simnet.nodes["router1"].pubkey, 1_000, {})
    assert alice.track_payment(ok.payment_hash) == ok
    assert alice.track_payment(failed.payment_hash, wait=True).status == "FAILED"
    with pytest.raises(PaymentNotFound, match="payment isn't initiated"):
        alice.track_payment("00" * 32)
    assert [p.payment_hash for p in alice.list_payments()] == [ok.payment_hash, failed.payment_hash]
    assert [p.payment_hash for p in alice.list_payments(include_incomplete=False)] == [
        ok.payment_hash
    ]
    assert alice.list_payments(index_offset=1) == (alice.track_payment(failed.payment_hash),)


def test_pay_invoice_settles_regular_invoice(clients: dict[str, LightningClient]) -> None:
    invoice = clients["forum"].add_invoice(value_msat=42_000, memo="thread fee")
    payment = clients["bob"].pay_invoice(invoice.payment_request)
    assert payment.succeeded and payment.value_msat == 42_000 and payment.route_length == 2
    settled = clients["forum"].lookup_invoice(invoice.payment_hash)
    assert settled.state == "SETTLED" and not settled.is_keysend
    assert settled.amt_paid_msat == 42_000 and settled.preimage == payment.preimage


def test_constructors_and_context_manager(simnet: SimNet) -> None:
    node = simnet.nodes["bob"]
    with LightningClient.from_lndconnect(node.lndconnect_uri(), timeout=5) as client:
        assert client.get_info().alias == "bob"
    with LightningClient.from_files(
        node.grpc_address, node.tls_cert_path, node.macaroon_path
    ) as client:
        assert client.get_info().identity_pubkey == node.pubkey
