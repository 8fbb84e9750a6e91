"""rebuild_from_node benchmark: the forum rebuilt from a node holding N paid posts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lnforum .venv/bin/python bench/rebuild.py \\
        --invoices 20000

Starts simnet in its own process, pays the forum node N keysends carrying signed threads
(`bench.listener.fill_node`), then runs `forum_rebuild_from_node` on a scratch database
(`<name>_bench_rebuild`): the node's invoice history recorded in chunks and reconciled by the
same batches as the live pipeline. It checks that every paid thread is published once. The
last line is

    rebuild: N invoices, X invoices/s, published P
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import scratch_database  # noqa: E402
from bench.keysend import start_simnet  # noqa: E402
from bench.listener import django_on, fill_node  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: set DATABASE_URL to a PostgreSQL server (postgres://...)")
    work = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    proc, nodes = start_simnet(work / "simnet")
    try:
        django_on(scratch_database(args.database_url, "_bench_rebuild"), work)
        from forum.models import Board

        # No escalation: every paid thread is published, so the check below is exact.
        Board.objects.create(slug="general", title="General", escalation_factor=1)
        fill_node(nodes, args.invoices)
        return run(nodes, args.invoices)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def run(nodes: dict[str, tuple[str, str]], count: int) -> int:
    from forum.models import Event, LedgerEntry, Thread
    from forum.services.rebuild import forum_rebuild_from_node
    from lightning.client import LightningClient

    client = LightningClient.from_lndconnect(nodes["forum"][1])
    started = time.monotonic()
    report = forum_rebuild_from_node(client=client)
    elapsed = time.monotonic() - started
    client.close()
    published = Event.objects.filter(state=Event.State.PUBLISHED).count()
    threads = Thread.objects.count()
    rows = LedgerEntry.objects.count()
    print(f"{report.as_dict()}; {rows} ledger rows, {threads} threads", file=sys.stderr)
    print(
        f"rebuild: {count} invoices, {report.invoices / elapsed:.0f} invoices/s, published {published}"
    )
    return 0 if published == count == threads else 1


if __name__ == "__main__":
    raise SystemExit(main())
