"""Demo mode (the embedded default): a funded demo wallet and a seeded forum on first run.

* `demo_keysend` is the demo wallet: a real gRPC keysend from simnet's `alice` node (the demo
  user) to the forum node, exactly what a browser wallet would do; `demo_pay_invoice` pays one
  of the forum's BOLT11 invoices from the same node (SendPaymentV2.payment_request).
* `demo_seed` creates five boards with prices and, on first run, threads with replies, tips
  and a pinned welcome thread by five demo authors. Everything goes through the real path,
  keysend from simnet's demo nodes to the forum node, so the ledger holds it and the listener
  and reconciliation publish it like any other post.
* `demo_node_flags` is how the how-to-post page and the composer show node-runner commands
  that work here: a demo user's simnet node stands in for the reader's own lnd.
* `startup_hook` is the line in `forum.embedded.STARTUP_HOOKS` that runs the seeding in the
  background of `make run`.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from lightning.client import LightningClient
    from lightning.types import Payment

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
    if not settings.DEMO_MODE:
        raise DemoWalletError("demo mode is off")
    if destination != _forum_node_pubkey():
        # The demo wallet only pays the forum: it must not become a faucet for anything else.
        raise DemoWalletError("the demo wallet only pays the forum's own node")
    if not 0 < amount_sat <= MAX_DEMO_PAYMENT_SAT:
        raise DemoWalletError(f"amount must be between 1 and {MAX_DEMO_PAYMENT_SAT:,} sats")
    records = {record_type: value.encode("utf-8") for record_type, value in custom_records.items()}
    return _demo_pay(lambda client: client.keysend(destination, amount_sat * 1000, records))


def demo_pay_invoice(*, payment_request: str) -> DemoPayment:
    """Pay a BOLT11 invoice of the forum's node from the demo user's node (SendPaymentV2 with
    the payment request, as a phone wallet would); raises DemoWalletError with lnd's reason.

    A hold invoice for a post stays in flight until the forum settles or cancels it.
    """
    from lightning.simnet import bolt11

    if not settings.DEMO_MODE:
        raise DemoWalletError("demo mode is off")
    try:
        decoded = bolt11.decode(payment_request)
    except ValueError as exc:
        raise DemoWalletError(f"not an invoice: {exc}") from None
    if decoded.payee != _forum_node_pubkey():
        raise DemoWalletError("the demo wallet only pays the forum's own node")
    if not 0 < decoded.amount_msat <= MAX_DEMO_PAYMENT_SAT * 1000:
        raise DemoWalletError(f"amount must be between 1 and {MAX_DEMO_PAYMENT_SAT:,} sats")
    return _demo_pay(lambda client: client.pay_invoice(payment_request))


def _demo_pay(send: Callable[[LightningClient], Payment]) -> DemoPayment:
    """Run `send` on the demo user's node; DemoWalletError with lnd's reason when it fails."""
    from forum.services import node
    from lightning.types import LightningError

    try:
        payment = send(node.client(DEMO_WALLET_NODE))
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


# --- commands that work here -------------------------------------------------------------------

# The demo user node the how-to-post page and the composer's "pay from my own node" box use
# for command-line examples (the browser's demo wallet pays from alice).
DEMO_CLI_NODE = "bob"


@dataclass(frozen=True)
class DemoNodeFlags:
    """lncli-style flags that reach a demo user's simnet node, as a person would type them."""

    name: str
    pubkey: str
    rpcserver: str
    tlscertpath: str
    macaroonpath: str

    @property
    def flags(self) -> str:
        return (
            f"--rpcserver {self.rpcserver} --tlscertpath {self.tlscertpath} "
            f"--macaroonpath {self.macaroonpath}"
        )


def _as_typed(path: str) -> str:
    """A path as typed from the project's directory (where `make run` runs), quoted if needed."""
    full = Path(path)
    try:
        shown = str(full.relative_to(settings.BASE_DIR))
    except ValueError:
        shown = str(full)
    return shlex.quote(shown)


