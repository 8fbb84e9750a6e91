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
import time
from concurrent.futures import ThreadPoolExecutor
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
    from forum.services import identity

    try:
        return identity.forum_node_pubkey()
    except Exception as exc:  # not configured, unreachable, auth
        raise DemoWalletError(f"the forum node is not reachable: {exc}") from exc


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


# --- first-run seeding -------------------------------------------------------------------------

DEMO_BOARDS = (
    {
        "slug": "general",
        "title": "General",
        "description": "Anything about Lightning, Nostr and paying for attention. Start here.",
        "thread_price_msat": 21_000,
        "reply_price_msat": 5_000,
        "position": 0,
    },
    {
        "slug": "lightning-dev",
        "title": "Lightning development",
        "description": "lnd, keysend, TLV records, routing and onion sizes.",
        "thread_price_msat": 50_000,
        "reply_price_msat": 10_000,
        "position": 1,
    },
    {
        "slug": "meta",
        "title": "About this forum",
        "description": "Feedback, questions and ideas about the forum itself.",
        "thread_price_msat": 10_000,
        "reply_price_msat": 2_000,
        "position": 2,
    },
)

WELCOME = """Every post here, including this one, is a **signed Nostr event** that arrived as a
**Lightning keysend payment**. The sats are the spam filter: a board sets its price and
posting again within a few minutes costs more.

To reply:

1. write below,
2. press *Get price*,
3. pay with the **demo wallet** (simulated sats, nothing real).

Your browser keeps a key for you; export it from *Your key* at the top. Every post has a
*verify* link to its raw signed JSON."""

# (board, title, content, sender node) for threads; replies point at a thread by index and
# optionally at an earlier reply (by index in DEMO_REPLIES) as their parent.
DEMO_THREADS = (
    ("general", "Welcome: every post here is paid by keysend", WELCOME, "alice"),
    (
        "lightning-dev",
        "How big can a keysend post be?",
        "The onion leaves about 1,200 bytes for custom records on a direct channel and ~53 "
        "fewer per extra hop. Longer posts are split into parts; see `docs/protocol.md`.",
        "bob",
    ),
)
DEMO_REPLIES = (
    (
        0,
        None,
        "Paid 5 sats to say hello. Feels strangely good to know nobody can flood this.",
        "bob",
    ),
    (0, 0, "Same here. And if you post again right away the price doubles: try it.", "alice"),
    (
        1,
        None,
        "Multipart worked for me with a 3 kB post: four parts, settled in any order.",
        "alice",
    ),
)

SEED_TIMEOUT_SECONDS = 60


def _pay(event, sender: str, amount_msat: int, forum_pubkey: str) -> None:
    from forum import protocol
    from forum.services import node

    budget = protocol.onion_budget_for_records(3)
    parts = protocol.split_event(event, budget=budget)
    share = -(-amount_msat // len(parts))
    client = node.client(sender)
    # All parts at once: in hold mode the forum settles a set only when every part arrived.
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        payments = list(
            pool.map(lambda records: client.keysend(forum_pubkey, share, records), parts)
        )
    for payment in payments:
        if not payment.succeeded:
            raise DemoWalletError(f"seed payment failed: {payment.failure_reason}")


def _price(board, event) -> int:
    from forum.ingest.pricing import price_for

    # The author's current price (escalation counts their earlier seed posts).
    return price_for(board=board, kind=event.kind, pubkey=event.pubkey).price_msat


def _wait_listener(timeout: float) -> None:
    """Wait until the listener holds its lease and has had a moment to subscribe: a keysend
    that settles before the stream opens is only picked up by the next sweep (tens of
    seconds later), and a newcomer should see the demo posts at once."""
    from forum.models import ListenerCursor

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ListenerCursor.objects.exclude(lease_holder="").exists():
            time.sleep(1.0)
            return
        time.sleep(0.2)


def _wait_published(event_ids: list[str], timeout: float) -> bool:
    from forum.models import Event

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Event.objects.filter(event_id__in=event_ids, state=Event.State.PUBLISHED).count()
        if done == len(event_ids):
            return True
        time.sleep(0.2)
    return False


def demo_seed(*, timeout: float = SEED_TIMEOUT_SECONDS) -> bool:
    """Seed boards and demo posts once (no-op when any board exists). Returns True if it seeded.

    The posts are paid by keysend from simnet's demo nodes, so the listener records them and
    reconciliation publishes them: the seeded forum is the same a rebuild from the node gives.
    """
    from forum import nostr
    from forum.models import Board
    from forum.services import node
    from forum.services.moderation.boards import board_create

    if Board.objects.exists():
        return False
    for values in DEMO_BOARDS:
        board_create(actor=None, reason="demo seed (first run)", **values)
    forum_pubkey = _forum_node_pubkey()
    _wait_listener(timeout)
    nodes = node.simnet_nodes()
    boards = {b.slug: b for b in Board.objects.all()}
    # Each demo author gets a fresh key; the `ln` tag names their simnet node for refunds.
    keys = {name: nostr.generate_secret_key() for name in ("alice", "bob")}
    threads = []
    for slug, title, content, sender in DEMO_THREADS:
        event = nostr.thread_event(
            keys[sender],
            board=slug,
            title=title,
            content=content,
            ln_node=nodes.get(sender, {}).get("pubkey"),
        )
        _pay(event, sender, _price(boards[slug], event), forum_pubkey)
        threads.append(event)
        _wait_published([event.id], timeout)
    if not _wait_published([t.id for t in threads], timeout):
        log.warning("demo seed: threads not published within %ss; replies skipped", timeout)
        return True
    replies: list[nostr.Event] = []
    for thread_index, parent_index, content, sender in DEMO_REPLIES:
        root = threads[thread_index]
        event = nostr.reply_event(
            keys[sender],
            board=root.tag_value("h") or "",
            root=root,
            parent=replies[parent_index] if parent_index is not None else None,
            content=content,
            ln_node=nodes.get(sender, {}).get("pubkey"),
        )
        _pay(event, sender, _price(boards[root.tag_value("h") or ""], event), forum_pubkey)
        replies.append(event)
        _wait_published([event.id], timeout)
    log.info(
        "demo seed: %d boards, %d threads, %d replies", len(DEMO_BOARDS), len(threads), len(replies)
    )
    return True


def startup_hook(embedded) -> None:
    """STARTUP_HOOKS entry: seed the demo forum in the background (first run only)."""
    if not (settings.DEMO_MODE and settings.SIMNET_ENABLED):
        return

    def run(stop) -> None:
        try:
            demo_seed()
        except Exception:
            log.exception("demo seed failed (the forum runs without demo content)")

    embedded.spawn("demo-seed", run)
