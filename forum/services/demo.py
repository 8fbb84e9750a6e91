"""Demo mode (the embedded default): a funded demo wallet and a seeded forum on first run.

* `demo_keysend` is the demo wallet: a real gRPC keysend from simnet's `alice` node (the demo
  user) to the forum node, exactly what a browser wallet would do.
* `demo_seed` creates a few boards with prices and a few signed demo posts on first run. The
  posts go through the real path, keysend from simnet's demo nodes to the forum node, so the
  ledger holds them and the listener and reconciliation publish them like any other post.
* `startup_hook` is the line in `forum.embedded.STARTUP_HOOKS` that runs the seeding in the
  background of `make run`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

log = logging.getLogger(__name__)

DEMO_WALLET_NODE = "alice"
# A demo wallet is for trying the forum, not for moving simnet's whole liquidity at once.
MAX_DEMO_PAYMENT_SAT = 100_000


class DemoWalletError(Exception):
    """The demo wallet cannot pay (demo off, node down, payment failed); the text says why."""


@dataclass(frozen=True)
class DemoPayment:
    payment_hash: str
    preimage: str
    fee_msat: int


@dataclass(frozen=True)
class DemoWalletInfo:
    pubkey: str
    alias: str
    balance_sat: int


def _forum_node_pubkey() -> str:
    from forum.selectors.pages import node_contact

    contact = node_contact()
    if not contact.pubkey:
        raise DemoWalletError(f"the forum node is not reachable: {contact.error}")
    return contact.pubkey


def demo_keysend(
    *, destination: str, amount_sat: int, custom_records: dict[int, str]
) -> DemoPayment:
    """Pay the forum node from the demo user's node; raises DemoWalletError with lnd's reason."""
    from forum.services import node
    from lightning.types import LightningError

    if not settings.DEMO_MODE:
        raise DemoWalletError("demo mode is off")
    if destination != _forum_node_pubkey():
        # The demo wallet only pays the forum: it must not become a faucet for anything else.
        raise DemoWalletError("the demo wallet only pays the forum's own node")
    if not 0 < amount_sat <= MAX_DEMO_PAYMENT_SAT:
        raise DemoWalletError(f"amount must be between 1 and {MAX_DEMO_PAYMENT_SAT:,} sats")
    records = {record_type: value.encode("utf-8") for record_type, value in custom_records.items()}
    try:
        payment = node.client(DEMO_WALLET_NODE).keysend(destination, amount_sat * 1000, records)
    except LightningError as exc:
        raise DemoWalletError(f"payment failed: {exc.message}") from exc
    except Exception as exc:  # node not configured / simnet not running
        raise DemoWalletError(f"the demo wallet is not available: {exc}") from exc
    if not payment.succeeded:
        raise DemoWalletError(f"payment failed: {payment.failure_reason}")
    return DemoPayment(payment.payment_hash, payment.preimage, payment.fee_msat)


def demo_wallet_info() -> DemoWalletInfo:
    from forum.services import node

    try:
        client = node.client(DEMO_WALLET_NODE)
        info = client.get_info()
        balance = sum(channel.local_balance_sat for channel in client.list_channels())
    except Exception as exc:
        raise DemoWalletError(f"the demo wallet is not available: {exc}") from exc
    return DemoWalletInfo(info.identity_pubkey, info.alias, balance)
