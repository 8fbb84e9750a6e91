"""Ingest benchmark: signed posts paid through simnet, recorded by the listener, published by
real Celery worker processes on PostgreSQL + Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lnforum REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/ingest.py --posts 2000 --rate 200 --workers 4

It creates a scratch database (`<name>_bench_ingest`, dropped and re-created), runs simnet,
the listener and one prefork worker as subprocesses, and sends N new threads from N fresh keys
(so escalation does not reject any) at a fixed offered rate from a pool of sender threads.
Latency is settle -> published: from the moment the sender's keysend returned SUCCEEDED
(the forum node settled it before answering) to `Thread.published_at` written by the worker.
Throughput is N over first settle -> last published. The last line is

    ingest: N posts, X posts/s, p50 A ms, p99 B ms
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scratch_database(url: str, suffix: str = "_bench_ingest") -> str:
    """Drop and create `<name><suffix>` next to the configured database; return its URL."""
    import psycopg

    parts = urlsplit(url)
    name = (parts.path.lstrip("/") or "lnforum") + suffix
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"bench: timed out waiting for {what}")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, *argv: str) -> tuple[subprocess.Popen, Path]:
        log = self.logs / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.running.append(proc)
        return proc, log

    def stop(self) -> None:
        for proc in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200, help="offered posts/s (0: flat out)")
    parser.add_argument("--workers", type=int, default=4, help="celery prefork concurrency")
    parser.add_argument("--senders", type=int, default=16, help="sender threads")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and logs")
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: set DATABASE_URL to a PostgreSQL server (postgres://...)")

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=scratch_database(args.database_url),
        REDIS_URL=args.redis_url,
        CHANNELS_PREFIX="bench-ingest",
        FORUM_DATA_DIR=str(work),
        SIMNET_DATA_DIR=str(work / "simnet"),
        SIMNET="1",
        # The flow measured here: the node settles at once, the forum reconciles afterwards.
        # (Hold mode, where the node waits for the forum's verdict, is a separate setting.)
        HOLD_MODE="0",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        # Connections are per process; keep them (the default) so tasks do not reconnect.
        DB_CONN_MAX_AGE="600",
    )
    os.environ.update(env)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()  # no tasks left from an earlier run
    procs = Processes(env, work)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        procs.start("simnet", "manage.py", "simnet", "--base-port", "0")
        wait_for(lambda: (work / "simnet" / "nodes.json").exists(), 60, "simnet")
        worker, worker_log = procs.start(
            "worker",
            "-m", "celery", "-A", "config", "worker", "--pool=prefork",
            f"--concurrency={args.workers}", "--loglevel=INFO", "--without-gossip",
            "--without-mingle", "--without-heartbeat", "-n", "bench-ingest@%h",
        )  # fmt: skip
        wait_for(lambda: b"ready." in worker_log.read_bytes(), 60, "the worker")
        procs.start("listener", "manage.py", "listen")
        return run(args, work)
    finally:
        procs.stop()
        if args.keep:
            print(f"bench: logs and data in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from forum import nostr, protocol
    from forum.models import Board, Event, LedgerEntry, Thread
    from forum.services import node

    board = Board.objects.create(slug="bench", title="Bench", thread_price_msat=1_000)
    forum_pubkey = node.simnet_nodes()["forum"]["pubkey"]
    senders = ["alice", "bob"]
    clients = {name: [node.make_client(node.endpoint(name)) for _ in range(4)] for name in senders}

    # Everything a sender needs is prepared up front: signing is not what we measure.
    records = []
    for i in range(args.posts):
        key = nostr.generate_secret_key()
        event = nostr.thread_event(key, board=board.slug, title=f"bench {i}", content=f"post {i}")
        records.append((event.id, protocol.encode_event(event)))

    # The listener is up when a first payment reaches the ledger.
    warm = clients["alice"][0].keysend(forum_pubkey, 1_000, {})
    wait_for(
        lambda: LedgerEntry.objects.filter(payment_hash=warm.payment_hash).exists(),
        60,
        "the listener",
    )

    settled: dict[str, float] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        event_id, recs = records[i]
        sender = clients[senders[i % 2]][(i // 2) % 4]
        payment = sender.keysend(forum_pubkey, 1_000, recs)
        now = time.time()
        with lock:
            if payment.succeeded:
                settled[event_id] = now
            else:
                failures.append(payment.failure_reason)

    started = time.time()
    with ThreadPoolExecutor(args.senders) as pool:
        for i in range(args.posts):
            if args.rate > 0:
                delay = started + i / args.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            pool.submit(send, i)
    sent_in = time.time() - started
    if failures:
        print(f"bench: {len(failures)} payments failed: {failures[:3]}", file=sys.stderr)
    wait_for(
        lambda: Event.objects.filter(state=Event.State.PUBLISHED).count() >= len(settled),
        300,
        "every post to be published",
    )
    published = dict(
        Thread.objects.filter(board=board).values_list("event__event_id", "published_at")
    )
    latencies = [(published[e].timestamp() - t) * 1000 for e, t in settled.items()]
    first_settle = min(settled.values())
    last_published = max(p.timestamp() for p in published.values())
    throughput = len(published) / (last_published - first_settle)
    offered = len(settled) / sent_in
    duplicates = Thread.objects.count() - len(set(published))
    print(
        f"offered {offered:.0f} posts/s over {sent_in:.1f} s with {args.senders} senders; "
        f"{args.workers} worker processes; mean {statistics.mean(latencies):.0f} ms, "
        f"max {max(latencies):.0f} ms; duplicates {duplicates}; failed payments {len(failures)}"
    )
    print(
        f"ingest: {len(published)} posts, {throughput:.0f} posts/s, "
        f"p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
