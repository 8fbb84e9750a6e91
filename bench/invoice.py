"""Posts paid by BOLT11 hold invoice: how long issuing an invoice takes, and from a wallet's
payment to the published post.

    .venv/bin/python bench/invoice.py [--posts 30] [--concurrency 4] [--scan-seconds 2]

Everything in one process, as the embedded default runs (see bench/double_pay.py): simnet over
real gRPC sockets, the listener with its hold reviewer, reconciliation run eagerly, a scratch
SQLite database. Each post is a new thread from a fresh key: `invoice_for_post` checks it and
issues its hold invoice (timed: the verdict, AddHoldInvoice, the row), then alice's node pays it
(`SendPaymentV2.payment_request`); the time to published runs from the payment's start until
the post is published (the reviewer finds held invoices on its scan, every `--scan-seconds`,
the setting `HOLD_SCAN_SECONDS`, 2 s by default, so that scan dominates). Posts run `--concurrency` at a time. Alice must be charged exactly one
price per post. The last line is

    invoice: N posts, issue p50 A ms / p95 B ms, paid->published p50 C ms / p95 D ms,
    charged E msat for F msat of prices, scan S s
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox import (  # noqa: E402 (after the path is set)
    THREAD_PRICE_MSAT,
    balance_msat,
    listening_simnet,
    setup_django,
)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_post(n: int) -> tuple[float, float]:
    """(seconds to issue the invoice, seconds from paying it to the post published)."""
    from forum import nostr
    from forum.models import Event
    from forum.services import node
    from forum.services.invoices import invoice_for_post

    event = nostr.thread_event(
        nostr.generate_secret_key(), board="general", title=f"bench {n}", content="by invoice"
    )
    started = time.perf_counter()
    issued = invoice_for_post(event=event.to_dict(), client_ip=f"10.0.{n // 250}.{n % 250}")
    issue = time.perf_counter() - started
    paying = time.perf_counter()
    payment = node.client("alice").pay_invoice(issued.intent.payment_request)
    if not payment.succeeded:
        raise SystemExit(f"bench: post {n} not paid: {payment.failure_reason}")
    deadline = time.monotonic() + 60
    while not Event.objects.filter(event_id=event.id, state="published").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: post {n} not published within 60 s")
        time.sleep(0.01)
    return issue, time.perf_counter() - paying


def run(posts: int, concurrency: int, scan_seconds: float) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-invoice-") as tmp:
        data_dir = Path(tmp)
        setup_django(data_dir)
        from django.conf import settings
        from django.db import connection

        settings.INVOICE_MAX_PER_PUBKEY = settings.INVOICE_MAX_PER_CLIENT = posts + 1
        # Set before the listener starts, so that even its hold reviewer's first scan keeps it.
        settings.HOLD_SCAN_SECONDS = scan_seconds

        def timed(n: int) -> tuple[float, float]:
            try:
                return one_post(n)
            finally:
                connection.close()  # each worker thread's own connection

        with listening_simnet(data_dir) as net:
            before = balance_msat(net, "alice")
            with ThreadPoolExecutor(concurrency) as pool:
                results = list(pool.map(timed, range(posts)))
            charged = before - balance_msat(net, "alice")
    issue = [r[0] * 1000 for r in results]
    published = [r[1] * 1000 for r in results]
    print(
        f"issue mean {statistics.mean(issue):.0f} ms, published mean {statistics.mean(published):.0f} ms"
    )
    return (
        f"invoice: {posts} posts, issue p50 {_p(issue, 0.5):.0f} ms / p95 {_p(issue, 0.95):.0f} ms, "
        f"paid->published p50 {_p(published, 0.5):.0f} ms / p95 {_p(published, 0.95):.0f} ms, "
        f"charged {charged} msat for {posts * THREAD_PRICE_MSAT} msat of prices, "
        f"scan {scan_seconds:g} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--scan-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    print(run(args.posts, args.concurrency, args.scan_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
