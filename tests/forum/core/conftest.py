"""Fixtures for the forum core tests: boards, keys, and paying signed events through simnet."""

from __future__ import annotations

import pytest

from forum import nostr, protocol
from forum.models import Board, LedgerEntry
from tests.conftest import record_invoice


@pytest.fixture
def board(db) -> Board:
    return Board.objects.create(
        slug="general",
        title="General",
        thread_price_msat=10_000,
        reply_price_msat=2_000,
        escalation_window_seconds=600,
        escalation_factor=2,
        max_content_length=5_000,
    )


@pytest.fixture
def alice_key() -> str:
    return nostr.generate_secret_key()


@pytest.fixture
def bob_key() -> str:
    return nostr.generate_secret_key()


class Poster:
    """Pays events to the forum node and records the settled invoices like the listener does."""

    def __init__(self, forum_node) -> None:
        self.node = forum_node

    def pay(self, records: dict, amount_msat: int, *, sender: str = "alice", record: bool = True):
        invoice = self.node.keysend(records, amount_msat, sender=sender)
        if record:
            return self.record(invoice)
        return invoice

    def record(self, invoice) -> LedgerEntry:
        entry, _ = record_invoice(invoice, node_pubkey=self.node.pubkey)
        entry.refresh_from_db()
        return entry

    def post(self, event: nostr.Event, amount_msat: int, **kw):
        return self.pay(protocol.encode_event(event), amount_msat, **kw)

    def topup(self, event_id: str, amount_msat: int, **kw):
        return self.pay(protocol.encode_topup(event_id), amount_msat, **kw)


@pytest.fixture
def poster(forum_node) -> Poster:
    return Poster(forum_node)


@pytest.fixture
def fresh_forum_node(simnet, tmp_path, settings):
    """A forum node whose invoice history is only this test's (rebuild replays all of it)."""
    from forum.services import identity, node
    from lightning.simnet import SimNet
    from tests.conftest import ForumNode

    net = SimNet.start(tmp_path / "simnet")
    node.write_simnet_nodes(net, tmp_path / "simnet")
    settings.SIMNET_DATA_DIR = tmp_path / "simnet"
    node.reset_clients()
    identity.forget()
    try:
        yield ForumNode(net)
    finally:
        node.reset_clients()
        identity.forget()
        net.stop()
