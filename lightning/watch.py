"""Print a node's invoice stream as JSON lines, custom records included.

    python -m lightning.watch --lndconnect URI [--add_index N] [--settle_index N]

Uses the reconnecting ``invoice_events`` (lnd's SubscribeInvoices replay
rules: an index of 0 replays nothing, N replays everything after N), so it
keeps running across node restarts until interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from lightning.cli import add_connection_args, client_from_args
from lightning.types import Invoice, LightningError


def event_json(inv: Invoice) -> str:
    records = {
        str(t): {"hex": v.hex(), "utf8": v.decode("utf-8", "replace")}
        for t, v in inv.custom_records.items()
    }
    return json.dumps(
        {
            "state": inv.state,
            "add_index": inv.add_index,
            "settle_index": inv.settle_index,
            "payment_hash": inv.payment_hash,
            "value_msat": inv.value_msat,
            "amt_paid_msat": inv.amt_paid_msat,
            "is_keysend": inv.is_keysend,
            "memo": inv.memo,
            "custom_records": records,
        },
        ensure_ascii=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lightning.watch", description=__doc__.splitlines()[0]
    )
    add_connection_args(parser)
    parser.add_argument("--add_index", type=int, default=0)
    parser.add_argument("--settle_index", type=int, default=0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    except ValueError:
        pass  # not the main thread
    try:
        with client_from_args(args) as client:
            events = client.invoice_events(
                add_index=args.add_index, settle_index=args.settle_index, stop=stop
            )
            for inv in events:
                print(event_json(inv), flush=True)
    except LightningError as exc:
        print(f"[lightning.watch] {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
