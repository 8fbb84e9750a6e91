"""Fault harness: paid posts through every process of the split layout while processes die.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lnforum \\
        .venv/bin/python bench/faults.py --posts 1000 --rate 10 --rounds 2

It creates a scratch database (`<name>_bench_faults`, dropped and re-created) and starts its own
redis-server on a free port (so flushing or restarting Redis touches nobody else), then simnet,
two listeners (one active, one standby), two Celery workers, beat and daphne as separate
processes, each restarted half a second after it dies, as a process supervisor would.

It posts N signed events from simnet's user nodes (alice, bob) at a steady rate: threads,
replies to threads paid a moment before (so a reply often arrives before its thread), multipart
threads, and invalid ones (underpaid, bad signature, malformed records). Meanwhile it injects
faults, evenly spread over the run, `--rounds` times each kind:

    listener      SIGKILL the listener that holds the lease
    worker-child  SIGKILL a worker's pool process (the worker replaces it)
    worker        SIGKILL a worker's main process and its pool
    web           SIGKILL daphne
    simnet        SIGKILL the Lightning node (payments in flight fail or settle)
    redis-restart SIGKILL redis-server and start it empty (queued tasks are lost)
    redis-flush   FLUSHALL
    pg-restart    restart the PostgreSQL cluster (only with --pg-restart: it drops every
                  connection of everyone using that server)

After each fault it reports the recovery time: from the fault until every post whose payment
started before it is in its final state, and a probe post paid after it is too (and, for the
web, until /healthz answers 200 again). At the end it compares, by SQL and by the node's
ListInvoices: every settled invoice has exactly one ledger row and the msat sums agree; every
valid paid post is published exactly once; every invalid one has exactly one rejection with the
expected reason; in hold mode (--hold) no invalid post was charged; nothing is left pending.
The last line is

    faults: N posts, F faults, lost L, duplicated D, stranded S, max recovery R s

and the exit status is 0 only when lost, duplicated and stranded are 0 and ledger == node.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import Processes, scratch_database, wait_for  # noqa: E402

KINDS = (
    "listener",
    "worker-child",
    "worker",
    "web",
    "simnet",
    "redis-restart",
    "redis-flush",
    "pg-restart",
)
# What the harness runs with (besides the scratch database and its own Redis): a faster sweep
# than the defaults, so a lost task is found in seconds; see docs/forum-core.md for each cost.
HARNESS_SETTINGS = {
    "SWEEP_INTERVAL_SECONDS": "5",
    "SWEEP_REQUEUE_AFTER_SECONDS": "10",
    "BROKER_VISIBILITY_TIMEOUT_SECONDS": "15",
    "LISTENER_LEASE_SECONDS": "15",
}
THREAD_PRICE_MSAT, REPLY_PRICE_MSAT = 10_000, 2_000
RESTART_DELAY = 0.5  # what a supervisor waits before starting a process again
RECOVERY_CAP = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_range(count: int) -> int:
    """A base port with `count` free ports after it (simnet serves one node per port)."""
    for _ in range(200):
        base = random.randint(20_000, 60_000)
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise SystemExit("faults: no free port range")


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signal.SIGKILL)


# --- processes --------------------------------------------------------------------------------


class Supervised:
    """One process of the layout, started again RESTART_DELAY after it exits (until stopped)."""

    def __init__(self, procs: Processes, name: str, argv: list[str], ready: bytes = b"") -> None:
        self.procs, self.name, self.argv, self.ready = procs, name, argv, ready
        self.starts = 0
        self.proc: subprocess.Popen | None = None
        self.log: Path | None = None
        self.stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Supervised:
        self._spawn()
        self._thread.start()
        return self

    def _spawn(self) -> None:
        self.starts += 1
        self.proc, self.log = self.procs.start(f"{self.name}.{self.starts}", *self.argv)

    def _run(self) -> None:
        while not self.stopping:
            assert self.proc is not None
            self.proc.wait()
            if self.stopping:
                return
            time.sleep(RESTART_DELAY)
            if not self.stopping:
                self._spawn()

    def wait_ready(self, timeout: float = 60) -> None:
        if self.ready:
            wait_for(lambda: self.log and self.ready in self.log.read_bytes(), timeout, self.name)

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc.pid)

    def stop(self) -> None:
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


class RedisServer:
    """The harness's own redis-server (no persistence: a restart starts empty)."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = work / "redis.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise SystemExit("faults: redis-server is not installed")
        self.proc = subprocess.Popen(
            [redis_server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        import redis

        wait_for(lambda: self._ping(redis), 30, "redis-server")

    def _ping(self, redis) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except Exception:
            return False

    def restart(self) -> None:
        self.stop(hard=True)
        self.start()

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()

    def stop(self, hard: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            self.proc.wait(10)


# --- posts ------------------------------------------------------------------------------------


@dataclass
class Payment:
    records: dict[int, bytes]
    amount_msat: int
    preimage: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    result: str = ""  # "" not sent yet, "succeeded", "failed", "error"
    why: str = ""  # the failure reason or error the sender got

    @property
    def payment_hash(self) -> str:
        return hashlib.sha256(self.preimage).hexdigest()


@dataclass
class Post:
    index: int
    kind: str  # thread, reply, multipart, probe, underpaid, bad_signature, malformed
    expect: str  # "published" or the rejection reason
    event_id: str
    payments: list[Payment]
    sender: str
    root: Post | None = None
    started_at: float = 0.0
    done_at: float = 0.0

    @property
    def valid(self) -> bool:
        return self.expect == "published"

    @property
    def paid(self) -> bool:
        return bool(self.payments) and all(p.result == "succeeded" for p in self.payments)

    @property
    def counted(self) -> bool:
        """Whether its outcome can be expected: paid, and a reply's thread paid too."""
        return self.paid and (self.root is None or self.root.paid)


class PostFactory:
    """Signed posts of every kind, in a mix fixed by the seed."""

    def __init__(self, board: str, seed: int, invalid_share: float) -> None:
        self.board = board
        self.rng = random.Random(seed)
        self.invalid_share = invalid_share
        self.recent_threads: list[tuple[Post, object]] = []
        self.count = 0

    def _thread_event(self, content: str):
        from forum import nostr

        key = nostr.generate_secret_key()  # a fresh author each time: no escalation
        return nostr.thread_event(key, board=self.board, title=f"t{self.count}", content=content)

    def make(self, *, probe: bool = False) -> Post:
        from forum import nostr, protocol

        index, self.count = self.count, self.count + 1
        sender = "alice" if index % 2 == 0 else "bob"
        roll = self.rng.random()
        if probe:
            kind = "probe"
        elif roll < self.invalid_share:
            kind = self.rng.choice(["underpaid", "bad_signature", "malformed"])
        elif roll < self.invalid_share + 0.1:
            kind = "multipart"
        elif roll < 0.55 or not self.recent_threads:
            kind = "thread"
        else:
            kind = "reply"
        if kind in ("thread", "probe"):
            event = self._thread_event(f"post {index}")
            post = Post(index, kind, "published", event.id, [], sender)
            post.payments = [Payment(protocol.encode_event(event), THREAD_PRICE_MSAT)]
            if kind == "thread":  # replies go to one of the last few threads
                self.recent_threads = [*self.recent_threads[-4:], (post, event)]
            return post
        if kind == "reply":
            root, root_event = self.rng.choice(self.recent_threads)
            key = nostr.generate_secret_key()
            event = nostr.reply_event(key, board=self.board, root=root_event, content=f"re {index}")
            post = Post(index, kind, "published", event.id, [], sender, root=root)
            post.payments = [Payment(protocol.encode_event(event), REPLY_PRICE_MSAT)]
            return post
        if kind == "multipart":
            event = self._thread_event(f"long post {index} " + "lorem ipsum " * 70)
            parts = protocol.split_event(event, budget=500)
            share = -(-THREAD_PRICE_MSAT // len(parts))
            payments = [Payment(records, share) for records in parts]
            return Post(index, kind, "published", event.id, payments, sender)
        if kind == "underpaid":
            event = self._thread_event(f"cheap {index}")
            payments = [Payment(protocol.encode_event(event), THREAD_PRICE_MSAT // 2)]
            return Post(index, kind, "underpaid", event.id, payments, sender)
        if kind == "bad_signature":
            event = self._thread_event(f"original {index}")
            records = protocol.encode_event(event)
            records[protocol.RECORD_TYPES["content"]] = b"tampered"  # the signature fails
            payments = [Payment(records, THREAD_PRICE_MSAT)]
            return Post(index, kind, "bad_signature", "", payments, sender)
        records = {
            protocol.RECORD_TYPES["version"]: b"1",
            protocol.RECORD_TYPES["pubkey"]: b"not base64!",
        }
        return Post(index, kind, "malformed", "", [Payment(records, THREAD_PRICE_MSAT)], sender)


class Sender:
    """Pays posts from the user nodes; a payment's outcome is whatever the node says."""

    def __init__(self, forum_pubkey: str, threads: int) -> None:
        from forum.services import node

        self.forum_pubkey = forum_pubkey
        self.clients = {
            name: [node.make_client(node.endpoint(name)) for _ in range(4)]
            for name in ("alice", "bob")
        }
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="sender")
        self.part_pool = ThreadPoolExecutor(threads, thread_name_prefix="part")

    def _pay(self, post: Post, payment: Payment) -> None:
        client = self.clients[post.sender][post.index % 4]
        try:
            result = client.keysend(
                self.forum_pubkey, payment.amount_msat, payment.records, preimage=payment.preimage
            )
            payment.result = "succeeded" if result.succeeded else "failed"
            payment.why = result.failure_reason
        except Exception as exc:  # the node went away mid-payment: the end check asks the node
            payment.result, payment.why = "error", type(exc).__name__

    def send(self, post: Post) -> None:
        post.started_at = time.monotonic()
        try:
            if len(post.payments) == 1:
                self._pay(post, post.payments[0])
            else:  # in hold mode each part is held until the set is complete: send together
                for future in [self.part_pool.submit(self._pay, post, p) for p in post.payments]:
                    future.result()
        finally:
            post.done_at = time.monotonic()

    def submit(self, post: Post):
        return self.pool.submit(self.send, post)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.part_pool.shutdown(wait=True)


# --- checks -----------------------------------------------------------------------------------


def db_retry(func, *args, **kwargs):
    """A read that survives a PostgreSQL restart (the harness's own connection drops too)."""
    from django.db import DatabaseError, connection

    for attempt in range(60):
        try:
            return func(*args, **kwargs)
        except DatabaseError:
            connection.close()
            time.sleep(min(0.2 * (attempt + 1), 2))
    return func(*args, **kwargs)


def final_posts(posts: list[Post]) -> set[int]:
    """The indexes of `posts` that reached their expected final state (by SQL)."""
    from forum.models import Event, Rejection

    published = set(
        Event.objects.filter(
            event_id__in=[p.event_id for p in posts if p.valid], state=Event.State.PUBLISHED
        ).values_list("event_id", flat=True)
    )
    hashes = [p.payments[0].payment_hash for p in posts if not p.valid]
    rejected = set(
        Rejection.objects.filter(ledger_entry__payment_hash__in=hashes).values_list(
            "ledger_entry__payment_hash", flat=True
        )
    )
    return {
        p.index
        for p in posts
        if (p.event_id in published if p.valid else p.payments[0].payment_hash in rejected)
    }


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    charged: list[str] = field(default_factory=list)
    ledger_equals_node: bool = False
    detail: str = ""


def verify(posts: list[Post], *, client, forum_pubkey: str, hold: bool) -> Verdict:
    """The end check, by SQL and by the node's ListInvoices."""
    from django.db.models import Count, Q, Sum

    from forum.models import Event, LedgerEntry, Rejection, Thread
    from forum.models import Post as PostRow

    verdict = Verdict()
    invoices = {inv.payment_hash: inv for inv in client.iter_invoices()}
    settled = {h: inv.amt_paid_msat for h, inv in invoices.items() if inv.settled}
    # What the senders could not tell (the node died mid-payment), the node's record tells.
    for post in posts:
        for payment in post.payments:
            if payment.result in ("error", "failed", ""):
                payment.result = "succeeded" if payment.payment_hash in settled else "failed"

    incoming = LedgerEntry.objects.filter(
        direction=LedgerEntry.Direction.IN, node_pubkey=forum_pubkey
    )
    ledger_rows = dict(
        incoming.filter(status=LedgerEntry.Status.SETTLED).values_list(
            "payment_hash", "amount_msat"
        )
    )
    missing = set(settled) - set(ledger_rows)
    extra = set(ledger_rows) - set(settled)
    node_msat, ledger_msat = sum(settled.values()), sum(ledger_rows.values())
    verdict.ledger_equals_node = not missing and not extra and node_msat == ledger_msat
    verdict.lost += [f"settled invoice {h[:12]} has no ledger row" for h in missing]
    verdict.duplicated += [f"ledger row {h[:12]} counts an invoice not settled" for h in extra]

    by_hash = {
        row["payment_hash"]: row
        for row in incoming.values("payment_hash", "reconcile_state", "status", "pk")
    }
    open_rows = [h for h, row in by_hash.items() if row["reconcile_state"] != "done"]
    verdict.stranded += [
        f"ledger row {h[:12]} still {by_hash[h]['reconcile_state']}" for h in open_rows
    ]
    rejections = Counter(
        Rejection.objects.filter(ledger_entry__isnull=False).values_list(
            "ledger_entry__payment_hash", flat=True
        )
    )
    reasons = dict(
        Rejection.objects.filter(ledger_entry__isnull=False).values_list(
            "ledger_entry__payment_hash", "reason"
        )
    )
    events = {
        e["event_id"]: e
        for e in Event.objects.filter(event_id__in=[p.event_id for p in posts if p.valid]).values(
            "event_id", "state", "waiting_for"
        )
    }
    shown = Counter(Thread.objects.values_list("event__event_id", flat=True))
    shown.update(PostRow.objects.values_list("event__event_id", flat=True))

    for post in posts:
        name = f"{post.kind} #{post.index}"
        hashes = [p.payment_hash for p in post.payments]
        if hold and not post.valid:
            if any(h in settled for h in hashes):
                verdict.charged.append(f"{name} was charged")
            if not all(h in invoices for h in hashes):
                continue  # it never reached the node
        elif not post.counted:
            continue  # not (fully) paid, or a reply to a thread that was not: nothing to expect
        if any(h not in by_hash for h in hashes):
            verdict.lost.append(f"{name}: paid, no ledger row")
            continue
        if post.valid:
            event = events.get(post.event_id)
            if shown[post.event_id] > 1:
                verdict.duplicated.append(f"{name} shown {shown[post.event_id]} times")
            if event is not None and event["state"] == "published" and shown[post.event_id] == 1:
                stray = [h for h in hashes if rejections[h]]
                if stray and post.kind != "multipart":
                    verdict.duplicated.append(f"{name} published and rejected")
                continue
            if event is not None and event["state"] == "pending":
                verdict.stranded.append(f"{name} still waiting for {event['waiting_for']}")
            elif any(by_hash[h]["reconcile_state"] != "done" for h in hashes):
                pass  # counted as an open ledger row above
            else:
                state = event["state"] if event else "no event"
                why = reasons.get(hashes[-1], "")
                verdict.lost.append(f"{name} not published ({state} {why})".strip())
            continue
        (payment_hash,) = hashes
        count = rejections[payment_hash]
        if count == 0:
            if by_hash[payment_hash]["reconcile_state"] == "done" or hold:
                verdict.lost.append(f"{name}: no rejection")
        elif count > 1:
            verdict.duplicated.append(f"{name}: {count} rejections")
        elif reasons[payment_hash] != post.expect:
            verdict.wrong.append(f"{name}: rejected {reasons[payment_hash]}, not {post.expect}")
        if hold and by_hash[payment_hash]["status"] != "cancelled":
            verdict.charged.append(f"{name}: ledger row {by_hash[payment_hash]['status']}")

    # Replies waiting for a thread that is published: nothing should ever leave one there.
    waiting = Event.objects.filter(state="pending", waiting_for="parent")
    for event_id in waiting.filter(root_ref__in=list(shown)).values_list("event_id", flat=True):
        verdict.stranded.append(f"reply {event_id[:12]} waits for a published thread")
    totals = incoming.aggregate(
        rows=Count("pk"),
        settled_msat=Sum("amount_msat", filter=Q(status=LedgerEntry.Status.SETTLED)),
    )
    verdict.detail = (
        f"node: {len(settled)} settled invoices, {node_msat} msat; ledger: {totals['rows']} rows, "
        f"{ledger_msat} msat settled; {'ledger == node' if verdict.ledger_equals_node else 'ledger != node'}"
    )
    return verdict


# --- the run ----------------------------------------------------------------------------------


@dataclass
class FaultResult:
    kind: str
    at: float
    recovery: float | None


class Harness:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.posts: list[Post] = []
        self.posts_lock = threading.Lock()
        self.results: list[FaultResult] = []

    # setup -----------------------------------------------------------------------------------

    def start(self) -> None:
        args, work = self.args, self.work
        self.redis = RedisServer(work)
        self.redis.start()
        self.web_port = free_port()
        env = dict(os.environ)
        env.update(HARNESS_SETTINGS)
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            CHANNELS_PREFIX="bench-faults",
            FORUM_DATA_DIR=str(work),
            SIMNET_DATA_DIR=str(work / "simnet"),
            SIMNET="1",
            HOLD_MODE="1" if args.hold else "0",
            HOLD_SECONDS="60",
            DEMO_MODE="0",
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            DB_CONN_MAX_AGE="600",
        )
        os.environ.update(env)
        self.procs = Processes(env, work)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        base_port = free_port_range(8)
        self.simnet = Supervised(
            self.procs, "simnet", ["manage.py", "simnet", "--base-port", str(base_port)], b"simnet:"
        ).start()
        self.simnet.wait_ready()
        worker = ["-m", "celery", "-A", "config", "worker", "--pool=prefork", "--concurrency=1",
                  "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
        self.workers = [
            Supervised(self.procs, f"worker{i}", [*worker, "-n", f"faults{i}@%h"], b"ready.")
            for i in (1, 2)
        ]
        for w in self.workers:
            w.start()
        self.beat = Supervised(
            self.procs,
            "beat",
            ["-m", "celery", "-A", "config", "beat", "--loglevel=WARNING",
             "-s", str(work / "beat-schedule")],
        ).start()  # fmt: skip
        self.web = Supervised(
            self.procs,
            "web",
            [
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.web_port),
                "config.asgi:application",
            ],
        ).start()
        self.listeners = {
            name: Supervised(self.procs, name, ["manage.py", "listen", "--holder", name]).start()
            for name in ("listener-a", "listener-b")
        }
        for w in self.workers:
            w.wait_ready()
        wait_for(self.web_healthy, 60, "the web server")

    @property
    def database_url(self) -> str:
        if not hasattr(self, "_database_url"):
            self._database_url = scratch_database(self.args.database_url, "_bench_faults")
        return self._database_url

    def web_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/healthz", timeout=2):
                return True  # 200 (urlopen raises on 503)
        except Exception:
            return False

    def stop(self) -> None:
        supervised = [*self.listeners.values(), self.web, self.beat, *self.workers, self.simnet]
        for proc in supervised:
            proc.stopping = True
        self.procs.stop()
        self.redis.stop()

    # faults ----------------------------------------------------------------------------------

    def inject(self, kind: str) -> None:
        if kind == "listener":
            from forum.models import ListenerCursor

            holder = db_retry(
                lambda: ListenerCursor.objects.values_list("lease_holder", flat=True).first()
            )
            self.listeners.get(holder or "", self.listeners["listener-a"]).kill()
        elif kind == "worker-child":
            worker = self.workers[len(self.results) % 2]
            children = children_of(worker.proc.pid) if worker.proc else []
            if children:
                kill(random.choice(children))
        elif kind == "worker":
            worker = self.workers[len(self.results) % 2]
            children = children_of(worker.proc.pid) if worker.proc else []
            worker.kill()  # and its pool, as when the host's OOM killer or a cgroup stop does
            for child in children:
                kill(child)
        elif kind == "web":
            self.web.kill()
        elif kind == "simnet":
            self.simnet.kill()
        elif kind == "redis-restart":
            self.redis.restart()
        elif kind == "redis-flush":
            self.redis.flush()
        elif kind == "pg-restart":
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                check=True,
            )
        else:
            raise ValueError(kind)

    def measure_recovery(self, kind: str, at: float, factory: PostFactory) -> float | None:
        """Seconds from the fault until the pipeline has caught up (see the module docstring)."""
        with self.posts_lock:
            before = [p for p in self.posts if p.started_at and p.started_at < at]
        time.sleep(0.5)
        probe = self.send_probe(factory, deadline=at + RECOVERY_CAP)
        outstanding = {p.index: p for p in before}
        if probe is not None:
            outstanding[probe.index] = probe
        last: list[tuple[float, Post]] = []  # what was waited for last, to say what held it up
        web_ok = kind != "web"
        while time.monotonic() - at < RECOVERY_CAP:
            # A post still being paid stays outstanding; one that ended up unpaid (or a reply to
            # a thread that was not paid) has nothing to wait for, nor has one with a payment
            # that failed or whose outcome the sender could not learn (the node died under it),
            # or a reply to such a thread: in hold mode a multipart set missing a part stays
            # held until the node's hold time, and the end check settles what happened.
            for post in list(outstanding.values()):
                unsure = [*post.payments, *(post.root.payments if post.root else [])]
                failed = any(p.result in ("failed", "error") for p in unsure)
                if failed or (post.done_at and not post.counted):
                    del outstanding[post.index]
            ready = [p for p in outstanding.values() if p.done_at]
            for index in db_retry(final_posts, ready) if ready else ():
                last.append((time.monotonic() - at, outstanding.pop(index)))
            web_ok = web_ok or self.web_healthy()
            if not outstanding and web_ok:
                took = time.monotonic() - at
                if took > 5:
                    slow = sorted(last, key=lambda item: -item[0])[:3]
                    print("      last: " + "; ".join(
                        f"{p.kind} #{p.index} paid in {p.done_at - p.started_at:.1f} s, final at "
                        f"{t:.1f} s" for t, p in slow
                    ))  # fmt: skip
                return took
            time.sleep(0.1)
        return None

    def send_probe(self, factory: PostFactory, deadline: float) -> Post | None:
        """A valid post paid after the fault (tried again while the node is away)."""
        while time.monotonic() < deadline:
            with self.posts_lock:
                probe = factory.make(probe=True)
                self.posts.append(probe)
            self.sender.send(probe)
            if probe.paid:
                return probe
            time.sleep(0.5)
        return None

    # run -------------------------------------------------------------------------------------

    def run(self) -> int:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        django.setup()
        from forum.models import Board, LedgerEntry
        from forum.services import node

        args = self.args
        Board.objects.create(
            slug="faults",
            title="Faults",
            thread_price_msat=THREAD_PRICE_MSAT,
            reply_price_msat=REPLY_PRICE_MSAT,
            max_content_length=5_000,
        )
        forum_pubkey = node.simnet_nodes()["forum"]["pubkey"]
        self.sender = Sender(forum_pubkey, threads=args.senders)
        warm = self.sender.clients["alice"][0].keysend(forum_pubkey, 1_000, {})
        wait_for(
            lambda: LedgerEntry.objects.filter(payment_hash=warm.payment_hash).exists(),
            60,
            "the listener",
        )
        factory = PostFactory("faults", args.seed, args.invalid_share)
        kinds = [k for k in args.faults.split(",") if k]
        if args.pg_restart and "pg-restart" not in kinds:
            kinds.append("pg-restart")
        schedule = [k for _ in range(args.rounds) for k in kinds]
        random.Random(args.seed).shuffle(schedule)
        duration = args.posts / args.rate
        spacing = duration / (len(schedule) + 1)
        print(
            f"faults: {args.posts} posts at {args.rate}/s ({'hold' if args.hold else 'settle'} "
            f"mode), {len(schedule)} faults every {spacing:.1f} s: {', '.join(schedule)}",
            flush=True,
        )
        sending = threading.Thread(target=self._send_all, args=(factory,))
        started = time.monotonic()
        sending.start()
        try:
            for i, kind in enumerate(schedule):
                due = started + (i + 1) * spacing
                while time.monotonic() < due:
                    time.sleep(0.05)
                at = time.monotonic()
                self.inject(kind)
                recovery = self.measure_recovery(kind, at, factory)
                self.results.append(FaultResult(kind, at - started, recovery))
                shown = f"{recovery:.1f} s" if recovery is not None else f"> {RECOVERY_CAP:.0f} s"
                print(f"  {at - started:7.1f} s  {kind:<13} recovered in {shown}", flush=True)
        finally:
            sending.join()
        self.sender.close()
        return self.finish(forum_pubkey, started)

    def _send_all(self, factory: PostFactory) -> None:
        started = time.monotonic()
        futures = []
        for i in range(self.args.posts):
            delay = started + i / self.args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with self.posts_lock:
                post = factory.make()
                self.posts.append(post)
            futures.append(self.sender.submit(post))
        for future in futures:
            future.result()

    def finish(self, forum_pubkey: str, started: float) -> int:
        from forum.services import node

        client = node.make_client(node.endpoint("forum"))
        # Quiet now: wait for every paid post to reach its final state (the sweep included).
        deadline = time.monotonic() + self.args.settle_timeout
        while time.monotonic() < deadline:
            counted = [p for p in self.posts if p.counted]
            if len(db_retry(final_posts, counted)) == len(counted) and self._ledger_quiet():
                break
            time.sleep(1)
        time.sleep(2 * int(HARNESS_SETTINGS["SWEEP_INTERVAL_SECONDS"]))  # a last sweep or two
        verdict = db_retry(
            verify, self.posts, client=client, forum_pubkey=forum_pubkey, hold=self.args.hold
        )
        kinds = Counter(p.kind for p in self.posts)
        paid = sum(p.paid for p in self.posts)
        print(
            f"posts: {len(self.posts)} sent ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}),"
            f" {paid} paid; {time.monotonic() - started:.0f} s",
        )
        outcomes = Counter(
            f"{p.result} {p.why}".strip() for post in self.posts for p in post.payments
        )
        print("payments: " + ", ".join(f"{n} {what}" for what, n in outcomes.most_common()))
        print(verdict.detail)
        for label, items in (
            ("lost", verdict.lost),
            ("duplicated", verdict.duplicated),
            ("stranded", verdict.stranded),
            ("wrong reason", verdict.wrong),
            ("invalid but charged", verdict.charged),
        ):
            for item in items[:20]:
                print(f"  {label}: {item}")
        by_kind: dict[str, list[float]] = {}
        for result in self.results:
            by_kind.setdefault(result.kind, []).append(
                result.recovery if result.recovery is not None else float("inf")
            )
        for kind, times in sorted(by_kind.items()):
            print(f"  recovery {kind:<13} n={len(times):<3} max {max(times):.1f} s")
        recoveries = [r.recovery for r in self.results]
        max_recovery = (
            max((r if r is not None else float("inf")) for r in recoveries) if recoveries else 0.0
        )
        print(
            f"faults: {len(self.posts)} posts, {len(self.results)} faults, "
            f"lost {len(verdict.lost) + len(verdict.wrong)}, "
            f"duplicated {len(verdict.duplicated)}, stranded {len(verdict.stranded)}, "
            f"max recovery {max_recovery:.1f} s",
            flush=True,
        )
        ok = (
            verdict.ledger_equals_node
            and not (verdict.lost or verdict.wrong or verdict.duplicated or verdict.stranded)
            and not verdict.charged
        )
        return 0 if ok else 1

    def _ledger_quiet(self) -> bool:
        from forum.models import LedgerEntry

        def quiet() -> bool:
            return not LedgerEntry.objects.exclude(reconcile_state="done").exists()

        return db_retry(quiet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=600)
    parser.add_argument("--rate", type=float, default=10, help="posts per second")
    parser.add_argument(
        "--faults",
        default="listener,worker-child,worker,web,simnet,redis-restart,redis-flush",
        help=f"comma-separated kinds: {', '.join(KINDS)}",
    )
    parser.add_argument("--rounds", type=int, default=1, help="how many times each kind")
    parser.add_argument(
        "--pg-restart", action="store_true", help="also restart PostgreSQL (affects everyone)"
    )
    parser.add_argument("--hold", action="store_true", help="hold mode (nothing invalid charged)")
    parser.add_argument("--invalid-share", type=float, default=0.08)
    parser.add_argument("--senders", type=int, default=16, help="sender threads")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--settle-timeout", type=float, default=180)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and logs")
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("faults: set DATABASE_URL to a PostgreSQL server (postgres://...)")
    unknown = set(filter(None, args.faults.split(","))) - set(KINDS)
    if unknown:
        raise SystemExit(f"faults: unknown fault kinds {sorted(unknown)}")

    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    harness = Harness(args, work)
    failed = True
    try:
        harness.start()
        status = harness.run()
        failed = status != 0
        return status
    finally:
        harness.stop()
        if args.keep or failed:
            print(f"faults: logs and data in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
