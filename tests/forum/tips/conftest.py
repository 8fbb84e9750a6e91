"""Fixtures for tips: a board, keys, and a payer that records settled keysends like the listener."""

from __future__ import annotations

import pytest

from forum import nostr, protocol
from forum.models import Board
from tests.forum.core.conftest import Poster


class Tipper(Poster):
    """`Poster` plus tips: every payment is recorded and reconciled (eager tasks), as live."""

    def tip(self, event_id: str, amount_msat: int, **kw):
        return self.pay(protocol.encode_tip(event_id), amount_msat, **kw)


@pytest.fixture
def tipper(forum_node) -> Tipper:
    return Tipper(forum_node)


@pytest.fixture
def board(db) -> Board:
    return Board.objects.create(
        slug="tips", title="Tips", thread_price_msat=10_000, reply_price_msat=2_000
    )


@pytest.fixture
def author_key() -> str:
    return nostr.generate_secret_key()


def local_balance_msat(client) -> int:
    """A node's spendable balance as it reports it (sats, so compare whole-sat amounts)."""
    return sum(channel.local_balance_sat for channel in client.list_channels()) * 1000
