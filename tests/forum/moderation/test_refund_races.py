"""Refunds over simnet when it goes wrong: the forum's node is down, or two moderators press
"refund" at the same moment. (`test_refund.py` covers the failure texts with a stand-in client;
here the sats really move, or really do not.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from forum import nostr
from forum.models import LedgerEntry, ModerationAction, Rejection
from forum.services import identity, moderation, node
from lightning.simnet import SimNet
from lightning.types import LightningUnavailable
from tests.conftest import ForumNode
from tests.forum.moderation.conftest import backdate_bans, deliver, local_balance_sat, make_board

pytestmark = pytest.mark.django_db(transaction=True)


def banned_post(forum_node, moderator, *, sender: str = "alice", amount_msat: int = 21_000):
    """A rejected (banned) paid post whose event names `sender`'s node for refunds."""
    key = nostr.generate_secret_key()
    moderation.author_ban(actor=moderator, pubkey=nostr.public_key(key), reason="test")
    backdate_bans()
    event = nostr.thread_event(
        key,
        board="refunds",
        title="hi",
        content="hello",
        ln_node=forum_node.net.nodes[sender].pubkey,
    )
    entry = deliver(forum_node, event, amount_msat, sender=sender)
    rejection = Rejection.objects.get(ledger_entry=entry)
    assert rejection.reason == "banned"
    return rejection


def answering(client, timeout: float = 15) -> None:
    """Wait until the node answers again (the client reconnects with a backoff of up to 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.get_info()
            return
        except LightningUnavailable:
            assert time.monotonic() < deadline, "the node did not come back"
            time.sleep(0.1)


class StoppableNode(ForumNode):
    """The forum node on a simnet of its own, which the test can stop and start again."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        net = SimNet.start(data_dir)
        node.write_simnet_nodes(net, data_dir)
        super().__init__(net)

    def stop(self) -> None:
        self.net.stop()

    def start(self) -> None:
        address = self.net.nodes["forum"].grpc_address
        self.net = SimNet.start(self.data_dir)
        assert self.net.nodes["forum"].grpc_address == address  # clients look for it there


@pytest.fixture
def own_node(simnet, settings, tmp_path) -> Iterator[StoppableNode]:
    settings.SIMNET_DATA_DIR = tmp_path / "simnet"
    node.reset_clients()
    identity.forget()
    here = StoppableNode(tmp_path / "simnet")
    try:
        yield here
    finally:
        node.reset_clients()
        identity.forget()
        here.stop()


def test_refund_while_the_node_is_down_fails_cleanly_and_works_later(own_node, moderator):
    make_board("refunds", thread_price_msat=10_000)
    rejection = banned_post(own_node, moderator)
    alice = node.client("alice")
    before = local_balance_sat(alice)

    own_node.stop()
    with pytest.raises(moderation.RefundFailed, match="unreachable"):
        moderation.rejection_refund(actor=moderator, rejection=rejection, reason="sorry")
    assert Rejection.objects.get(pk=rejection.pk).refund_entry is None
    assert not LedgerEntry.objects.filter(direction="out").exists()
    failed = ModerationAction.objects.get(action="rejection.refund_failed")
    assert failed.details["amount_msat"] == 21_000 and failed.details["payment_hash"]

    own_node.start()
    answering(own_node.client)  # a moderator tries again once the node is back
    alice = node.client("alice")
    assert local_balance_sat(alice) == before  # nothing left while it was down
    assert moderation.rejection_refund(actor=moderator, rejection=rejection, reason="again")
    assert local_balance_sat(alice) - before == 21
    refund = Rejection.objects.get(pk=rejection.pk).refund_entry
    assert (refund.direction, refund.purpose, refund.amount_msat) == ("out", "refund", 21_000)
    assert own_node.client.track_payment(refund.payment_hash).succeeded
    # The failed try never reached the node: its payment hash is unknown there.
    sent = {p.payment_hash for p in own_node.client.list_payments(max_payments=1000)}
    assert refund.payment_hash in sent and failed.details["payment_hash"] not in sent


def test_two_moderators_refunding_at_once_send_one_keysend(forum_node, moderator):
    """Two requests for the same refund, on two connections, released together: one keysend,
    one outgoing ledger row, the author paid back once; the other request sees it refunded."""
    make_board("refunds", thread_price_msat=10_000)
    alice = node.client("alice")
    rejections = [banned_post(forum_node, moderator) for _ in range(3)]
    before = local_balance_sat(alice)

    for rejection in rejections:
        start = threading.Barrier(2)
        results: list[bool] = []
        errors: list[BaseException] = []

        def press(rejection=rejection, start=start, results=results, errors=errors) -> None:
            try:
                start.wait(10)
                results.append(moderation.rejection_refund(actor=moderator, rejection=rejection))
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=press) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert sorted(results) == [False, True]

    assert local_balance_sat(alice) - before == 3 * 21  # each refund paid exactly once
    refunds = LedgerEntry.objects.filter(direction="out", purpose="refund")
    assert refunds.count() == 3
    assert ModerationAction.objects.filter(action="rejection.refund").count() == 3
    assert not ModerationAction.objects.filter(action="rejection.refund_failed").exists()
    sent = forum_node.client.list_payments(reversed=True, max_payments=1000)
    refund_hashes = set(refunds.values_list("payment_hash", flat=True))
    assert len([p for p in sent if p.payment_hash in refund_hashes]) == 3
