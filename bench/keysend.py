"""Keysend throughput and delivery delay against simnet, over real TLS gRPC.

    .venv/bin/python bench/keysend.py [--payments 2000] [--concurrency 4] [--record-bytes 400]

Starts the default simnet topology in a temporary directory, in its own
process (``python -m lightning.simnet``) as lnd would be; alice (1 hop) and bob
(2 hops) pay the forum node concurrently with one custom record each,
while a listener process on the forum node streams SubscribeInvoices. Prints
payments/s (wall time of the timed run) and the p50/p99 delay from the
sender's SendPaymentV2 success to the receiver's SETTLED event (negative when
the receiver hears first, as it usually does on a real network). The last
line is ``keysend: N payments, X/s, p50 A ms, p99 B ms``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import multiprocessing.synchronize
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lightning.client import LightningClient  # noqa: E402
from lightning.types import LightningUnavailable  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def start_simnet(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, tuple[str, str]]]:
    """simnet in a child process; returns it and {node: (pubkey, lndconnect URI)}."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning.simnet", "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    nodes = {}
    for _ in range(5):
        name, pubkey, _address, uri = proc.stdout.readline().split()
        nodes[name] = (pubkey, uri)
    return proc, nodes


def listen(uri: str, expected: int, ready: mp.synchronize.Event, out: mp.Queue) -> None:
    """The forum's listener, in its own process as in production: hash -> SETTLED time."""
    settled_at: dict[str, float] = {}
    stop = threading.Event()
    with LightningClient.from_lndconnect(uri) as client:
        events = client.invoice_events(add_index=0, settle_index=0, stop=stop)
        ready.set()  # the subscription is registered once the first read starts
        try:
            for inv in events:
                if inv.state == "SETTLED":
                    # CLOCK_MONOTONIC is system-wide, so comparable with the parent.
                    settled_at[inv.payment_hash] = time.monotonic()
                    if len(settled_at) == expected:
                        break
        except LightningUnavailable:
            pass
    out.put(settled_at)


def run(payments: int, concurrency: int, record_bytes: int, data_dir: Path) -> str:
    proc, nodes = start_simnet(data_dir)
    forum_pubkey = nodes["forum"][0]
    senders = [LightningClient.from_lndconnect(nodes[n][1]) for n in ("alice", "bob")]
    warmup = min(50, payments)
    ready, out = mp.Event(), mp.Queue()
    listener = mp.Process(target=listen, args=(nodes["forum"][1], warmup + payments, ready, out))
    listener.start()
    ready.wait(30)
    time.sleep(0.5)  # let the subscription reach the server before the first payment
    record = {34349334: os.urandom(record_bytes // 2).hex().encode()[:record_bytes]}

    def pay(i: int) -> tuple[str, float]:
        client: LightningClient = senders[i % 2]
        payment = client.keysend(forum_pubkey, 10_000, record)
        if not payment.succeeded:
            raise RuntimeError(f"payment {i} failed: {payment.failure_reason}")
        return payment.payment_hash, time.monotonic()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(pay, range(warmup)))  # warm-up: connections, caches
        started = time.monotonic()
        results = list(pool.map(pay, range(payments)))
        elapsed = time.monotonic() - started

    settled_at: dict[str, float] = out.get(timeout=60)
    listener.join(timeout=10)
    missing = [h for h, _ in results if h not in settled_at]
    if missing:
        raise RuntimeError(f"{len(missing)} payments never showed up as SETTLED events")
    delays_ms = [(settled_at[h] - done) * 1000 for h, done in results]
    for client in senders:
        client.close()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)

    rate = payments / elapsed
    print(f"payments: {payments}, concurrency: {concurrency}, record: {record_bytes} bytes")
    print(f"wall time: {elapsed:.2f} s")
    print(
        f"delay success->SETTLED event: mean {statistics.fmean(delays_ms):.2f} ms, "
        f"min {min(delays_ms):.2f} ms, max {max(delays_ms):.2f} ms"
    )
    return (
        f"keysend: {payments} payments, {rate:.1f}/s, "
        f"p50 {percentile(delays_ms, 50):.2f} ms, p99 {percentile(delays_ms, 99):.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--record-bytes", type=int, default=400)
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    args = parser.parse_args(argv)
    if args.data_dir:
        line = run(args.payments, args.concurrency, args.record_bytes, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-keysend-") as tmp:
            line = run(args.payments, args.concurrency, args.record_bytes, Path(tmp))
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
