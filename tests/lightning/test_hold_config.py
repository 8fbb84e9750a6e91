"""Turning keysend hold mode on for a node of an existing simnet (lnd restarted with a flag)."""

from __future__ import annotations

import threading
import time

from lightning.client import LightningClient
from tests.lightning.conftest import StartSimnet


def _first_state(client: LightningClient, payment_hash: str) -> str:
    return next(iter(client.subscribe_single_invoice(payment_hash))).state


def test_set_keysend_hold_applies_to_existing_network_and_survives_restart(
    start_simnet: StartSimnet, tmp_path
) -> None:
    data_dir = tmp_path / "net"
    net = start_simnet(data_dir)
    forum_pubkey = net.nodes["forum"].pubkey
    with net.nodes["alice"].client() as alice:
        assert alice.keysend(forum_pubkey, 1_000, {65537: b"at once"}).succeeded

    net.network.set_keysend_hold("forum", 30)
    net.stop()
    net = start_simnet(data_dir)  # the setting is stored with the node
    assert net.network.nodes["forum"].keysend_hold_seconds == 30
    results: list = []
    with net.nodes["alice"].client() as alice, net.nodes["forum"].client() as forum:
        payer = threading.Thread(
            target=lambda: results.append(alice.keysend(forum_pubkey, 1_000, {65537: b"held"}))
        )
        payer.start()
        held = None
        deadline = time.monotonic() + 10
        while held is None and time.monotonic() < deadline:
            pending = forum.list_invoices(pending_only=True).invoices
            held = next((inv for inv in pending if inv.state == "ACCEPTED"), None)
            time.sleep(0.02)
        assert held is not None and held.custom_records[65537] == b"held"
        assert _first_state(forum, held.payment_hash) == "ACCEPTED"
        forum.cancel_invoice(held.payment_hash)
        payer.join(timeout=10)
    assert results[0].failure_reason == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"

    net.network.set_keysend_hold("forum", 0)
    with net.nodes["alice"].client() as alice:
        assert alice.keysend(forum_pubkey, 1_000, {65537: b"at once again"}).succeeded
