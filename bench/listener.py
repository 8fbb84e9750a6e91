"""Listener catch-up benchmark: a node holding N settled keysends the forum has never seen.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lnforum .venv/bin/python bench/listener.py \\
        --invoices 20000

Starts simnet in its own process (as lnd would run), pays the forum node N keysends that
carry signed threads from alice and bob, then runs a fresh forum listener (in this process,
on a scratch database `<name>_bench_listener`) until every settled invoice is in the ledger.
The rate is N over the listener's start -> last row written; it also checks that every
settled invoice is recorded exactly once and that the cursor reached the node's settle index.
The last line is

    listener: N invoices, X invoices/s, lost L, duplicated D

`fill_node` is shared with `bench/rebuild.py`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import scratch_database, wait_for  # noqa: E402
from bench.keysend import start_simnet  # noqa: E402


def fill_node(nodes: dict[str, tuple[str, str]], count: int, *, concurrency: int = 8) -> None:
    """Pay the forum node `count` keysends with signed threads on board "general"."""
    from forum import nostr, protocol
    from lightning.client import LightningClient

    forum_pubkey = nodes["forum"][0]
    senders = [LightningClient.from_lndconnect(nodes[n][1]) for n in ("alice", "bob")] * 2
    keys = [nostr.generate_secret_key() for _ in range(64)]
    records = [
        protocol.encode_event(
            nostr.thread_event(keys[i % 64], board="general", title=f"t{i}", content=f"post {i}")
        )
        for i in range(count)
    ]

    def pay(i: int) -> None:
        payment = senders[i % len(senders)].keysend(forum_pubkey, 10_000, records[i])
        if not payment.succeeded:
            raise RuntimeError(f"payment {i} failed: {payment.failure_reason}")

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(pay, range(count)))
    print(f"paid {count} keysends in {time.monotonic() - started:.0f} s", file=sys.stderr)
    for client in senders:
        client.close()


def django_on(database_url: str, work: Path) -> None:
    os.environ.update(
        DATABASE_URL=database_url,
        FORUM_DATA_DIR=str(work),
        SIMNET="0",
        HOLD_MODE="0",
        LOG_LEVEL="WARNING",
        REDIS_URL="",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=dict(os.environ),
        check=True,
    )
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: set DATABASE_URL to a PostgreSQL server (postgres://...)")
    work = Path(tempfile.mkdtemp(prefix="bench-listener-"))
    proc, nodes = start_simnet(work / "simnet")
    try:
        django_on(scratch_database(args.database_url, "_bench_listener"), work)
        fill_node(nodes, args.invoices)
        return run(nodes, args.invoices)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def run(nodes: dict[str, tuple[str, str]], count: int) -> int:
    from forum.ingest.listener import Listener, settled_backlog
    from forum.models import LedgerEntry, ListenerCursor
    from lightning.client import LightningClient

    client = LightningClient.from_lndconnect(nodes["forum"][1])
    on_node = {inv.payment_hash: inv.settle_index for inv in settled_backlog(client)}
    listener = Listener(
        client=client, node_pubkey=nodes["forum"][0], on_recorded=lambda recorded: None
    )
    stop = threading.Event()
    runner = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    started = time.monotonic()
    runner.start()
    wait_for(lambda: LedgerEntry.objects.count() >= len(on_node), 600, "the ledger to fill")
    elapsed = time.monotonic() - started
    stop.set()
    runner.join(30)
    recorded = dict(LedgerEntry.objects.values_list("payment_hash", "settle_index"))
    lost = len(on_node.keys() - recorded.keys())
    duplicated = LedgerEntry.objects.count() - len(recorded)
    wrong = sum(recorded.get(h) != i for h, i in on_node.items())
    cursor = ListenerCursor.objects.get(node_pubkey=nodes["forum"][0])
    print(
        f"{listener.batches} batches; cursor at {cursor.settle_index} of {max(on_node.values())}; "
        f"{wrong} rows with a wrong settle index",
        file=sys.stderr,
    )
    print(
        f"listener: {count} invoices, {len(recorded) / elapsed:.0f} invoices/s, "
        f"lost {lost}, duplicated {duplicated}"
    )
    client.close()
    return 0 if not (lost or duplicated or wrong) else 1


if __name__ == "__main__":
    raise SystemExit(main())