def demo_node_flags(name: str = DEMO_CLI_NODE) -> DemoNodeFlags | None:
    """The flags for a demo user's node in demo mode with simnet running, else None (the
    commands then show a real lnd's usual paths)."""
    from forum.services import node

    if not (settings.DEMO_MODE and settings.SIMNET_ENABLED):
        return None
    found = node.simnet_nodes().get(name)
    if not found:
        return None
    return DemoNodeFlags(
        name=name,
        pubkey=found["pubkey"],
        rpcserver=found["host"],
        tlscertpath=_as_typed(found["tls_cert"]),
        macaroonpath=_as_typed(found["macaroon"]),
    )


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
        "slug": "nostr",
        "title": "Nostr",
        "description": "Keys, signers, relays and NIPs: the other half of every post here.",
        "thread_price_msat": 21_000,
        "reply_price_msat": 3_000,
        "position": 2,
    },
    {
        "slug": "show-and-tell",
        "title": "Show and tell",
        "description": "Things you built with sats and signatures. Screenshots welcome.",
        "thread_price_msat": 10_000,
        "reply_price_msat": 2_000,
        "position": 3,
    },
    {
        "slug": "meta",
        "title": "About this forum",
        "description": "Feedback, questions and ideas about the forum itself.",
        "thread_price_msat": 10_000,
        "reply_price_msat": 2_000,
        "position": 4,
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
*verify* link that checks its signature in your browser."""


@dataclass(frozen=True)
class SeedThread:
    name: str  # how replies and tips below point at it
    board: str
    title: str
    content: str
    author: str  # one of DEMO_AUTHORS
    pinned: bool = False


@dataclass(frozen=True)
class SeedReply:
    thread: str  # SeedThread.name
    author: str
    content: str
    parent: int | None = None  # index of an earlier reply in the same thread


@dataclass(frozen=True)
class SeedTip:
    thread: str  # SeedThread.name
    reply: int | None  # index of its reply, or None for the thread itself
    sats: int
    payer: str  # the simnet node that pays it


# Demo authors: each gets a fresh key; the simnet node named here pays for their posts and is
# named in their `ln` tag (where refunds and forwarded tips go).
DEMO_AUTHORS = {"alice": "alice", "bob": "bob", "carol": "alice", "dave": "bob", "erin": "alice"}

# In seeding order. The pinned welcome thread comes last: its title is what the browser tests
# (and a newcomer's first look) wait for, and by then the rest of the forum is there.
DEMO_THREADS = (
    SeedThread(
        "onion",
        "lightning-dev",
        "How big can a keysend post be?",
        "The onion leaves about 1,200 bytes for custom records on a direct channel and ~53 "
        "fewer per extra hop. Longer posts are split into parts; see `docs/protocol.md`.",
        "bob",
    ),
    SeedThread(
        "hold",
        "lightning-dev",
        "Hold mode: refused posts cost nothing",
        "The forum's node holds each keysend while the forum checks it, then settles or "
        "cancels. I sent 1 sat for a 21 sat thread to try it: my wallet said the payment "
        "failed, the composer said why, and my balance did not move.",
        "carol",
    ),
    SeedThread(
        "price",
        "general",
        "What is a fair price for a reply?",
        "5 sats a reply feels like nothing, yet it is enough that nobody bothers to spam. "
        "Would you pay more for a board with better moderation?",
        "dave",
    ),
    SeedThread(
        "nip07",
        "nostr",
        "Signing with a NIP-07 extension",
        "If your browser has a Nostr signer (nos2x, Alby…), the composer asks it to sign; "
        "otherwise it makes a key and keeps it in this browser. Either way the signature is "
        "checked by the forum before anything is published.",
        "erin",
    ),
    SeedThread(
        "relays",
        "nostr",
        "Is this forum a relay too?",
        "It answers NIP-01 at `/relay`: paid events can be read by any Nostr client. "
        "Writing still needs sats, of course.",
        "dave",
    ),
    SeedThread(
        "cli",
        "show-and-tell",
        "Posting from my own node with the forum's client",
        "`forum.client post` signs with a key file, quotes the price, splits long posts into "
        "parts and pays by keysend through my lnd. When the forum refuses something it "
        "prints why and the price now.",
        "bob",
    ),
    SeedThread(
        "ideas",
        "meta",
        "Ideas for the forum",
        "What would make you post here more often? I would like a digest of the week's "
        "threads by email.",
        "alice",
    ),
    SeedThread(
        "welcome",
        "general",
        "Welcome: every post here is paid by keysend",
        WELCOME,
        "alice",
        pinned=True,
    ),  # fmt: skip
)
DEMO_REPLIES = (
    SeedReply(
        "onion",
        "alice",
        "Multipart worked for me with a 3 kB post: three parts, sent at once, published together.",
    ),  # fmt: skip
    SeedReply(
        "onion",
        "carol",
        "And each part carries the event id, so they can arrive in any order.",
        parent=0,
    ),  # fmt: skip
    SeedReply("hold", "bob", "Same here. Cancelled, not charged, and the reason on the page."),
    SeedReply(
        "hold",
        "dave",
        "Does a moderator see those attempts? Useful to spot someone probing the rules.",
    ),  # fmt: skip
    SeedReply(
        "hold",
        "carol",
        "They do: listed as refused and never charged, apart from payments that were kept.",
        parent=1,
    ),  # fmt: skip
    SeedReply(
        "price",
        "erin",
        "Price per post plus escalation is what makes it work: the "
        "second post in ten minutes costs double.",
    ),  # fmt: skip
    SeedReply("price", "bob", "I would pay 50 sats for a board where every answer is good."),
    SeedReply(
        "price", "dave", "Fair. Tips are the other half: good answers earn sats back.", parent=1
    ),  # fmt: skip
    SeedReply("nip07", "alice", "Exported my browser key into nos2x, works the same."),
    SeedReply(
        "relays",
        "carol",
        "Tried it from a Nostr client: the threads are there, signatures and all.",
    ),  # fmt: skip
    SeedReply("cli", "dave", "Nice. `--hops` sizes the parts for a longer route."),
    SeedReply("ideas", "erin", "A way to follow one thread without keeping the tab open."),
    SeedReply("ideas", "bob", "Private rooms already exist: pay once, share the password."),
    SeedReply(
        "welcome",
        "bob",
        "Paid 5 sats to say hello. Feels strangely good to know nobody can flood this.",
    ),  # fmt: skip
    SeedReply(
        "welcome",
        "alice",
        "Same here. And if you post again right away the price doubles: try it.",
        parent=0,
    ),  # fmt: skip
    SeedReply(
        "welcome",
        "erin",
        "The verify link is my favourite part: the browser checks the signature itself.",
    ),  # fmt: skip
)
DEMO_TIPS = (
    SeedTip("onion", 0, 100, "bob"),
    SeedTip("hold", None, 50, "bob"),
    SeedTip("price", 1, 21, "alice"),
    SeedTip("cli", None, 42, "alice"),
    SeedTip("welcome", None, 210, "bob"),
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


def _tip(event_id: str, sender: str, sats: int, forum_pubkey: str) -> None:
    from forum import protocol
    from forum.services import node

    payment = node.client(sender).keysend(forum_pubkey, sats * 1000, protocol.encode_tip(event_id))
    if not payment.succeeded:
        raise DemoWalletError(f"seed tip failed: {payment.failure_reason}")


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
        time.sleep(0.05)
    return False


def demo_seed(*, timeout: float = SEED_TIMEOUT_SECONDS) -> bool:
    """Seed boards, threads with replies, tips and a pinned welcome thread once (no-op when any
    board exists). Returns True if it seeded.

    Every post and tip is paid by keysend from simnet's demo nodes, so the listener records
    them and reconciliation publishes them: the seeded forum is the same a rebuild from the
    node gives. Each post is waited for before the next (the next author's price, and a
    reply's parent, depend on it); the web server answers meanwhile.
    """
    from forum import nostr
    from forum.models import Board, Thread
    from forum.services import node
    from forum.services.moderation.boards import board_create
    from forum.services.moderation.pin import thread_pin

    if Board.objects.exists():
        return False
    for values in DEMO_BOARDS:
        board_create(actor=None, reason="demo seed (first run)", **values)
    forum_pubkey = _forum_node_pubkey()
    _wait_listener(timeout)
    nodes = node.simnet_nodes()
    boards = {b.slug: b for b in Board.objects.all()}
    keys = {name: nostr.generate_secret_key() for name in DEMO_AUTHORS}

    def ln_node(author: str) -> str | None:
        return nodes.get(DEMO_AUTHORS[author], {}).get("pubkey")

    def publish(event: nostr.Event, author: str, board: str) -> bool:
        _pay(event, DEMO_AUTHORS[author], _price(boards[board], event), forum_pubkey)
        if _wait_published([event.id], timeout):
            return True
        log.warning("demo seed: %s not published within %ss; stopping", event.id, timeout)
        return False

    threads: dict[str, nostr.Event] = {}
    replies: dict[str, list[nostr.Event]] = {}
    tips = 0
    for seed in DEMO_THREADS:
        event = nostr.thread_event(
            keys[seed.author],
            board=seed.board,
            title=seed.title,
            content=seed.content,
            ln_node=ln_node(seed.author),
        )
        if not publish(event, seed.author, seed.board):
            return True
        threads[seed.name] = event
        if seed.pinned:
            thread = Thread.objects.get(event__event_id=event.id)
            thread_pin(actor=None, thread=thread, reason="demo seed: the welcome thread")
        for reply in (r for r in DEMO_REPLIES if r.thread == seed.name):
            earlier = replies.setdefault(seed.name, [])
            event = nostr.reply_event(
                keys[reply.author],
                board=seed.board,
                root=threads[seed.name],
                parent=earlier[reply.parent] if reply.parent is not None else None,
                content=reply.content,
                ln_node=ln_node(reply.author),
            )
            if not publish(event, reply.author, seed.board):
                return True
            earlier.append(event)
        for tip in (t for t in DEMO_TIPS if t.thread == seed.name):
            target = threads[seed.name] if tip.reply is None else replies[seed.name][tip.reply]
            _tip(target.id, tip.payer, tip.sats, forum_pubkey)
            tips += 1
    log.info(
        "demo seed: %d boards, %d threads, %d replies, %d tips",
        len(DEMO_BOARDS),
        len(threads),
        sum(len(r) for r in replies.values()),
        tips,
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
