"""How fast does the relay take paid EVENTs, and does a flooding socket slow the others?

    .venv/bin/python bench/relay_writes.py [--clients 8] [--events 50] [--flood 1000]

Builds a fresh SQLite forum in a temporary directory (pass `--database-url postgres://...`
for PostgreSQL; the embedded default's eager reconciliation either way, no broker): one board
at 1 sat a thread with no escalation, `--clients` keys each with a balance (credit ledger rows,
as the listener writes them for keysends) and the listener's cursor. Serves it with daphne in
its own process, then:

* honest: `--clients` sockets, one per key, each sending `--events` threads one after the
  other and waiting for each OK (what a Nostr client does): accepted EVENTs a second and the
  time from EVENT to `OK true` (the first look, the charge under the cursor lock, the
  reconcile batch that judges and publishes it, the poll that sees the verdict);
* under a flood: the same again while one more socket sends `--flood` signed EVENTs a second
  from a key with no balance; every flood EVENT must get its OK with a NIP-01 reason.

The last line is `relay_writes: honest K sockets x M EVENTs: A accepted/s, OK p50 X ms p99 Y ms;
under a F/s flood: B accepted/s, OK p50 X ms p99 Y ms; flood answered N/N (R rate-limited)`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox import daphne_server, own_forum  # noqa: E402 (after the path is set)

BOARD = "general"
NODE = "02" + "ab" * 32


def populate(keys: list[str]) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from forum import nostr, protocol
    from forum.models import Board, LedgerEntry, ListenerCursor

    call_command("migrate", verbosity=0, interactive=False)
    Board.objects.create(slug=BOARD, title="General", thread_price_msat=1_000, escalation_factor=1)
    rows = []
    for index, secret in enumerate(keys, start=1):
        pubkey = nostr.public_key(secret)
        rows.append(
            LedgerEntry(
                payment_hash=f"{index:064x}",
                node_pubkey=NODE,
                purpose=LedgerEntry.Purpose.CREDIT,
                amount_msat=100_000_000,
                settle_index=index,
                settled_at=timezone.now(),
                is_keysend=True,
                custom_records=protocol.records_to_json(protocol.encode_credit(pubkey)),
                pubkey=pubkey,
                reconcile_state=LedgerEntry.ReconcileState.DONE,
            )
        )
    LedgerEntry.objects.bulk_create(rows)
    ListenerCursor.objects.create(node_pubkey=NODE, settle_index=len(keys), add_index=len(keys))


def thread_event(secret: str, n: int) -> dict:
    from forum import nostr

    return nostr.thread_event(secret, board=BOARD, title=f"t{n}", content=f"post {n}").to_dict()


async def honest_client(port: int, secret: str, count: int, start: int) -> list[float]:
    import websockets

    times = []
    events = [thread_event(secret, start + i) for i in range(count)]
    async with websockets.connect(f"ws://127.0.0.1:{port}/relay") as relay:
        for event in events:
            sent = time.perf_counter()
            await relay.send(json.dumps(["EVENT", event]))
            while True:
                reply = json.loads(await asyncio.wait_for(relay.recv(), 60))
                if reply[0] == "OK":
                    break
            if reply[2] is not True:
                raise SystemExit(f"an honest EVENT was refused: {reply!r}")
            times.append((time.perf_counter() - sent) * 1000)
    return times


async def flood_client(port: int, per_second: int, stop: asyncio.Event) -> tuple[int, int, int]:
    """Send `per_second` EVENTs a second until `stop`; returns (sent, answered, rate-limited)."""
    import websockets

    from forum import nostr

    secret = "0f" * 32
    pool = [
        nostr.sign_event(
            secret, kind=11, tags=[["h", BOARD], ["title", "f"]], content=str(i)
        ).to_json()
        for i in range(200)
    ]
    sent = answered = limited = 0
    async with websockets.connect(f"ws://127.0.0.1:{port}/relay") as relay:

        async def reader() -> None:
            nonlocal answered, limited
            async for raw in relay:
                reply = json.loads(raw)
                if reply[0] == "OK":
                    answered += 1
                    if not reply[3].startswith(
                        ("invalid:", "blocked:", "duplicate:", "rate-limited:", "error:")
                    ):
                        raise SystemExit(f"a flood EVENT was answered without a reason: {reply}")
                    limited += reply[3].startswith("rate-limited:")
                if stop.is_set() and answered >= sent:
                    return

        reading = asyncio.create_task(reader())
        started = time.perf_counter()
        while not stop.is_set():
            due = int((time.perf_counter() - started) * per_second)
            while sent < due:
                await relay.send(f'["EVENT",{pool[sent % len(pool)]}]')
                sent += 1
            await asyncio.sleep(0.01)
        # Every flood EVENT must get its OK. Checked here, not only when a reply arrives: the
        # last one may have come before `stop`, and then no reply would wake the reader.
        deadline = time.perf_counter() + 120
        while answered < sent and not reading.done():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{sent - answered} flood EVENTs got no OK in 120 s")
            await asyncio.sleep(0.01)
        if reading.done():
            reading.result()  # a reply without a reason, or the socket closed: say so
        reading.cancel()
    return sent, answered, limited


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)]


async def honest_round(port: int, keys: list[str], events: int, start: int) -> tuple[float, list]:
    began = time.perf_counter()
    results = await asyncio.gather(*(honest_client(port, key, events, start) for key in keys))
    elapsed = time.perf_counter() - began
    times = [t for r in results for t in r]
    return len(times) / elapsed, times


async def measure(port: int, keys: list[str], events: int, flood: int) -> str:
    await honest_round(port, keys[:1], 3, 0)  # warm-up: imports, connections
    rate, times = await honest_round(port, keys, events, 100)
    p50, p99 = summary(times)
    print(f"honest: {rate:.0f} accepted/s, OK p50 {p50:.0f} ms p99 {p99:.0f} ms")
    stop = asyncio.Event()
    flooding = asyncio.create_task(flood_client(port, flood, stop))
    await asyncio.sleep(1.0)
    flood_rate, flood_times = await honest_round(port, keys, events, 10_000)
    stop.set()
    sent, answered, limited = await flooding
    f50, f99 = summary(flood_times)
    print(f"under flood: {flood_rate:.0f} accepted/s, OK p50 {f50:.0f} ms p99 {f99:.0f} ms")
    print(f"flood: sent {sent}, answered {answered}, rate-limited {limited}")
    return (
        f"relay_writes: honest {len(keys)} sockets x {events} EVENTs: {rate:.0f} accepted/s,"
        f" OK p50 {p50:.0f} ms p99 {p99:.0f} ms; under a {flood}/s flood: {flood_rate:.0f}"
        f" accepted/s, OK p50 {f50:.0f} ms p99 {f99:.0f} ms; flood answered"
        f" {answered}/{sent} ({limited} rate-limited)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    # The flow measured: EVENTs charged from balances, never held, whatever the caller's HOLD_MODE.
    with own_forum("bench-relay-writes-", args.database_url, HOLD_MODE="0") as tmp:
        keys = [f"{i + 1:064x}" for i in range(args.clients)]
        populate(keys)
        with daphne_server(tmp) as port:
            line = asyncio.run(measure(port, keys, args.events, args.flood))
    print(line)


if __name__ == "__main__":
    main()
