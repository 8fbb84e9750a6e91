"""Reconcile benchmark: N settled ledger rows already recorded, drained by real Celery workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lnforum REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/reconcile.py --rows 20000 --workers 2

It creates a scratch database (`<name>_bench_reconcile`), writes N incoming ledger rows as the
listener records them (settle order, whole-second settle times) for a mixed workload: threads
and replies from many authors, some replies paid before their thread, multipart events,
top-ups and tips, and about 5% invalid of every kind (bad signature, malformed records,
unknown board, underpaid, too large, banned author, duplicate, reply to a locked thread).

1. A serial run in this process (one worker, batches in settle order) is the reference.
2. The derived tables are cleared and every row set pending again; W worker processes
   (`celery worker --pool=solo`) drain the ledger from queued `reconcile_batch` tasks.
3. The result must equal the serial run: every event's state, price and paid amount, every
   rejection's reason and amount, every post's number.

The last line is

    reconcile: N rows, X rows/s, published P, rejected R
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import Processes, scratch_database, wait_for  # noqa: E402


def workload(rows: int, seed: int) -> tuple[list[dict], dict]:
    """The ledger rows to record (dicts of LedgerEntry fields) and the moderation setup."""
    from forum import nostr, protocol
    from forum.ingest import ledger

    rng = random.Random(seed)
    authors = [nostr.generate_secret_key() for _ in range(max(50, rows // 4))]
    banned = authors[0]
    # Settle times from now on, 20 a second (events are dated now: inside the window).
    start = datetime.now(tz=UTC)
    out: list[dict] = []
    threads: list[nostr.Event] = []
    locked_root = nostr.thread_event(authors[1], board="general", title="locked", content="x")

    def add(records: dict[int, bytes], amount: int, *, event_id: str = "", pubkey: str = ""):
        index = len(out) + 1
        out.append(
            {
                "payment_hash": secrets.token_hex(32),
                "node_pubkey": "02" + "11" * 32,
                "purpose": ledger.ledger_classify(records=records).purpose,
                "amount_msat": amount,
                "settle_index": index,
                "add_index": index,
                "settled_at": start + timedelta(seconds=index // 20),
                "is_keysend": True,
                "custom_records": ledger.records_to_json(records),
                "pubkey": pubkey,
                "event_id": event_id,
            }
        )

    add(protocol.encode_event(locked_root), 10_000, event_id=locked_root.id)
    threads.append(locked_root)
    held_back: list[nostr.Event] = []  # threads whose replies are paid first
    while len(out) < rows:
        roll = rng.random()
        key = rng.choice(authors[1:])
        if roll < 0.30 or len(threads) < 5:
            event = nostr.thread_event(
                key, board=rng.choice(["general", "other"]), title="t", content="c" * 40
            )
            if rng.random() < 0.03:
                held_back.append(event)  # its replies come first (orphans, attached later)
                reply = nostr.reply_event(
                    rng.choice(authors[1:]), board=event.tag_value("h"), root=event, content="r"
                )
                add(protocol.encode_event(reply), 1_000, event_id=reply.id, pubkey=reply.pubkey)
            add(protocol.encode_event(event), 10_000, event_id=event.id, pubkey=event.pubkey)
            threads.append(event)
        elif roll < 0.88:
            root = rng.choice(threads[1:] or threads)
            event = nostr.reply_event(key, board=root.tag_value("h"), root=root, content="r" * 30)
            # Paid generously so escalation rarely underpays: most replies publish.
            add(protocol.encode_event(event), 8_000, event_id=event.id, pubkey=event.pubkey)
            if rng.random() < 0.02:
                add(protocol.encode_tip(event.id), 3_000, event_id=event.id)
        elif roll < 0.91:
            event = nostr.thread_event(key, board="general", title="long", content="w " * 400)
            parts = protocol.split_event(event, budget=400)
            for records in parts:
                add(records, -(-10_000 // len(parts)) + 1_000, event_id=event.id)
            threads.append(event)
        else:  # about 9%: the invalid and unusual, one kind each
            kind = rng.randrange(9)
            event = nostr.thread_event(key, board="general", title="t", content="bad")
            records = protocol.encode_event(event)
            if kind == 0:  # bad signature: one character of the sig flipped
                data = event.to_dict()
                data["sig"] = ("0" if data["sig"][0] != "0" else "1") + data["sig"][1:]
                records = protocol.encode_event(nostr.Event(**data))
            elif kind == 1:  # malformed records
                records = {k: b"\xff" + v for k, v in records.items()}
            elif kind == 2:
                event = nostr.thread_event(key, board="nowhere", title="t", content="c")
                records = protocol.encode_event(event)
            elif kind == 3:  # underpaid, then topped up
                add(records, 1_000, event_id=event.id, pubkey=event.pubkey)
                records, event = protocol.encode_topup(event.id), event
                add(records, 9_000, event_id=event.id)
                continue
            elif kind == 4:
                event = nostr.thread_event(key, board="general", title="t", content="z" * 6_000)
                records = protocol.encode_event(event)
            elif kind == 5:
                event = nostr.thread_event(banned, board="general", title="t", content="b")
                records = protocol.encode_event(event)
            elif kind == 6:  # duplicate: the same event paid twice
                add(records, 10_000, event_id=event.id, pubkey=event.pubkey)
            elif kind == 7:
                event = nostr.reply_event(key, board="general", root=locked_root, content="l")
                records = protocol.encode_event(event)
            else:  # underpaid for good
                add(records, 500, event_id=event.id, pubkey=event.pubkey)
                continue
            add(records, 10_000, event_id=event.id, pubkey=event.pubkey)
    return out[:rows], {"banned": nostr.public_key(banned), "locked": locked_root.id}


def setup(rows: list[dict], moderation: dict) -> None:
    from forum.models import Ban, Board, LedgerEntry

    # General does not escalate; Other doubles per recent post (pricing in settle order).
    Board.objects.create(
        slug="general", title="General", max_content_length=5_000, escalation_factor=1
    )
    Board.objects.create(slug="other", title="Other", reply_price_msat=2_000)
    Ban.objects.create(
        pubkey=moderation["banned"], created_at=datetime(2025, 1, 1, tzinfo=UTC), reason="bench"
    )
    LedgerEntry.objects.bulk_create([LedgerEntry(**row) for row in rows], batch_size=2_000)


def first_row_then_lock(moderation: dict) -> None:
    """The first row is the thread a moderator locks before the rest is reconciled."""
    from forum.ingest import reconcile
    from forum.models import Thread

    reconcile.reconcile_batch(limit=1)
    Thread.objects.filter(event__event_id=moderation["locked"]).update(is_locked=True)


def snapshot() -> dict:
    from forum.models import Event, Post, Rejection

    return {
        "events": sorted(
            Event.objects.values_list("event_id", "state", "waiting_for", "price_msat", "paid_msat")
        ),
        "rejections": sorted(
            Rejection.objects.values_list(
                "ledger_entry__payment_hash", "reason", "amount_msat", "resolution"
            ),
            key=str,
        ),
        "posts": sorted(Post.objects.values_list("event__event_id", "number")),
    }


def clear() -> None:
    """Back to "recorded, nothing reconciled" (everything derived deleted)."""
    from forum.models import Author, Board, Event, LedgerEntry, MessagePart, Post, Rejection, Thread

    Rejection.objects.all().delete()
    MessagePart.objects.all().delete()
    Post.objects.update(parent=None)
    Post.objects.all().delete()
    Thread.objects.all().delete()
    Event.objects.all().delete()
    Author.objects.all().delete()
    Board.objects.update(thread_count=0, post_count=0, last_activity_at=None)
    LedgerEntry.objects.update(reconcile_state="pending", reconcile_attempts=0, reconciled_at=None)


def phases_timed() -> dict[str, float]:
    """Time the phases of every batch in this process (printed after the serial run)."""
    import functools

    from forum.ingest import batch, reconcile

    spent: dict[str, float] = {}

    def timed(name: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    reconcile._decode_ahead = timed("decode ahead", reconcile._decode_ahead)
    reconcile._decode = timed("decode", reconcile._decode)
    reconcile._Run._prime = timed("prime", reconcile._Run._prime)
    reconcile._Run._row = timed("rows", reconcile._Run._row)
    batch.BatchState.flush = timed("flush", batch.BatchState.flush)
    reconcile._Run.report = timed("report", reconcile._Run.report)
    return spent


def serial(moderation: dict) -> float:
    from forum import tasks
    from forum.ingest import reconcile

    first_row_then_lock(moderation)
    started = time.monotonic()
    handled = 0.0
    while True:
        outcome = reconcile.reconcile_batch()
        if not outcome.rows:
            break
        if os.environ.get("BENCH_HANDLE"):
            at = time.monotonic()
            tasks.reconciled_handle(outcome)
            handled += time.monotonic() - at
    if handled:
        print(f"of which sending what the batches did: {handled:.1f} s", file=sys.stderr)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: set DATABASE_URL to a PostgreSQL server (postgres://...)")
    work = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=scratch_database(args.database_url, "_bench_reconcile"),
        REDIS_URL=args.redis_url,
        CHANNELS_PREFIX="bench-reconcile",
        FORUM_DATA_DIR=str(work),
        SIMNET="0",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        DB_CONN_MAX_AGE="600",
    )
    os.environ.update(env)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from forum.models import Event, LedgerEntry, Rejection

    made = time.monotonic()
    rows, moderation = workload(args.rows, args.seed)
    setup(rows, moderation)
    print(f"workload: {len(rows)} rows in {time.monotonic() - made:.1f} s", file=sys.stderr)
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        cProfile.runctx("serial(moderation)", globals(), locals(), os.environ["BENCH_PROFILE"])
        return 0

    spent = phases_timed() if os.environ.get("BENCH_PHASES") else {}
    seconds = serial(moderation)
    reference = snapshot()
    if spent:
        parts = ", ".join(f"{name} {value:.2f} s" for name, value in spent.items())
        print(f"serial run's phases: {parts} (of {seconds:.2f} s)", file=sys.stderr)
    print(
        f"serial (this process, one worker): {len(rows) / seconds:.0f} rows/s",
        file=sys.stderr,
    )

    clear()
    procs = Processes(env, work)
    try:
        logs = []
        for n in range(args.workers):
            _, log = procs.start(
                f"worker{n}",
                "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"bench-reconcile-{n}@%h",
            )  # fmt: skip
            logs.append(log)
        for log in logs:  # their start is not what we measure
            wait_for(lambda log=log: b"ready." in log.read_bytes(), 120, "a worker")
        from forum import tasks

        first_row_then_lock(moderation)
        started = time.monotonic()
        for _ in range(args.workers * 2):
            tasks.reconcile_batch.delay()
        wait_for(
            lambda: not LedgerEntry.objects.filter(reconcile_state="pending").exists(),
            600,
            "the workers to drain the ledger",
        )
        elapsed = time.monotonic() - started
    finally:
        procs.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = snapshot()
    if result != reference:
        for key in reference:
            if result[key] != reference[key]:
                diff = set(map(str, result[key])) ^ set(map(str, reference[key]))
                print(
                    f"bench: {key} differ from the serial run: {sorted(diff)[:6]}", file=sys.stderr
                )
        return 1
    published = Event.objects.filter(state=Event.State.PUBLISHED).count()
    rejected = Rejection.objects.filter(resolved_at__isnull=True).count()
    errors = LedgerEntry.objects.filter(reconcile_state="error").count()
    print(f"equal to the serial run; {errors} rows in error", file=sys.stderr)
    print(
        f"reconcile: {len(rows)} rows, {len(rows) / elapsed:.0f} rows/s, "
        f"published {published}, rejected {rejected}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
