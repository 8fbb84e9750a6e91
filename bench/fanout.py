"""Live fan-out: websocket readers of one thread page while replies are published.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lnforum REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/fanout.py --clients 1000 --replies 50

Runs what production runs, each in its own process: simnet (the Lightning network), the
listener, one Celery worker (Redis broker), and **two daphne processes accepting on one
listening socket** (both get `--fd` of the same socket, as with systemd socket activation, so
the kernel spreads connections between them) with the Redis channel layer. It creates a
scratch database (`<name>_bench_fanout`, dropped and re-created) and flushes the Redis
database it is given.

A thread is published by keysend; then `--clients` websockets open `/ws/thread/<id>/` from
`--client-procs` client processes (at most `--connect-concurrency` handshakes in flight per
process; plain sockets in one epoll loop per process, frames parsed in place, so that the
readers sharing the server's cores cost as little as possible). Then `--replies` replies, each signed by a fresh key, are paid by keysend at
`--rate` per second and go through the real pipeline (listener -> ledger -> worker ->
publish -> broadcast after commit -> channel layer -> each daphne -> its sockets).

Latency per message and socket: from the reply's `Post.published_at` (written inside the
publishing transaction, so just before its commit: the figure is an upper bound of
commit -> receipt) to the moment the client process read the frame, both on this machine's
clock. Missed: (sockets connected) x (replies published) minus frames received within `--grace`
seconds after the last reply was published. The last line:

    fanout: N clients (C connected), R replies, p50 A ms, p99 B ms, max C ms, missed M
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import Processes, percentile, wait_for  # noqa: E402


def scratch_database(url: str) -> str:
    """Drop and create `<name>_bench_fanout` next to the configured database; return its URL."""
    import psycopg

    parts = urlsplit(url)
    name = (parts.path.lstrip("/") or "lnforum") + "_bench_fanout"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- client processes ------------------------------------------------------------------------

_PUBLISHED = '{"type": "post.published"'
_EVENT_ID = '"event_id": "'
_BATCH = '{"type": "batch"'


async def clients_run(url: str, origin: str, count: int, concurrency: int, out: Path) -> None:
    """Open `count` sockets, say "ready" on stdout, record post.published arrivals until stdin
    closes, then write {"connected": n, "failed": n, "received": {event_id: [t, ...]}}.

    The readers are plain non-blocking sockets read from one epoll loop, with the handshake
    written by hand and server frames (never masked) parsed in place: a library's per-frame
    cost (futures, queues, UTF-8 checks) on 500 sockets in one process was most of the
    measured latency on this 2-core machine, and a browser has a CPU of its own.
    """
    import base64
    from urllib.parse import urlsplit

    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    received: dict[str, list[float]] = {}
    gate = asyncio.Semaphore(concurrency)
    opened: list[socket.socket] = []
    failed = 0

    def frames(buffer: bytearray):
        """Complete text frames at the front of `buffer` (consumed), as bytes."""
        while len(buffer) >= 2:
            length, at = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, at = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, at = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < at + length:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[at : at + length])
            del buffer[: at + length]
            if opcode == 1:
                yield payload

    def record(payload: bytes, now: float) -> None:
        if payload.startswith(_PUBLISHED.encode()):
            at = payload.find(_EVENT_ID.encode()) + len(_EVENT_ID)
            received.setdefault(payload[at : at + 64].decode(), []).append(now)
        elif payload.startswith(_BATCH.encode()):  # several messages in one frame
            for message in json.loads(payload)["messages"]:
                if message.get("type") == "post.published":
                    received.setdefault(message["event_id"], []).append(now)

    def on_readable(sock: socket.socket, buffer: bytearray) -> None:
        now = time.time()
        try:
            data = sock.recv(65536)  # a 1 MiB buffer per call costs an mmap each
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(sock.fileno())
            return
        buffer += data
        for payload in frames(buffer):
            record(payload, now)

    async def one() -> None:
        nonlocal failed
        async with gate:
            sock = socket.socket()
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, (parts.hostname, parts.port)), 120)
                key = base64.b64encode(os.urandom(16)).decode()
                request = (
                    f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                    f"Origin: {origin}\r\n\r\n"
                )
                await loop.sock_sendall(sock, request.encode())
                buffer = bytearray()
                deadline = time.monotonic() + 120
                while b"\r\n\r\n" not in buffer or not list(_peek(buffer, frames)):
                    if time.monotonic() > deadline:
                        raise TimeoutError("no hello")
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 120)
                    if not chunk:
                        raise ConnectionError("closed during the handshake")
                    buffer += chunk
                    head, sep, _ = bytes(buffer).partition(b"\r\n\r\n")
                    if sep and not head.startswith(b"HTTP/1.1 101"):
                        raise ConnectionError(head.split(b"\r\n")[0].decode())
                # Drop the handshake and the "hello" frame: the hub has joined the group.
                rest = bytearray(bytes(buffer).partition(b"\r\n\r\n")[2])
                for _ in frames(rest):
                    break
            except Exception as exc:
                failed += 1
                sock.close()
                print(f"connect failed: {exc!r}", file=sys.stderr, flush=True)
                return
        opened.append(sock)
        for payload in frames(rest):
            record(payload, time.time())
        loop.add_reader(sock.fileno(), on_readable, sock, rest)

    await asyncio.gather(*(one() for _ in range(count)))
    print(f"ready {len(opened)} {failed}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    out.write_text(json.dumps({"connected": len(opened), "failed": failed, "received": received}))
    for sock in opened:
        loop.remove_reader(sock.fileno())
        sock.close()


def _peek(buffer: bytearray, frames) -> list[bytes]:
    """The complete frames after the handshake in `buffer`, without consuming them."""
    return list(frames(bytearray(bytes(buffer).partition(b"\r\n\r\n")[2])))


# --- the orchestration -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0, help="replies paid per second")
    parser.add_argument("--daphnes", type=int, default=2)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds to wait for frames after the last reply"
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and logs")
    # Internal: run as one client process.
    parser.add_argument("--client", nargs=4, metavar=("URL", "ORIGIN", "COUNT", "OUT"))
    args = parser.parse_args(argv)
    raise_file_limit()
    if args.client:
        url, origin, count, out = args.client
        asyncio.run(clients_run(url, origin, int(count), args.connect_concurrency, Path(out)))
        return 0
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: set DATABASE_URL to a PostgreSQL server (postgres://...)")
    if not args.redis_url:
        raise SystemExit("bench: set REDIS_URL (the channel layer of several daphnes)")

    work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=scratch_database(args.database_url),
        REDIS_URL=args.redis_url,
        CHANNELS_PREFIX="bench-fanout",
        FORUM_DATA_DIR=str(work),
        SIMNET_DATA_DIR=str(work / "simnet"),
        SIMNET="1",
        HOLD_MODE="0",  # settle, then reconcile (the flow bench/ingest.py measures too)
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        DB_CONN_MAX_AGE="600",
    )
    os.environ.update(env)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    procs = Processes(env, work)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(8192)
    listening.set_inheritable(True)
    port = listening.getsockname()[1]
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
            "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", "fanout@%h",
        )  # fmt: skip
        wait_for(lambda: b"ready." in worker_log.read_bytes(), 60, "the worker")
        procs.start("listener", "manage.py", "listen")
        for i in range(args.daphnes):
            log = work / f"daphne{i}.log"
            proc = subprocess.Popen(
                [sys.executable, "-m", "daphne", "--fd", str(listening.fileno()),
                 "config.asgi:application"],
                cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                pass_fds=(listening.fileno(),),
            )  # fmt: skip
            procs.running.append(proc)
        return run(args, work, port)
    finally:
        procs.stop()
        listening.close()
        if args.keep:
            print(f"bench: logs and data in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, port: int) -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from forum import nostr, protocol
    from forum.models import Board, Post, Thread
    from forum.services import node

    Board.objects.create(
        slug="bench", title="Bench", thread_price_msat=1_000, reply_price_msat=1_000
    )
    forum_pubkey = node.simnet_nodes()["forum"]["pubkey"]
    payer = node.make_client(node.endpoint("alice"))

    root = nostr.thread_event(
        nostr.generate_secret_key(), board="bench", title="Crowded", content="Watch this."
    )
    assert payer.keysend(forum_pubkey, 1_000, protocol.encode_event(root)).succeeded
    wait_for(lambda: Thread.objects.filter(event__event_id=root.id).exists(), 120, "the thread")
    import http.client

    wait_for(lambda: _http_ok(http.client, port), 60, "daphne")

    url = f"ws://127.0.0.1:{port}/ws/thread/{root.id}/"
    origin = f"http://127.0.0.1:{port}"
    per_proc = [args.clients // args.client_procs] * args.client_procs
    per_proc[0] += args.clients - sum(per_proc)
    clients = []
    started = time.monotonic()
    for i, count in enumerate(per_proc):
        out = work / f"clients{i}.json"
        proc = subprocess.Popen(
            [sys.executable, __file__, "--connect-concurrency", str(args.connect_concurrency),
             "--client", url, origin, str(count), str(out)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        clients.append((proc, out))
    connected = failed = 0
    for proc, _ in clients:
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise SystemExit("bench: a client process died while connecting")
        connected += int(line[1])
        failed += int(line[2])
    connect_seconds = time.monotonic() - started
    print(
        f"{connected} of {args.clients} sockets open in {connect_seconds:.1f} s "
        f"({failed} failed); loadavg {Path('/proc/loadavg').read_text().split()[:3]}",
        flush=True,
    )

    replies = []
    for i in range(args.replies):
        key = nostr.generate_secret_key()
        replies.append(
            nostr.reply_event(key, board="bench", root=root, content=f"reply {i}: *hello* all")
        )
    begin = time.time()
    for i, reply in enumerate(replies):
        delay = begin + i / args.rate - time.time()
        if delay > 0:
            time.sleep(delay)
        payment = payer.keysend(forum_pubkey, 1_000, protocol.encode_event(reply))
        if not payment.succeeded:
            print(f"bench: reply {i} not paid: {payment.failure_reason}", file=sys.stderr)
    ids = [reply.id for reply in replies]
    wait_for(
        lambda: Post.objects.filter(event__event_id__in=ids).count() == len(ids),
        300,
        "every reply to be published",
    )
    time.sleep(args.grace)  # the last frames are on their way
    for proc, _ in clients:
        proc.stdin.close()
        proc.wait(60)
    published = {
        event_id: at.timestamp()
        for event_id, at in Post.objects.filter(event__event_id__in=ids).values_list(
            "event__event_id", "published_at"
        )
    }
    latencies: list[float] = []
    frames = 0
    for _, out in clients:
        data = json.loads(out.read_text())
        for event_id, times in data["received"].items():
            if event_id in published:
                frames += len(times)
                latencies.extend((t - published[event_id]) * 1000 for t in times)
    missed = connected * len(published) - frames
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"loadavg {' '.join(load)}; {len(published)} replies over {time.time() - begin:.1f} s")
    if not latencies:
        raise SystemExit("bench: no frame received")
    print(
        f"fanout: {args.clients} clients ({connected} connected), {len(published)} replies, "
        f"p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms, "
        f"max {max(latencies):.0f} ms, missed {missed}"
    )
    return 0


def _http_ok(http_client, port: int) -> bool:
    try:
        conn = http_client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status in (200, 503)
    except OSError:
        return False


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
