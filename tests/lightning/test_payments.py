"""Keysend failure reasons, fee limits, duplicates, the onion budget and concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from lightning import onion
from lightning.client import LightningClient
from lightning.simnet import SimNet
from lightning.types import (
    KEYSEND_PREIMAGE_RECORD,
    LightningRequestError,
    PaymentAlreadyExists,
)
from tests.lightning.conftest import StartSimnet

# A chain topology where each sender has exactly one route to forum:
# s1 -> forum (1 hop), s2 -> r1 -> forum (2), s3 -> r2 -> r1 -> forum (3).
CHAIN: dict[str, Any] = {
    "nodes": [
        {"name": "forum", "accept_keysend": True},
        {"name": "r1"},
        {"name": "r2"},
        {"name": "s1"},
        {"name": "s2"},
        {"name": "s3"},
    ],
    "channels": [
        {"node1": "s1", "node2": "forum", "capacity_sat": 1_000_000},
        {"node1": "s2", "node2": "r1", "capacity_sat": 1_000_000},
        {"node1": "r1", "node2": "forum", "capacity_sat": 1_000_000},
        {"node1": "s3", "node2": "r2", "capacity_sat": 1_000_000},
        {"node1": "r2", "node2": "r1", "capacity_sat": 1_000_000},
    ],
}


def test_keysend_not_accepted_is_incorrect_payment_details(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    # router1 runs without --accept-keysend.
    payment = clients["alice"].keysend(simnet.nodes["router1"].pubkey, 1_000, {65537: b"x"})
    assert payment.status == "FAILED"
    assert payment.failure_reason == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"
    assert payment.preimage == "" and payment.fee_msat == 0 and payment.route_length == 0


def test_insufficient_balance(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    # alice has 4M + 4M sat outbound in total.
    payment = clients["alice"].keysend(simnet.nodes["forum"].pubkey, 8_000_001_000, {})
    assert payment.failure_reason == "FAILURE_REASON_INSUFFICIENT_BALANCE"
    assert clients["alice"].list_channels()[0].local_balance_sat == 4_000_000


def test_no_route_when_no_channel_has_the_liquidity(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    # alice's total outbound suffices (8M) but no single path carries 5M.
    payment = clients["alice"].keysend(
        simnet.nodes["forum"].pubkey, 5_000_000_000, {}, fee_limit_msat=10_000_000
    )
    assert payment.failure_reason == "FAILURE_REASON_NO_ROUTE"


def test_no_route_to_unknown_node(clients: dict[str, LightningClient]) -> None:
    payment = clients["alice"].keysend("02" + "11" * 32, 1_000, {})
    assert payment.failure_reason == "FAILURE_REASON_NO_ROUTE"


def test_fee_limit_semantics(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    forum = simnet.nodes["forum"].pubkey
    bob = clients["bob"]
    # 0 means zero-fee routes only: bob's only route pays router1 1000 msat.
    assert bob.keysend(forum, 10_000, {}, fee_limit_msat=0).failure_reason == (
        "FAILURE_REASON_NO_ROUTE"
    )
    assert bob.keysend(forum, 10_000, {}, fee_limit_msat=999).failure_reason == (
        "FAILURE_REASON_NO_ROUTE"
    )
    assert bob.keysend(forum, 10_000, {}, fee_limit_msat=1000).fee_msat == 1000
    # Default (lnd's): 100% of the amount up to 1000 sat, so 500 msat cannot pay 1000 msat fees.
    assert bob.keysend(forum, 500, {}).failure_reason == "FAILURE_REASON_NO_ROUTE"
    assert bob.keysend(forum, 1_000, {}).succeeded
    # A direct channel needs no fee at all.
    assert clients["alice"].keysend(forum, 1_000, {}, fee_limit_msat=0).succeeded


def test_repeated_hash_already_exists(simnet: SimNet, clients: dict[str, LightningClient]) -> None:
    forum = simnet.nodes["forum"].pubkey
    preimage = b"\x07" * 32
    assert clients["alice"].keysend(forum, 1_000, {}, preimage=preimage).succeeded
    with pytest.raises(PaymentAlreadyExists, match="invoice is already paid") as exc_info:
        clients["alice"].keysend(forum, 1_000, {}, preimage=preimage)
    assert exc_info.value.code == "ALREADY_EXISTS"
    # A failed payment may be retried under the same hash, as lnd allows.
    router1 = simnet.nodes["router1"].pubkey
    other = b"\x08" * 32
    assert clients["alice"].keysend(router1, 1_000, {}, preimage=other).status == "FAILED"
    assert clients["alice"].keysend(forum, 1_000, {}, preimage=other).succeeded


@pytest.mark.parametrize("record_type", [0, 1, 65535])
def test_record_types_below_65536_refused(
    simnet: SimNet, clients: dict[str, LightningClient], record_type: int
) -> None:
    with pytest.raises(LightningRequestError, match="no custom records with types below 65536"):
        clients["alice"].keysend(simnet.nodes["forum"].pubkey, 1_000, {record_type: b"x"})
    assert clients["alice"].list_payments() == ()


def test_caller_cannot_set_the_preimage_record(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    with pytest.raises(LightningRequestError, match="preimage"):
        clients["alice"].keysend(
            simnet.nodes["forum"].pubkey, 1_000, {KEYSEND_PREIMAGE_RECORD: b"\x00" * 32}
        )


def test_onion_budget_edges(start_simnet: StartSimnet) -> None:
    net = start_simnet(topology=CHAIN)
    forum = net.nodes["forum"].pubkey
    # At 1000 msat the forwarded amounts are 2-byte tu64s: 52 bytes per
    # intermediate hop, so 1206, 1154, 1102. (LND.md's 1153/1100 assume
    # 3-byte forwarded amounts, 53 bytes per hop: see test_onion.)
    expected = {1: 1206, 2: 1154, 3: 1102}
    for hops, limit in expected.items():
        assert onion.max_record_size(hops) == limit
        with net.nodes[f"s{hops}"].client() as sender:
            fits = sender.keysend(forum, 1_000, {65537: b"\xab" * limit}, fee_limit_msat=10_000)
            assert fits.succeeded and fits.route_length == hops, hops
            too_big = sender.keysend(
                forum, 1_000, {65537: b"\xab" * (limit + 1)}, fee_limit_msat=10_000
            )
            assert too_big.failure_reason == "FAILURE_REASON_NO_ROUTE", hops
    with net.nodes["forum"].client() as receiver:
        sizes = [len(i.custom_records[65537]) for i in receiver.iter_invoices()]
    assert sizes == [1206, 1154, 1102]


def test_too_big_direct_payload_falls_back_to_nothing(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    # alice also has a 3-hop route; a payload too big for 1 hop is too big for 3.
    payment = clients["alice"].keysend(
        simnet.nodes["forum"].pubkey, 1_000, {65537: b"x" * 1207}, fee_limit_msat=100_000
    )
    assert payment.failure_reason == "FAILURE_REASON_NO_ROUTE"


def test_200_concurrent_keysends_keep_balances(
    simnet: SimNet, clients: dict[str, LightningClient]
) -> None:
    forum = simnet.nodes["forum"].pubkey
    total_before = simnet.network.total_balance_msat()

    def pay(i: int) -> Any:
        sender = clients["alice"] if i % 2 else clients["bob"]
        return sender.keysend(forum, 10_000 + 1_000 * (i % 7), {65537: str(i).encode()})

    with ThreadPoolExecutor(max_workers=50) as pool:
        payments = list(pool.map(pay, range(200)))

    assert all(p.succeeded for p in payments), {p.failure_reason for p in payments}
    assert simnet.network.total_balance_msat() == total_before
    # Every channel, from both ends, still adds up to its capacity.
    for client in clients.values():
        for channel in client.list_channels():
            assert channel.local_balance_sat + channel.remote_balance_sat == channel.capacity_sat
    alice_paid = sum(p.value_msat + p.fee_msat for i, p in enumerate(payments) if i % 2)
    bob_paid = sum(p.value_msat + p.fee_msat for i, p in enumerate(payments) if not i % 2)
    bob_fees = sum(p.fee_msat for i, p in enumerate(payments) if not i % 2)
    assert bob_fees == 100 * 1000
    alice_local = sum(c.local_balance_sat for c in clients["alice"].list_channels())
    bob_local = sum(c.local_balance_sat for c in clients["bob"].list_channels())
    assert alice_local * 1000 == 8_000_000_000 - alice_paid
    assert bob_local * 1000 == 4_000_000_000 - bob_paid
    router1_local = sum(c.local_balance_sat for c in clients["router1"].list_channels())
    assert router1_local * 1000 == 1_000_000_000 + 6_000_000_000 + 5_000_000_000 + bob_fees
    invoices = list(clients["forum"].iter_invoices())
    assert len(invoices) == 200
    assert sorted(i.settle_index for i in invoices) == list(range(1, 201))
    assert sum(i.amt_paid_msat for i in invoices) == sum(p.value_msat for p in payments)
    assert {i.custom_records[65537] for i in invoices} == {str(i).encode() for i in range(200)}
