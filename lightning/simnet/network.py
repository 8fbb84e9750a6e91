"""The simulated Lightning network: nodes, channels, payments and invoices.

Pure Python, no gRPC: ``servicers`` translates to and from lnd's messages.
One re-entrant lock serializes every state change; a payment (route search,
balance moves on every hop, the receiver's invoice, the sender's record) is
one critical section and one SQLite transaction, so concurrent payments can
never lose or create money and a restart finds a consistent state.

Simplifications, documented in the package docstring: the sender sees every
channel's real balance (so it never needs retries), HTLCs resolve at once
unless a hold invoice (or keysend hold mode) keeps them, and there are no
channel reserves or commitment fees.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import coincurve

from lightning import onion
from lightning.simnet import auth, store
from lightning.types import CUSTOM_RECORD_MIN, KEYSEND_PREIMAGE_RECORD

# lnd enum values (lnrpc), kept as ints so this module needs no stubs.
OPEN, SETTLED, CANCELED, ACCEPTED = 0, 1, 2, 3
HTLC_ACCEPTED, HTLC_SETTLED, HTLC_CANCELED = 0, 1, 2
IN_FLIGHT, SUCCEEDED, FAILED, INITIATED = 1, 2, 3, 4
ATTEMPT_IN_FLIGHT, ATTEMPT_SUCCEEDED, ATTEMPT_FAILED = 0, 1, 2
FAILURE_NONE = 0
FAILURE_TIMEOUT = 1
FAILURE_NO_ROUTE = 2
FAILURE_ERROR = 3
FAILURE_INCORRECT_PAYMENT_DETAILS = 4
FAILURE_INSUFFICIENT_BALANCE = 5
FAILURE_CANCELED = 6
INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS = 1  # lnrpc.Failure.FailureCode

DEFAULT_BLOCK_HEIGHT = 950_000
DEFAULT_FINAL_CLTV_DELTA = 80  # lnd DefaultFinalCltvDelta (Bitcoin.TimeLockDelta)
BLOCK_PADDING = 3  # lnd routing.BlockPadding, added to the final CLTV
KEYSEND_FINAL_CLTV_DELTA = 19  # receiver side: FinalCltvRejectDelta (16 + 3)
DEFAULT_INVOICE_EXPIRY = 86_400
DEFAULT_POLICY = {"base_fee_msat": 1000, "fee_rate_ppm": 1, "time_lock_delta": 80}
TOPOLOGY_FILE = Path(__file__).with_name("topology.json")


class SimnetError(Exception):
    """A request lnd would reject; ``code`` is the gRPC status code name."""

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# -- records ------------------------------------------------------------------


@dataclass
class Node:
    name: str
    alias: str
    color: str
    privkey: bytes
    pubkey: str
    accept_keysend: bool
    root_key: bytes
    macaroon: bytes
    port: int
    keysend_hold_seconds: int = 0  # lnd --keysend-hold-time; 0 settles at once


@dataclass
class ChannelState:
    chan_id: int
    node1: str
    node2: str
    capacity_msat: int
    balance: dict[str, int]  # node name -> local balance, msat
    policy: dict[
        str, tuple[int, int, int]
    ]  # node -> (base msat, ppm, cltv delta) for its outgoing side
    active: bool
    channel_point: str
    num_updates: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    pending: int = 0  # msat locked in HTLCs held by a hold invoice

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], int, int]:
        return dict(self.balance), dict(self.sent), self.num_updates, self.pending

    def restore(self, snap: tuple[dict[str, int], dict[str, int], int, int]) -> None:
        self.balance, self.sent, self.num_updates, self.pending = snap

    def peer(self, name: str) -> str:
        return self.node2 if name == self.node1 else self.node1


@dataclass(frozen=True)
class InvoiceRecord:
    node: str
    add_index: int
    payment_hash: str
    preimage: str | None
    payment_addr: str
    memo: str
    value_msat: int
    amt_paid_msat: int
    state: int
    is_keysend: bool
    settle_index: int
    creation_date: int
    settle_date: int
    expiry: int
    cltv_expiry: int
    payment_request: str
    htlcs: tuple[dict[str, Any], ...]  # chan_id, htlc_index, amt_msat, times, custom_records (hex)
    is_hold: bool = False  # AddHoldInvoice: settled by SettleInvoice, not on payment
    hold_deadline: float = 0.0  # keysend hold mode: auto-cancel time (unix s), 0 = none


@dataclass(frozen=True)
class RouteHop:
    chan_id: int
    pub_key: str
    amt_to_forward_msat: int
    fee_msat: int
    expiry: int
    custom_records: dict[int, str] = field(default_factory=dict)  # final hop only, hex values


@dataclass(frozen=True)
class Route:
    hops: tuple[RouteHop, ...]
    total_amt_msat: int
    total_fees_msat: int
    total_time_lock: int


@dataclass(frozen=True)
class PaymentRecord:
    node: str
    payment_index: int
    payment_hash: str
    preimage: str
    value_msat: int
    fee_msat: int
    status: int
    failure_reason: int
    creation_time_ns: int
    payment_request: str
    htlcs: tuple[dict[str, Any], ...]  # attempt dicts, see _attempt()


@dataclass(frozen=True)
class PaymentRequest:
    """What SendPaymentV2 asked for, already validated by the servicer."""

    dest: str  # pubkey hex
    amt_msat: int
    payment_hash: str
    custom_records: dict[int, bytes]
    fee_limit_msat: int
    final_cltv_delta: int
    payment_request: str = ""
    outgoing_chan_ids: tuple[int, ...] = ()
    timeout_seconds: int = 60
    cancelable: bool = False


class Subscription:
    """A SubscribeInvoices (or single-invoice) listener; events arrive on ``queue``."""

    def __init__(self, node: str, payment_hash: str | None = None) -> None:
        self.node = node
        self.payment_hash = payment_hash
        self.queue: queue.Queue[InvoiceRecord | None] = queue.Queue()

    def close(self) -> None:
        self.queue.put(None)

    def events(self, is_active: Any = lambda: True) -> Iterator[InvoiceRecord]:
        """Live events until closed (None) or ``is_active()`` turns false."""
        while True:
            try:
                item = self.queue.get(timeout=0.5)
            except queue.Empty:
                if not is_active():
                    return
                continue
            if item is None:
                return
            yield item


# -- helpers ------------------------------------------------------------------


def _pubkey(privkey: bytes) -> str:
    return coincurve.PrivateKey(privkey).public_key.format(compressed=True).hex()


def _scid(block: int, tx: int, out: int) -> int:
    return block << 40 | tx << 16 | out


def fee_for(policy: tuple[int, int, int], amt_msat: int) -> int:
    """Routing fee a node charges to forward ``amt_msat`` (lnd: base + amt*ppm/1e6)."""
    base, ppm, _ = policy
    return base + amt_msat * ppm // 1_000_000


def load_topology(topology: Path | dict[str, Any] | None) -> dict[str, Any]:
    if topology is None:
        topology = TOPOLOGY_FILE
    if isinstance(topology, Path | str):
        return json.loads(Path(topology).read_text())
    return topology


def _policy(spec: dict[str, Any], key: str) -> tuple[int, int, int]:
    merged = {**DEFAULT_POLICY, **spec.get("policy", {}), **spec.get(key, {})}
    return (
        int(merged["base_fee_msat"]),
        int(merged["fee_rate_ppm"]),
        int(merged["time_lock_delta"]),
    )


# -- the network --------------------------------------------------------------


class Network:
    """All nodes of one simnet, their channels, invoices and payments."""

    def __init__(self, data_dir: Path, topology: Path | dict[str, Any] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.lock = threading.RLock()
        self.db = store.connect(self.data_dir / "simnet.sqlite3")
        self.nodes: dict[str, Node] = {}
        self.channels: dict[int, ChannelState] = {}
        self.block_height = DEFAULT_BLOCK_HEIGHT
        self._subscriptions: list[Subscription] = []
        self._inflight: set[tuple[str, str]] = set()
        self._last_expiry_check = 0.0
        # Notified whenever a payment record changes (held payments resolving).
        self._payment_changed = threading.Condition()
        with self.lock:
            if self.db.execute("SELECT count(*) FROM nodes").fetchone()[0] == 0:
                self._create(load_topology(topology))
            self._load()
        self._closing = threading.Event()
        self._hold_watcher = threading.Thread(
            target=self._watch_holds, name="simnet-hold-watcher", daemon=True
        )
        self._hold_watcher.start()

    # -- setup --------------------------------------------------------------

    def _create(self, topo: dict[str, Any]) -> None:
        with self._tx():
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('block_height', ?)",
                (str(int(topo.get("block_height", DEFAULT_BLOCK_HEIGHT))),),
            )
            for ord_, spec in enumerate(topo["nodes"]):
                root_key = auth.new_root_key()
                self.db.execute(
                    "INSERT INTO nodes (name, ord, alias, color, privkey, accept_keysend,"
                    " root_key, macaroon, keysend_hold_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        spec["name"],
                        ord_,
                        spec.get("alias", spec["name"]),
                        spec.get("color", "#3399ff"),
                        secrets.token_bytes(32).hex(),
                        int(bool(spec.get("accept_keysend", False))),
                        root_key.hex(),
                        auth.mint_admin_macaroon(root_key).hex(),
                        int(spec.get("keysend_hold_seconds", 0)),
                    ),
                )
            names = {spec["name"] for spec in topo["nodes"]}
            for i, spec in enumerate(topo["channels"]):
                a, b = spec["node1"], spec["node2"]
                if a not in names or b not in names or a == b:
                    raise ValueError(f"channel {i}: bad endpoints {a!r}, {b!r}")
                capacity = int(spec["capacity_sat"]) * 1000
                local1 = int(spec.get("node1_balance_sat", spec["capacity_sat"] // 2)) * 1000
                if not 0 <= local1 <= capacity:
                    raise ValueError(f"channel {i}: node1_balance_sat outside capacity")
                p1, p2 = _policy(spec, "node1_policy"), _policy(spec, "node2_policy")
                chan_id = _scid(self._height(topo) - 1000 + i, 1, 0)
                txid = hashlib.sha256(f"simnet-funding-{a}-{b}-{i}".encode()).hexdigest()
                self.db.execute(
                    "INSERT INTO channels (chan_id, node1, node2, capacity_msat, balance1_msat,"
                    " balance2_msat, base1_msat, ppm1, delta1, base2_msat, ppm2, delta2, active,"
                    " channel_point) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        chan_id,
                        a,
                        b,
                        capacity,
                        local1,
                        capacity - local1,
                        *p1,
                        *p2,
                        int(bool(spec.get("active", True))),
                        f"{txid}:0",
                    ),
                )

    @staticmethod
    def _height(topo: dict[str, Any]) -> int:
        return int(topo.get("block_height", DEFAULT_BLOCK_HEIGHT))

    def _load(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='block_height'").fetchone()
        self.block_height = int(row[0]) if row else DEFAULT_BLOCK_HEIGHT
        for r in self.db.execute("SELECT * FROM nodes ORDER BY ord"):
            privkey = bytes.fromhex(r["privkey"])
            self.nodes[r["name"]] = Node(
                name=r["name"],
                alias=r["alias"],
                color=r["color"],
                privkey=privkey,
                pubkey=_pubkey(privkey),
                accept_keysend=bool(r["accept_keysend"]),
                root_key=bytes.fromhex(r["root_key"]),
                macaroon=bytes.fromhex(r["macaroon"]),
                port=r["port"],
                keysend_hold_seconds=r["keysend_hold_seconds"],
            )
        for r in self.db.execute("SELECT * FROM channels ORDER BY chan_id"):
            a, b = r["node1"], r["node2"]
            self.channels[r["chan_id"]] = ChannelState(
                chan_id=r["chan_id"],
                node1=a,
                node2=b,
                capacity_msat=r["capacity_msat"],
                balance={a: r["balance1_msat"], b: r["balance2_msat"]},
                policy={
                    a: (r["base1_msat"], r["ppm1"], r["delta1"]),
                    b: (r["base2_msat"], r["ppm2"], r["delta2"]),
                },
                active=bool(r["active"]),
                channel_point=r["channel_point"],
                num_updates=r["num_updates"],
                sent={a: r["sent1_msat"], b: r["sent2_msat"]},
                pending=r["pending_msat"],
            )
        self._by_pubkey = {n.pubkey: n.name for n in self.nodes.values()}

    def set_port(self, name: str, port: int) -> None:
        with self.lock, self._tx():
            self.nodes[name].port = port
            self.db.execute("UPDATE nodes SET port=? WHERE name=?", (port, name))

    def set_keysend_hold(self, name: str, seconds: int) -> None:
        """Change a node's keysend hold time on an existing network.

        The topology only applies to a new data dir; this is lnd restarted with another
        ``--keysend-hold-time`` (0 = settle at once). Payments already held keep their deadline.
        """
        if seconds < 0:
            raise ValueError("hold time must be >= 0 seconds")
        with self.lock, self._tx():
            self.nodes[name].keysend_hold_seconds = int(seconds)
            self.db.execute(
                "UPDATE nodes SET keysend_hold_seconds=? WHERE name=?", (int(seconds), name)
            )

    @property
    def shutting_down(self) -> bool:
        return self._closing.is_set()

    def begin_shutdown(self) -> None:
        """End every stream: subscriptions close, payment waiters give up."""
        self._closing.set()
        with self.lock:
            for sub in self._subscriptions:
                sub.close()
            self._subscriptions.clear()
        self._notify_payment()

    def close(self) -> None:
        self.begin_shutdown()
        self._hold_watcher.join(timeout=5)
        with self.lock:
            self.db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- queries ------------------------------------------------------------

    def node_by_pubkey(self, pubkey: str) -> Node | None:
        name = self._by_pubkey.get(pubkey)
        return self.nodes[name] if name else None

    def node_channels(self, name: str) -> list[ChannelState]:
        with self.lock:
            return [
                replace(c, balance=dict(c.balance), sent=dict(c.sent))
                for c in self.channels.values()
                if name in (c.node1, c.node2)
            ]

    def total_balance_msat(self) -> int:
        """Sum of every channel side; constant unless channels are added."""
        with self.lock:
            return sum(sum(c.balance.values()) + c.pending for c in self.channels.values())

    # -- invoices -----------------------------------------------------------

    @staticmethod
    def _invoice_from_row(r: Any) -> InvoiceRecord:
        return InvoiceRecord(
            node=r["node"],
            add_index=r["add_index"],
            payment_hash=r["payment_hash"],
            preimage=r["preimage"],
            payment_addr=r["payment_addr"],
            memo=r["memo"],
            value_msat=r["value_msat"],
            amt_paid_msat=r["amt_paid_msat"],
            state=r["state"],
            is_keysend=bool(r["is_keysend"]),
            settle_index=r["settle_index"],
            creation_date=r["creation_date"],
            settle_date=r["settle_date"],
            expiry=r["expiry"],
            cltv_expiry=r["cltv_expiry"],
            payment_request=r["payment_request"],
            htlcs=tuple(json.loads(r["htlcs"])),
            is_hold=bool(r["is_hold"]),
            hold_deadline=r["hold_deadline"],
        )

    def _insert_invoice(self, inv: InvoiceRecord) -> None:
        self.db.execute(
            "INSERT INTO invoices (node, add_index, payment_hash, preimage, payment_addr, memo,"
            " value_msat, amt_paid_msat, state, is_keysend, settle_index, creation_date,"
            " settle_date, expiry, cltv_expiry, payment_request, htlcs, is_hold, hold_deadline)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                inv.node,
                inv.add_index,
                inv.payment_hash,
                inv.preimage,
                inv.payment_addr,
                inv.memo,
                inv.value_msat,
                inv.amt_paid_msat,
                inv.state,
                int(inv.is_keysend),
                inv.settle_index,
                inv.creation_date,
                inv.settle_date,
                inv.expiry,
                inv.cltv_expiry,
                inv.payment_request,
                json.dumps(list(inv.htlcs)),
                int(inv.is_hold),
                inv.hold_deadline,
            ),
        )

    def _update_invoice(self, inv: InvoiceRecord) -> None:
        self.db.execute(
            "UPDATE invoices SET state=?, amt_paid_msat=?, settle_index=?, settle_date=?,"
            " htlcs=?, preimage=?, hold_deadline=? WHERE node=? AND add_index=?",
            (
                inv.state,
                inv.amt_paid_msat,
                inv.settle_index,
                inv.settle_date,
                json.dumps(list(inv.htlcs)),
                inv.preimage,
                inv.hold_deadline,
                inv.node,
                inv.add_index,
            ),
        )

    def _next_index(self, node: str, column: str) -> int:
        row = self.db.execute(
            f"SELECT coalesce(max({column}), 0) FROM invoices WHERE node=?", (node,)
        ).fetchone()
        return int(row[0]) + 1

    def add_invoice(
        self,
        node: str,
        *,
        value_msat: int,
        memo: str,
        expiry: int,
        preimage: bytes | None,
        cltv_expiry: int = 0,
        make_request: Any = None,
        hold_hash: str | None = None,
    ) -> InvoiceRecord:
        """A regular (non-keysend) OPEN invoice; ``make_request`` builds its BOLT 11 string.

        With ``hold_hash`` it is a hold invoice: the caller keeps the preimage,
        a payment leaves it ACCEPTED until ``settle_invoice`` or ``cancel_invoice``.
        """
        if hold_hash is None:
            preimage = preimage or secrets.token_bytes(32)
            payment_hash = hashlib.sha256(preimage).hexdigest()
        else:
            preimage, payment_hash = None, hold_hash
        with self.lock:
            if self._find_invoice(node, payment_hash) is not None:
                raise SimnetError("invoice with payment hash already exists", "ALREADY_EXISTS")
            now = int(time.time())
            inv = InvoiceRecord(
                node=node,
                add_index=self._next_index(node, "add_index"),
                payment_hash=payment_hash,
                preimage=preimage.hex() if preimage else None,
                payment_addr=secrets.token_bytes(32).hex(),
                memo=memo,
                value_msat=value_msat,
                amt_paid_msat=0,
                state=OPEN,
                is_keysend=False,
                settle_index=0,
                creation_date=now,
                settle_date=0,
                expiry=expiry or DEFAULT_INVOICE_EXPIRY,
                cltv_expiry=cltv_expiry or DEFAULT_FINAL_CLTV_DELTA,
                payment_request="",
                htlcs=(),
                is_hold=hold_hash is not None,
            )
            if make_request is not None:
                inv = replace(inv, payment_request=make_request(inv))
            with self._tx():
                self._insert_invoice(inv)
            self._dispatch(inv, add_event=True)
            return inv

    def _find_invoice(self, node: str, payment_hash: str) -> InvoiceRecord | None:
        row = self.db.execute(
            "SELECT * FROM invoices WHERE node=? AND payment_hash=?", (node, payment_hash)
        ).fetchone()
        return self._invoice_from_row(row) if row else None

    def lookup_invoice(
        self, node: str, *, payment_hash: str | None = None, payment_addr: str | None = None
    ) -> InvoiceRecord:
        with self.lock:
            self._expire_invoices()
            if payment_addr is not None:
                row = self.db.execute(
                    "SELECT * FROM invoices WHERE node=? AND payment_addr=?", (node, payment_addr)
                ).fetchone()
                inv = self._invoice_from_row(row) if row else None
            else:
                inv = self._find_invoice(node, payment_hash or "")
            if inv is not None:
                return inv
            if self.db.execute("SELECT 1 FROM invoices WHERE node=?", (node,)).fetchone() is None:
                # lnd's ErrNoInvoicesCreated, also mapped to NOT_FOUND.
                raise SimnetError("there are no existing invoices", "NOT_FOUND")
            raise SimnetError("unable to locate invoice", "NOT_FOUND")

    def list_invoices(
        self,
        node: str,
        *,
        index_offset: int,
        num_max: int,
        reversed_: bool,
        pending_only: bool,
        date_start: int = 0,
        date_end: int = 0,
    ) -> tuple[list[InvoiceRecord], int, int]:
        """lnd QueryInvoices: (invoices in add order, first_index_offset, last_index_offset)."""
        where = ["node=?"]
        args: list[Any] = [node]
        if reversed_:
            if index_offset:
                where.append("add_index < ?")
                args.append(index_offset)
        else:
            where.append("add_index > ?")
            args.append(index_offset)
        if pending_only:
            where.append(f"state IN ({OPEN}, {ACCEPTED})")
        if date_start:
            where.append("creation_date >= ?")
            args.append(date_start)
        if date_end:
            where.append("creation_date <= ?")
            args.append(date_end)
        order = "DESC" if reversed_ else "ASC"
        sql = (
            f"SELECT * FROM invoices WHERE {' AND '.join(where)} ORDER BY add_index {order} LIMIT ?"
        )
        with self.lock:
            self._expire_invoices()
            rows = [self._invoice_from_row(r) for r in self.db.execute(sql, (*args, num_max))]
        # lnd returns pages in add order even when it walked them backwards.
        rows.sort(key=lambda inv: inv.add_index)
        if not rows:
            return [], 0, 0
        return rows, rows[0].add_index, rows[-1].add_index

    def cancel_invoice(self, node: str, payment_hash: str) -> None:
        with self.lock:
            inv = self._find_invoice(node, payment_hash)
            if inv is None:
                raise SimnetError("unable to locate invoice", "NOT_FOUND")
            if inv.state == SETTLED:
                raise SimnetError("invoice already settled")
            if inv.state == CANCELED:
                return
            if inv.state == ACCEPTED:
                self._resolve_held(inv, settle=False)
                return
            inv = replace(inv, state=CANCELED)
            with self._tx():
                self._update_invoice(inv)
            self._dispatch(inv, add_event=False)

    def settle_invoice(self, node: str, preimage: bytes) -> None:
        """invoicesrpc.SettleInvoice: release an ACCEPTED hold invoice."""
        payment_hash = hashlib.sha256(preimage).hexdigest()
        with self.lock:
            inv = self._find_invoice(node, payment_hash)
            if inv is None:
                raise SimnetError("unable to locate invoice", "NOT_FOUND")
            if inv.state == SETTLED:
                return  # lnd: settling a settled invoice succeeds
            if inv.state == CANCELED:
                raise SimnetError("invoice already canceled")
            if inv.state == OPEN:
                raise SimnetError("invoice still open")
            self._resolve_held(inv, settle=True, preimage=preimage.hex())

    def _watch_holds(self) -> None:
        # lnd cancels keysend hold invoices nobody settled within the hold time.
        while not self._closing.wait(0.2):
            with self.lock:
                if self._closing.is_set():
                    return
                due = [
                    self._invoice_from_row(r)
                    for r in self.db.execute(
                        "SELECT * FROM invoices WHERE state=? AND hold_deadline > 0"
                        " AND hold_deadline <= ?",
                        (ACCEPTED, time.time()),
                    )
                ]
                for inv in due:
                    self._resolve_held(inv, settle=False)

    def _expire_invoices(self) -> None:
        # lnd's expiry watcher cancels OPEN invoices past their expiry; once a
        # second is plenty for a simulator.
        now = time.time()
        if now - self._last_expiry_check < 1.0:
            return
        self._last_expiry_check = now
        expired = [
            self._invoice_from_row(r)
            for r in self.db.execute(
                "SELECT * FROM invoices WHERE state=? AND is_keysend=0"
                " AND creation_date + expiry < ?",
                (OPEN, int(now)),
            )
        ]
        if not expired:
            return
        with self._tx():
            for inv in expired:
                self._update_invoice(replace(inv, state=CANCELED))
        for inv in expired:
            self._dispatch(replace(inv, state=CANCELED), add_event=False)

    # -- subscriptions ------------------------------------------------------

    def subscribe_invoices(
        self, node: str, add_index: int, settle_index: int
    ) -> tuple[list[InvoiceRecord], Subscription]:
        """Backlog and live subscription, taken atomically so nothing slips between.

        lnd's deliverBacklogEvents: 0 means no backlog; otherwise every invoice
        with a strictly greater add index (current state), then every one with
        a strictly greater settle index.
        """
        with self.lock:
            backlog: list[InvoiceRecord] = []
            if add_index:
                backlog += [
                    self._invoice_from_row(r)
                    for r in self.db.execute(
                        "SELECT * FROM invoices WHERE node=? AND add_index > ? ORDER BY add_index",
                        (node, add_index),
                    )
                ]
            if settle_index:
                backlog += [
                    self._invoice_from_row(r)
                    for r in self.db.execute(
                        "SELECT * FROM invoices WHERE node=? AND settle_index > ?"
                        " ORDER BY settle_index",
                        (node, settle_index),
                    )
                ]
            sub = Subscription(node)
            self._subscriptions.append(sub)
            return backlog, sub

    def subscribe_single(self, node: str, payment_hash: str) -> tuple[InvoiceRecord, Subscription]:
        with self.lock:
            inv = self._find_invoice(node, payment_hash)
            if inv is None:
                raise SimnetError("unable to locate invoice", "NOT_FOUND")
            sub = Subscription(node, payment_hash)
            self._subscriptions.append(sub)
            return inv, sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self.lock, contextlib.suppress(ValueError):
            self._subscriptions.remove(sub)

    def _dispatch(self, inv: InvoiceRecord, *, add_event: bool) -> None:
        # SubscribeInvoices sees only add (OPEN) and SETTLED events, as in lnd;
        # SubscribeSingleInvoice sees every state change.
        general = add_event or inv.state == SETTLED
        for sub in self._subscriptions:
            if sub.node != inv.node:
                continue
            if sub.payment_hash is None:
                if general:
                    sub.queue.put(inv)
            elif sub.payment_hash == inv.payment_hash:
                sub.queue.put(inv)

    # -- payments -----------------------------------------------------------

    @staticmethod
    def _payment_from_row(r: Any) -> PaymentRecord:
        return PaymentRecord(
            node=r["node"],
            payment_index=r["payment_index"],
            payment_hash=r["payment_hash"],
            preimage=r["preimage"],
            value_msat=r["value_msat"],
            fee_msat=r["fee_msat"],
            status=r["status"],
            failure_reason=r["failure_reason"],
            creation_time_ns=r["creation_time_ns"],
            payment_request=r["payment_request"],
            htlcs=tuple(json.loads(r["htlcs"])),
        )

    def _find_payment(self, node: str, payment_hash: str) -> PaymentRecord | None:
        row = self.db.execute(
            "SELECT * FROM payments WHERE node=? AND payment_hash=?", (node, payment_hash)
        ).fetchone()
        return self._payment_from_row(row) if row else None

    def lookup_payment(self, node: str, payment_hash: str) -> PaymentRecord | None:
        with self.lock:
            if self.shutting_down:
                # Stream handlers may outlive the server's grace period.
                raise SimnetError("simnet is shutting down", "UNAVAILABLE")
            return self._find_payment(node, payment_hash)

    def list_payments(
        self,
        node: str,
        *,
        include_incomplete: bool,
        index_offset: int,
        max_payments: int,
        reversed_: bool,
    ) -> tuple[list[PaymentRecord], int]:
        where = ["node=?"]
        args: list[Any] = [node]
        if not include_incomplete:
            where.append(f"status = {SUCCEEDED}")
        cond = " AND ".join(where)
        if reversed_:
            if index_offset:
                cond += " AND payment_index < ?"
                args.append(index_offset)
        else:
            cond += " AND payment_index > ?"
            args.append(index_offset)
        order = "DESC" if reversed_ else "ASC"
        with self.lock:
            rows = [
                self._payment_from_row(r)
                for r in self.db.execute(
                    f"SELECT * FROM payments WHERE {cond} ORDER BY payment_index {order} LIMIT ?",
                    (*args, max_payments),
                )
            ]
            total = self.db.execute(
                "SELECT count(*) FROM payments WHERE node=?", (node,)
            ).fetchone()[0]
        rows.sort(key=lambda p: p.payment_index)
        return rows, total

    def begin_payment(self, node: str, payment_hash: str) -> None:
        """Claim a payment hash, or raise lnd's ALREADY_EXISTS errors."""
        with self.lock:
            if (node, payment_hash) in self._inflight:
                raise SimnetError("payment is in transition", "ALREADY_EXISTS")
            existing = self._find_payment(node, payment_hash)
            if existing is not None and existing.status == SUCCEEDED:
                raise SimnetError("invoice is already paid", "ALREADY_EXISTS")
            if existing is not None and existing.status == IN_FLIGHT:
                raise SimnetError("payment is in transition", "ALREADY_EXISTS")
            if existing is not None and existing.status != FAILED:
                raise SimnetError("payment already exists", "ALREADY_EXISTS")
            # A FAILED payment may be retried with the same hash, as in lnd.
            self._inflight.add((node, payment_hash))

    def cancel_payment_loop(self, node: str, payment_hash: str) -> None:
        """SendPaymentV2 with ``cancelable``: the client went away.

        As in lnd this only stops new attempts; a held HTLC may still settle,
        and if it fails the reason is FAILURE_REASON_CANCELED.
        """
        with self.lock:
            if self.shutting_down:
                return
            payment = self._find_payment(node, payment_hash)
            if payment is None or payment.status != IN_FLIGHT or not payment.htlcs:
                return
            attempt = {**payment.htlcs[-1], "canceled_at_ns": time.time_ns()}
            with self._tx():
                self.db.execute(
                    "UPDATE payments SET htlcs=? WHERE node=? AND payment_index=?",
                    (json.dumps([attempt]), node, payment.payment_index),
                )

    def is_in_flight(self, node: str, payment_hash: str) -> bool:
        with self.lock:
            return (node, payment_hash) in self._inflight

    def abandon_payment(self, node: str, payment_hash: str) -> None:
        with self.lock:
            self._inflight.discard((node, payment_hash))
        self._notify_payment()

    def _notify_payment(self) -> None:
        with self._payment_changed:
            self._payment_changed.notify_all()

    def wait_payment_change(self, timeout: float) -> None:
        """Block until some payment changes (or ``timeout`` s): for streams that wait."""
        with self._payment_changed:
            self._payment_changed.wait(timeout)

    def in_flight_record(self, node: str, req: PaymentRequest) -> PaymentRecord:
        return PaymentRecord(
            node=node,
            payment_index=0,
            payment_hash=req.payment_hash,
            preimage="",
            value_msat=req.amt_msat,
            fee_msat=0,
            status=IN_FLIGHT,
            failure_reason=FAILURE_NONE,
            creation_time_ns=time.time_ns(),
            payment_request=req.payment_request,
            htlcs=(),
        )

    def execute_payment(self, node: str, req: PaymentRequest, created_ns: int) -> PaymentRecord:
        """Route, move balances and settle at the receiver, all or nothing."""
        try:
            with self.lock:
                return self._execute(node, req, created_ns)
        finally:
            self.abandon_payment(node, req.payment_hash)

    def _execute(self, node: str, req: PaymentRequest, created_ns: int) -> PaymentRecord:
        self._expire_invoices()
        dest = self.node_by_pubkey(req.dest)
        record = PaymentRecord(
            node=node,
            payment_index=0,
            payment_hash=req.payment_hash,
            preimage="",
            value_msat=req.amt_msat,
            fee_msat=0,
            status=FAILED,
            failure_reason=FAILURE_NONE,
            creation_time_ns=created_ns,
            payment_request=req.payment_request,
            htlcs=(),
        )
        outbound = sum(
            c.balance[node]
            for c in self.channels.values()
            if c.active
            and node in (c.node1, c.node2)
            and (not req.outgoing_chan_ids or c.chan_id in req.outgoing_chan_ids)
        )
        route = None
        if outbound < req.amt_msat:
            # lnd findPath: total local outbound below the amount.
            record = replace(record, failure_reason=FAILURE_INSUFFICIENT_BALANCE)
        elif dest is None or dest.name == node:
            record = replace(record, failure_reason=FAILURE_NO_ROUTE)
        else:
            route = self.find_route(node, dest.name, req)
            if route is None:
                record = replace(record, failure_reason=FAILURE_NO_ROUTE)
        if route is None or dest is None:
            return self._store_payment(record)

        now = int(time.time())
        attempt: dict[str, Any] = {
            "attempt_id": 0,
            "route": _route_dict(route),
            "attempt_time_ns": created_ns,
            "resolve_time_ns": time.time_ns(),
            # simnet bookkeeping for a held HTLC that fails later (not on the wire)
            "timeout_at_ns": created_ns + req.timeout_seconds * 1_000_000_000,
        }
        reject = self._receiver_rejects(dest, req)
        if reject:
            attempt |= {
                "status": ATTEMPT_FAILED,
                "failure_code": INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
                "failure_source_index": len(route.hops),
            }
            record = replace(
                record, failure_reason=FAILURE_INCORRECT_PAYMENT_DETAILS, htlcs=(attempt,)
            )
            return self._store_payment(record)

        inv = self._find_invoice(dest.name, req.payment_hash)
        keysend = KEYSEND_PREIMAGE_RECORD in req.custom_records
        hold = (inv is not None and inv.is_hold) or (keysend and dest.keysend_hold_seconds > 0)
        preimage = self._receiver_preimage(dest, req)
        touched = [self.channels[hop.chan_id] for hop in route.hops]
        snapshot = [c.snapshot() for c in touched]
        try:
            with self._tx():
                htlc_index = self._lock_htlcs(node, route)
                if hold:
                    # The receiver accepts and holds the HTLC: the sender's
                    # payment stays IN_FLIGHT until SettleInvoice/CancelInvoice.
                    attempt |= {"status": ATTEMPT_IN_FLIGHT, "resolve_time_ns": 0}
                    record = replace(
                        record,
                        status=IN_FLIGHT,
                        fee_msat=route.total_fees_msat,
                        htlcs=(attempt,),
                    )
                    deadline = time.time() + dest.keysend_hold_seconds if keysend else 0.0
                    events = self._receive_htlc(
                        dest, req, route, htlc_index, now, sender=node, hold_deadline=deadline
                    )
                else:
                    self._release_htlcs(node, route, settle=True)
                    attempt |= {"status": ATTEMPT_SUCCEEDED, "preimage": preimage}
                    record = replace(
                        record,
                        status=SUCCEEDED,
                        preimage=preimage or "",
                        fee_msat=route.total_fees_msat,
                        htlcs=(attempt,),
                    )
                    events = self._receive_htlc(
                        dest, req, route, htlc_index, now, sender=node, settle_preimage=preimage
                    )
                for chan in touched:
                    self._save_channel(chan)
                record = self._store_payment(record, in_tx=True)
        except BaseException:
            # The transaction rolled back; keep memory in step with the disk.
            for chan, snap in zip(touched, snapshot, strict=True):
                chan.restore(snap)
            raise
        for event, is_add in events:
            self._dispatch(event, add_event=is_add)
        return record

    def _receiver_rejects(self, dest: Node, req: PaymentRequest) -> bool:
        keysend_preimage = req.custom_records.get(KEYSEND_PREIMAGE_RECORD)
        if keysend_preimage is not None:
            # bLIP-0003: without --accept-keysend, or a preimage not matching
            # the hash, the receiver fails with incorrect_or_unknown_payment_details.
            if not dest.accept_keysend:
                return True
            if hashlib.sha256(keysend_preimage).hexdigest() != req.payment_hash:
                return True
            return self._find_invoice(dest.name, req.payment_hash) is not None
        inv = self._find_invoice(dest.name, req.payment_hash)
        return (
            inv is None
            or inv.state != OPEN
            or (inv.preimage is None and not inv.is_hold)
            or req.amt_msat < inv.value_msat
            # lnd rejects paying more than twice the invoice amount.
            or bool(inv.value_msat and req.amt_msat > 2 * inv.value_msat)
        )

    def _receiver_preimage(self, dest: Node, req: PaymentRequest) -> str | None:
        keysend_preimage = req.custom_records.get(KEYSEND_PREIMAGE_RECORD)
        if keysend_preimage is not None:
            return keysend_preimage.hex()
        inv = self._find_invoice(dest.name, req.payment_hash)
        assert inv is not None
        return inv.preimage  # None for a hold invoice: only its creator knows it

    @staticmethod
    def _hop_amounts(
        sender: str, hops: list[tuple[int, int]], channels: dict[int, ChannelState]
    ) -> Iterator[tuple[ChannelState, str, str, int]]:
        """(channel, payer side, payee side, HTLC amount) for each hop of a route."""
        prev = sender
        for chan_id, amount in hops:
            chan = channels[chan_id]
            nxt = chan.peer(prev)
            yield chan, prev, nxt, amount
            prev = nxt

    @staticmethod
    def _route_amounts(route: Route) -> list[tuple[int, int]]:
        # The HTLC on each channel carries what the next node receives: forward + fee.
        return [(h.chan_id, h.amt_to_forward_msat + h.fee_msat) for h in route.hops]

    def _lock_htlcs(self, sender: str, route: Route) -> int:
        """Take each hop's HTLC amount off the payer side; returns the last HTLC index."""
        htlc_index = 0
        for chan, payer, _payee, amount in self._hop_amounts(
            sender, self._route_amounts(route), self.channels
        ):
            if chan.balance[payer] < amount:  # find_route checked; guard anyway
                raise RuntimeError("route no longer has the liquidity it was found with")
            chan.balance[payer] -= amount
            chan.pending += amount
            htlc_index = chan.num_updates
            chan.num_updates += 1
        return htlc_index

    def _release_htlcs(
        self, sender: str, route: Route | list[tuple[int, int]], *, settle: bool
    ) -> None:
        """Settle (pay the payee side) or fail (refund the payer side) locked HTLCs."""
        amounts = self._route_amounts(route) if isinstance(route, Route) else route
        for chan, payer, payee, amount in self._hop_amounts(sender, amounts, self.channels):
            chan.pending -= amount
            if settle:
                chan.balance[payee] += amount
                chan.sent[payer] = chan.sent.get(payer, 0) + amount
            else:
                chan.balance[payer] += amount

    def _save_channel(self, chan: ChannelState) -> None:
        self.db.execute(
            "UPDATE channels SET balance1_msat=?, balance2_msat=?, sent1_msat=?,"
            " sent2_msat=?, num_updates=?, pending_msat=? WHERE chan_id=?",
            (
                chan.balance[chan.node1],
                chan.balance[chan.node2],
                chan.sent.get(chan.node1, 0),
                chan.sent.get(chan.node2, 0),
                chan.num_updates,
                chan.pending,
                chan.chan_id,
            ),
        )

    def _receive_htlc(
        self,
        dest: Node,
        req: PaymentRequest,
        route: Route,
        htlc_index: int,
        now: int,
        *,
        sender: str,
        settle_preimage: str | None = None,
        hold_deadline: float = 0.0,
    ) -> list[tuple[InvoiceRecord, bool]]:
        """The receiver's side: a keysend's just-in-time invoice, the HTLC, the new state.

        Settles at once when ``settle_preimage`` is given, otherwise holds the
        HTLC (invoice ACCEPTED, seen only by SubscribeSingleInvoice).
        """
        events: list[tuple[InvoiceRecord, bool]] = []
        inv = self._find_invoice(dest.name, req.payment_hash)
        keysend_preimage = req.custom_records.get(KEYSEND_PREIMAGE_RECORD)
        if inv is None:
            # Keysend: lnd inserts an OPEN invoice just in time (an add event),
            # then accepts and settles it.
            inv = InvoiceRecord(
                node=dest.name,
                add_index=self._next_index(dest.name, "add_index"),
                payment_hash=req.payment_hash,
                preimage=keysend_preimage.hex() if keysend_preimage else None,
                payment_addr="",
                memo="",
                value_msat=req.amt_msat,
                amt_paid_msat=0,
                state=OPEN,
                is_keysend=True,
                settle_index=0,
                creation_date=now,
                settle_date=0,
                expiry=DEFAULT_INVOICE_EXPIRY,
                cltv_expiry=KEYSEND_FINAL_CLTV_DELTA,
                payment_request="",
                htlcs=(),
                is_hold=hold_deadline > 0,
            )
            self._insert_invoice(inv)
            events.append((inv, True))
        settled = settle_preimage is not None
        htlc = {
            "chan_id": route.hops[-1].chan_id,
            "htlc_index": htlc_index,
            "amt_msat": req.amt_msat,
            "accept_height": self.block_height,
            "accept_time": now,
            "resolve_time": now if settled else 0,
            "expiry_height": route.total_time_lock,
            "state": HTLC_SETTLED if settled else HTLC_ACCEPTED,
            # lnd keeps every onion TLV >= 65536, the keysend preimage included.
            "custom_records": {
                str(t): v.hex()
                for t, v in sorted(req.custom_records.items())
                if t >= CUSTOM_RECORD_MIN
            },
            "mpp_total_amt_msat": req.amt_msat,
            "sender": sender,  # simnet bookkeeping, not on the wire
        }
        inv = replace(inv, amt_paid_msat=req.amt_msat, htlcs=(*inv.htlcs, htlc))
        if settled:
            inv = replace(
                inv,
                state=SETTLED,
                preimage=settle_preimage,
                settle_index=self._next_index(dest.name, "settle_index"),
                settle_date=now,
            )
        else:
            inv = replace(inv, state=ACCEPTED, hold_deadline=hold_deadline)
        self._update_invoice(inv)
        events.append((inv, False))
        return events

    def _resolve_held(
        self, inv: InvoiceRecord, *, settle: bool, preimage: str | None = None
    ) -> None:
        """Settle or cancel an ACCEPTED hold invoice and finish the sender's payment."""
        sender = inv.htlcs[-1]["sender"]
        payment = self._find_payment(sender, inv.payment_hash)
        assert payment is not None, "a held HTLC always has its payment"
        attempt = dict(payment.htlcs[-1])
        amounts = [
            (h["chan_id"], h["amt_to_forward_msat"] + h["fee_msat"])
            for h in attempt["route"]["hops"]
        ]
        touched = [self.channels[chan_id] for chan_id, _ in amounts]
        snapshot = [c.snapshot() for c in touched]
        now = int(time.time())
        attempt["resolve_time_ns"] = time.time_ns()
        htlc_state = HTLC_SETTLED if settle else HTLC_CANCELED
        htlcs = tuple({**h, "state": htlc_state, "resolve_time": now} for h in inv.htlcs)
        if settle:
            preimage = preimage or inv.preimage
            inv = replace(
                inv,
                state=SETTLED,
                preimage=preimage,
                htlcs=htlcs,
                settle_index=self._next_index(inv.node, "settle_index"),
                settle_date=now,
                hold_deadline=0,
            )
            attempt |= {"status": ATTEMPT_SUCCEEDED, "preimage": preimage}
            payment = replace(payment, status=SUCCEEDED, preimage=preimage or "", htlcs=(attempt,))
        else:
            inv = replace(inv, state=CANCELED, htlcs=htlcs, amt_paid_msat=0, hold_deadline=0)
            attempt |= {
                "status": ATTEMPT_FAILED,
                "failure_code": INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
                "failure_source_index": len(amounts),
            }
            payment = replace(
                payment,
                status=FAILED,
                fee_msat=0,
                failure_reason=_held_failure_reason(attempt),
                htlcs=(attempt,),
            )
        try:
            with self._tx():
                self._release_htlcs(sender, amounts, settle=settle)
                for chan in touched:
                    self._save_channel(chan)
                self._update_invoice(inv)
                self.db.execute(
                    "UPDATE payments SET status=?, preimage=?, fee_msat=?, failure_reason=?,"
                    " htlcs=? WHERE node=? AND payment_index=?",
                    (
                        payment.status,
                        payment.preimage,
                        payment.fee_msat,
                        payment.failure_reason,
                        json.dumps(list(payment.htlcs)),
                        payment.node,
                        payment.payment_index,
                    ),
                )
        except BaseException:
            for chan, snap in zip(touched, snapshot, strict=True):
                chan.restore(snap)
            raise
        self._dispatch(inv, add_event=False)
        self._notify_payment()

    def _store_payment(self, record: PaymentRecord, *, in_tx: bool = False) -> PaymentRecord:
        ctx = contextlib.nullcontext() if in_tx else self._tx()
        with ctx:
            existing = self._find_payment(record.node, record.payment_hash)
            if existing is not None:
                self.db.execute(
                    "DELETE FROM payments WHERE node=? AND payment_hash=?",
                    (record.node, record.payment_hash),
                )
            row = self.db.execute(
                "SELECT coalesce(max(payment_index), 0) FROM payments WHERE node=?",
                (record.node,),
            ).fetchone()
            record = replace(record, payment_index=int(row[0]) + 1)
            self.db.execute(
                "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.node,
                    record.payment_index,
                    record.payment_hash,
                    record.preimage,
                    record.value_msat,
                    record.fee_msat,
                    record.status,
                    record.failure_reason,
                    record.creation_time_ns,
                    record.payment_request,
                    json.dumps(list(record.htlcs)),
                ),
            )
        return record

    # -- pathfinding --------------------------------------------------------

    def find_route(self, source: str, target: str, req: PaymentRequest) -> Route | None:
        """Cheapest route with the liquidity, fee limit and onion budget, or None.

        Dijkstra backwards from the target, like lnd's findPath: each label
        carries the amount that must arrive at the node, its CLTV and the
        onion bytes used by the hops after it. Paths over 1300 bytes are
        skipped, exactly where lnd skips them.
        """
        final_cltv = self.block_height + req.final_cltv_delta + BLOCK_PADDING
        record_sizes = {t: len(v) for t, v in req.custom_records.items()}
        final_payload = onion.HopPayload(req.amt_msat, final_cltv, custom_records=record_sizes)
        start = _Label(
            fee=0,
            hops=0,
            node=target,
            amt_in=req.amt_msat,
            cltv_in=final_cltv,
            size=final_payload.size(),
            path=(),
        )
        if start.size > onion.MAX_ROUTING_PAYLOAD:
            return None
        heap: list[tuple[int, int, int, _Label]] = [(0, 0, 0, start)]
        best: dict[str, tuple[int, int]] = {target: (0, 0)}
        counter = 0
        while heap:
            _, _, _, label = heapq.heappop(heap)
            if label.node == source:
                return self._build_route(source, label, req)
            if best.get(label.node, (label.fee, label.hops)) < (label.fee, label.hops):
                continue
            visited = {target, *(step[1] for step in label.path)}
            for chan in self.channels.values():
                if not chan.active or label.node not in (chan.node1, chan.node2):
                    continue
                prev = chan.peer(label.node)
                if prev in visited or chan.balance[prev] < label.amt_in:
                    continue
                if prev == source:
                    if req.outgoing_chan_ids and chan.chan_id not in req.outgoing_chan_ids:
                        continue
                    nxt = replace(
                        label, node=source, path=((chan.chan_id, label.node), *label.path)
                    )
                else:
                    policy = chan.policy[prev]
                    fee = fee_for(policy, label.amt_in)
                    payload = onion.HopPayload(
                        label.amt_in, label.cltv_in, next_chan_id=chan.chan_id
                    )
                    nxt = _Label(
                        fee=label.fee + fee,
                        hops=label.hops + 1,
                        node=prev,
                        amt_in=label.amt_in + fee,
                        cltv_in=label.cltv_in + policy[2],
                        size=label.size + payload.size(),
                        path=((chan.chan_id, label.node), *label.path),
                    )
                    if nxt.size > onion.MAX_ROUTING_PAYLOAD or nxt.fee > req.fee_limit_msat:
                        continue
                    if len(nxt.path) >= onion.MAX_HOPS:
                        continue
                key = (nxt.fee, nxt.hops)
                if prev in best and best[prev] <= key:
                    continue
                best[prev] = key
                counter += 1
                heapq.heappush(heap, (nxt.fee, nxt.hops, counter, nxt))
        return None

    def _build_route(self, source: str, label: _Label, req: PaymentRequest) -> Route:
        """Turn the label's (chan_id, node) steps into lnd-style hops."""
        final_cltv = self.block_height + req.final_cltv_delta + BLOCK_PADDING
        steps = list(label.path)
        # Walk backwards to compute what each hop forwards and charges.
        hops: list[RouteHop] = []
        amt, cltv = req.amt_msat, final_cltv
        for i in range(len(steps) - 1, -1, -1):
            chan_id, node = steps[i]
            is_final = i == len(steps) - 1
            if is_final:
                fee = 0
            else:
                next_chan = self.channels[steps[i + 1][0]]
                policy = next_chan.policy[node]
                fee = fee_for(policy, amt)
            hops.append(
                RouteHop(
                    chan_id=chan_id,
                    pub_key=self.nodes[node].pubkey,
                    amt_to_forward_msat=amt,
                    fee_msat=fee,
                    expiry=cltv,
                    custom_records=(
                        {t: v.hex() for t, v in sorted(req.custom_records.items())}
                        if is_final
                        else {}
                    ),
                )
            )
            if not is_final:
                cltv += policy[2]
            amt += fee
        hops.reverse()
        total_fees = sum(h.fee_msat for h in hops)
        return Route(
            hops=tuple(hops),
            total_amt_msat=req.amt_msat + total_fees,
            total_fees_msat=total_fees,
            total_time_lock=cltv,
        )


