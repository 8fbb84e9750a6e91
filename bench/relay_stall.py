"""Does a flood of hostile relay REQs delay the forum's own websockets?

    .venv/bin/python bench/relay_stall.py [--threads 2000] [--hostile 20] [--handshakes 40]

Builds a fresh SQLite forum in a temporary directory (the embedded default's database; pass
`--database-url postgres://...` for PostgreSQL): one board with `--threads` threads, each with
a few `t` tags and a reply. Serves it with daphne in its own process, then measures the
websocket handshake of a board page (`/ws/board/<slug>/`, what every board page opens: the
upgrade, the session and user lookups and the consumer's accept) one after another:

* idle: with nothing else going on;
* under load: while `--hostile` relay clients each keep one REQ in flight, every REQ within
  the documented limits at their most expensive for tags: 10 filters of 900 `#t` values
  (~54 kB; none matches), sent again as soon as its EOSE or CLOSED arrives.

A handshake that fails (daphne drops one its application has not accepted in time) counts
with the time it took to fail. The last line is `relay_stall: handshake idle p50 X ms max Y ms
(failed F/N); under N hostile REQs p50 X ms max Y ms (failed F/N; delay p50 +A ms, max +B ms);
hostile REQs answered K (p50 L ms)`. The target (issue 17) is a delay of at most 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox import daphne_server, own_forum  # noqa: E402 (after the path is set)

BOARD = "general"


def populate(threads: int) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from forum import nostr
    from tests.forum.relay import factories as f

    call_command("migrate", verbosity=0, interactive=False)
    board = f.make_board(BOARD)
    topics = ["bitcoin", "lightning", "nostr", "forum", "python", "django", "relay", "news"]
    for i in range(threads):
        tags = [["h", BOARD], ["title", f"Thread {i}"]]
        tags += [["t", topics[(i + k) % len(topics)]] for k in range(3)]
        root = nostr.sign_event(f.ALICE, kind=nostr.KIND_THREAD, tags=tags, content=f"Body {i}")
        f.store(root, board)
        f.store(f.reply(root, content=f"Reply to {i}"), board)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does soon after a bulk load


def short_values(count: int, offset: int) -> list[str]:
    """Distinct values of at most 3 characters: 9,000 of them fit one 64 kB message."""
    digits = string.digits + string.ascii_letters
    values = []
    for number in range(offset, offset + count):
        text = ""
        while True:
            number, digit = divmod(number, len(digits))
            text = digits[digit] + text
            if not number:
                break
        values.append(text)
    return values


def hostile_req(subid: str) -> str:
    filters = [{"#t": short_values(900, 900 * i)} for i in range(10)]
    return json.dumps(["REQ", subid, *filters], separators=(",", ":"))


async def handshake_ms(port: int) -> float:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/board/{BOARD}/"
    started = time.perf_counter()
    async with websockets.connect(url, origin=f"http://127.0.0.1:{port}") as socket_:
        elapsed = (time.perf_counter() - started) * 1000
        hello = json.loads(await asyncio.wait_for(socket_.recv(), 30))
        assert hello["type"] == "hello", hello
    return elapsed


async def handshakes(port: int, count: int) -> tuple[list[float], int]:
    """`count` handshakes one after another: their times, and how many failed (daphne drops
    a handshake its application has not accepted within its timeout); a failure counts with
    the time it took to fail."""
    results, failed = [], 0
    for _ in range(count):
        started = time.perf_counter()
        try:
            results.append(await asyncio.wait_for(handshake_ms(port), 60))
        except Exception as exc:  # refused, dropped or timed out: all count as failed
            failed += 1
            results.append((time.perf_counter() - started) * 1000)
            print(f"handshake failed: {type(exc).__name__}: {exc}", flush=True)
        await asyncio.sleep(0.05)
    return results, failed


async def hostile_client(port: int, n: int, stop: asyncio.Event, answered: list[float]) -> None:
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{port}/relay", max_size=2**24) as relay:
        message = hostile_req(f"h{n}")
        while not stop.is_set():
            sent = time.perf_counter()
            await relay.send(message)
            while True:
                reply = json.loads(await relay.recv())
                if reply[0] in ("EOSE", "CLOSED", "NOTICE"):
                    break
            if reply[0] != "EOSE":
                raise SystemExit(f"hostile REQ answered {reply!r}")
            answered.append((time.perf_counter() - sent) * 1000)


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


async def measure(port: int, hostile: int, count: int) -> str:
    for _ in range(3):  # warm-up: imports, connections, the consumer's follow cache
        await handshake_ms(port)
    idle, idle_failed = await handshakes(port, count)
    stop = asyncio.Event()
    answered: list[float] = []
    clients = [asyncio.create_task(hostile_client(port, n, stop, answered)) for n in range(hostile)]
    await asyncio.sleep(2.0)  # every hostile REQ sent and queued or running
    loaded, loaded_failed = await handshakes(port, count)
    stop.set()
    done, pending = await asyncio.wait(clients, timeout=300)
    for task in pending:
        task.cancel()
    for task in done:
        task.result()  # a hostile client that failed fails the bench
    idle_p50, idle_max = summary(idle)
    load_p50, load_max = summary(loaded)
    print(f"idle:       p50 {idle_p50:.1f} ms, max {idle_max:.1f} ms, failed {idle_failed}/{count}")
    print(
        f"under load: p50 {load_p50:.1f} ms, max {load_max:.1f} ms, failed {loaded_failed}/{count}"
    )
    answered_p50 = statistics.median(answered) if answered else float("nan")
    print(f"hostile REQs answered: {len(answered)}, p50 {answered_p50:.0f} ms")
    return (
        f"relay_stall: handshake idle p50 {idle_p50:.1f} ms max {idle_max:.1f} ms"
        f" (failed {idle_failed}/{count}); under {hostile} hostile REQs p50 {load_p50:.1f} ms"
        f" max {load_max:.1f} ms (failed {loaded_failed}/{count}; delay p50"
        f" {load_p50 - idle_p50:+.1f} ms, max {load_max - idle_max:+.1f} ms);"
        f" hostile REQs answered {len(answered)} (p50 {answered_p50:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2000)
    parser.add_argument("--hostile", type=int, default=20)
    parser.add_argument("--handshakes", type=int, default=40)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with own_forum("bench-relay-", args.database_url) as tmp:
        populate(args.threads)
        with daphne_server(tmp) as port:
            line = asyncio.run(measure(port, args.hostile, args.handshakes))
    print(line)


if __name__ == "__main__":
    main()
