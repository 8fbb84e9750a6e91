"""simnet's on-disk state: one SQLite file per simulated network.

Every state change of a payment (balances, the receiver's invoice, the
sender's payment record) is written in one transaction, so a crash or a
restart never leaves money half-moved. The schema is private to simnet.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    ord INTEGER NOT NULL,
    alias TEXT NOT NULL,
    color TEXT NOT NULL,
    privkey TEXT NOT NULL,
    accept_keysend INTEGER NOT NULL,
    root_key TEXT NOT NULL,
    macaroon TEXT NOT NULL,
    port INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS channels (
    chan_id INTEGER PRIMARY KEY,
    node1 TEXT NOT NULL,
    node2 TEXT NOT NULL,
    capacity_msat INTEGER NOT NULL,
    balance1_msat INTEGER NOT NULL,
    balance2_msat INTEGER NOT NULL,
    base1_msat INTEGER NOT NULL,
    ppm1 INTEGER NOT NULL,
    delta1 INTEGER NOT NULL,
    base2_msat INTEGER NOT NULL,
    ppm2 INTEGER NOT NULL,
    delta2 INTEGER NOT NULL,
    active INTEGER NOT NULL,
    channel_point TEXT NOT NULL,
    num_updates INTEGER NOT NULL DEFAULT 0,
    sent1_msat INTEGER NOT NULL DEFAULT 0,
    sent2_msat INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS invoices (
    node TEXT NOT NULL,
    add_index INTEGER NOT NULL,
    payment_hash TEXT NOT NULL,
    preimage TEXT,
    payment_addr TEXT NOT NULL,
    memo TEXT NOT NULL,
    value_msat INTEGER NOT NULL,
    amt_paid_msat INTEGER NOT NULL,
    state INTEGER NOT NULL,
    is_keysend INTEGER NOT NULL,
    settle_index INTEGER NOT NULL,
    creation_date INTEGER NOT NULL,
    settle_date INTEGER NOT NULL,
    expiry INTEGER NOT NULL,
    cltv_expiry INTEGER NOT NULL,
    payment_request TEXT NOT NULL,
    htlcs TEXT NOT NULL,
    PRIMARY KEY (node, add_index),
    UNIQUE (node, payment_hash)
);
CREATE INDEX IF NOT EXISTS invoices_settle ON invoices (node, settle_index);
CREATE INDEX IF NOT EXISTS invoices_state ON invoices (node, state);
CREATE TABLE IF NOT EXISTS payments (
    node TEXT NOT NULL,
    payment_index INTEGER NOT NULL,
    payment_hash TEXT NOT NULL,
    preimage TEXT NOT NULL,
    value_msat INTEGER NOT NULL,
    fee_msat INTEGER NOT NULL,
    status INTEGER NOT NULL,
    failure_reason INTEGER NOT NULL,
    creation_time_ns INTEGER NOT NULL,
    payment_request TEXT NOT NULL,
    htlcs TEXT NOT NULL,
    PRIMARY KEY (node, payment_index),
    UNIQUE (node, payment_hash)
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the network database.

    One connection shared by all server threads; the network's lock
    serializes every use, so ``check_same_thread`` is off on purpose.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    # Durable against process crashes (what restarts test); fsync per payment
    # would cap throughput for no benefit to a simulator.
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    for table, column, decl in _ADDED_COLUMNS:
        existing = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in existing:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    return db


# Columns added after the first schema, so older data dirs keep working.
_ADDED_COLUMNS = (
    ("nodes", "keysend_hold_seconds", "INTEGER NOT NULL DEFAULT 0"),
    ("channels", "pending_msat", "INTEGER NOT NULL DEFAULT 0"),
    ("invoices", "is_hold", "INTEGER NOT NULL DEFAULT 0"),
    ("invoices", "hold_deadline", "INTEGER NOT NULL DEFAULT 0"),
)