@dataclass(frozen=True)
class _Label:
    fee: int
    hops: int
    node: str
    amt_in: int  # what must arrive at ``node``
    cltv_in: int
    size: int  # onion bytes of the hops from ``node`` to the target
    path: tuple[tuple[int, str], ...]  # (chan_id, node at the far end), source side first


def _held_failure_reason(attempt: dict[str, Any]) -> int:
    """Why a held payment failed: whichever of lnd's payment-loop ends came first.

    lnd marks a payment failed when its timeout fires or its context is
    canceled; the in-flight HTLC failing afterwards keeps that reason.
    """
    now = time.time_ns()
    timeout_at = attempt.get("timeout_at_ns", now + 1)
    canceled_at = attempt.get("canceled_at_ns", now + 1)
    if min(timeout_at, canceled_at) > now:
        return FAILURE_INCORRECT_PAYMENT_DETAILS
    return FAILURE_CANCELED if canceled_at < timeout_at else FAILURE_TIMEOUT


def _route_dict(route: Route) -> dict[str, Any]:
    return {
        "total_time_lock": route.total_time_lock,
        "total_fees_msat": route.total_fees_msat,
        "total_amt_msat": route.total_amt_msat,
        "hops": [
            {
                "chan_id": h.chan_id,
                "pub_key": h.pub_key,
                "amt_to_forward_msat": h.amt_to_forward_msat,
                "fee_msat": h.fee_msat,
                "expiry": h.expiry,
                "custom_records": {str(k): v for k, v in h.custom_records.items()},
            }
            for h in route.hops
        ],
    }
