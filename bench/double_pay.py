"""Double payment in hold mode: the same signed event paid several times at the same moment.

    .venv/bin/python bench/double_pay.py [--races 20] [--copies 2] [--parts 0]

Everything in one process, as the embedded default runs: simnet over real gRPC sockets with a
forum node that holds keysends, the listener with its hold reviewer, reconciliation run eagerly
by the listener, on a scratch SQLite database in a temporary directory. Each race signs a new
thread from a fresh key; `--copies` sender threads wait at a barrier and then keysend it from
alice's node at once (`--parts N`: each copy as N parts, all parts of all copies at once).

Charged per event is what alice's node paid for that race (its channel balances before and
after), checked against the forum's settled ledger rows for the event id. Hold mode keeps its
promise when every race cost exactly one price. The last line is

    double-pay: K races, charged per event min A / max B msat, price P msat
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox import (  # noqa: E402 (after the path is set)
    THREAD_PRICE_MSAT,
    balance_msat,
    listening_simnet,
    setup_django,
)

if TYPE_CHECKING:
    from lightning.simnet import SimNet


def race_once(net: SimNet, forum_pubkey: str, copies: int, parts: int) -> tuple[int, int, str]:
    """One race; returns (msat alice paid, msat the ledger settled for the event, event id)."""
    from forum import nostr, protocol
    from forum.services import node

    key = nostr.generate_secret_key()
    event = nostr.thread_event(key, board="general", title="race", content="word " * 120)
    if parts:
        data = protocol.pack_event(event)
        size = -(-len(data) // parts)
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        count = len(chunks)
        share = -(-THREAD_PRICE_MSAT // count)
        payments = [
            (protocol.encode_part(event.id, i, count, chunk), share)
            for i, chunk in enumerate(chunks)
        ] * copies
    else:
        payments = [(protocol.encode_event(event), THREAD_PRICE_MSAT)] * copies
    barrier = threading.Barrier(len(payments))
    outcomes: list[object] = [None] * len(payments)

    def send(i: int) -> None:
        records, amount = payments[i]
        client = node.client("alice")
        barrier.wait(timeout=30)
        try:
            outcomes[i] = client.keysend(forum_pubkey, amount, records)
        except Exception as exc:  # reported below
            outcomes[i] = exc

    before = balance_msat(net, "alice")
    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(payments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    failures = [o for o in outcomes if isinstance(o, Exception) or o is None]
    if failures:
        raise SystemExit(f"bench: a keysend did not complete: {failures[0]!r}")
    paid = before - balance_msat(net, "alice")
    return paid, ledger_settled_msat(event.id, expect=paid), event.id


def ledger_settled_msat(event_id: str, *, expect: int) -> int:
    """The forum's settled rows for `event_id` once the listener recorded what alice paid."""
    from django.db.models import Sum

    from forum.models import LedgerEntry

    deadline = time.monotonic() + 30
    total = 0
    while time.monotonic() < deadline:
        rows = LedgerEntry.objects.filter(event_id=event_id, status=LedgerEntry.Status.SETTLED)
        total = rows.aggregate(total=Sum("amount_msat"))["total"] or 0
        if total >= expect:
            break
        time.sleep(0.05)
    return total


def run(races: int, copies: int, parts: int) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-double-pay-") as tmp:
        data_dir = Path(tmp)
        setup_django(data_dir)
        from forum.models import Event

        charged: list[int] = []
        with listening_simnet(data_dir) as net:
            forum_pubkey = net.nodes["forum"].pubkey
            for n in range(races):
                paid, recorded, event_id = race_once(net, forum_pubkey, copies, parts)
                if paid != recorded:
                    print(f"race {n}: alice paid {paid} msat, the ledger settled {recorded} msat")
                published = 0
                deadline = time.monotonic() + 30
                while not published and time.monotonic() < deadline:
                    rows = Event.objects.filter(event_id=event_id, state="published")
                    published = rows.count()
                    time.sleep(0.05)
                print(f"race {n + 1}: charged {paid} msat, published {published}")
                charged.append(paid)
    price = THREAD_PRICE_MSAT if not parts else -(-THREAD_PRICE_MSAT // parts) * parts
    return (
        f"double-pay: {races} races, charged per event min {min(charged)} / max {max(charged)} "
        f"msat, price {price} msat"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--races", type=int, default=20)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--parts", type=int, default=0, help="send each copy as N parts")
    args = parser.parse_args(argv)
    print(run(args.races, args.copies, args.parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
