"""Command-line payer mirroring ``lncli sendpayment --keysend``.

    python -m lightning.pay --lndconnect URI --keysend --dest PUBKEY --amt SATS \\
        --data 34349334=68656c6c6f,65537=0a21ff
    python -m lightning.pay --rpcserver 127.0.0.1:10009 --tlscertpath tls.cert \\
        --macaroonpath admin.macaroon --pay_req lnbcrt...

Works against any lnd or simnet node. Prints the final payment as JSON and
exits 0 when it succeeded, 1 when it failed, 2 on a usage or RPC error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from lightning.cli import add_connection_args, client_from_args, describe_node_error
from lightning.types import LightningError


def parse_data(text: str) -> dict[int, bytes]:
    """lncli's ``--data`` format: ``<decimal record type>=<hex value>``, comma-separated."""
    records: dict[int, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"invalid data format: {item!r} (want TYPE=HEX)")
        try:
            records[int(key)] = bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError(f"invalid data format: {item!r}: {exc}") from exc
    return records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lightning.pay", description=__doc__.splitlines()[0]
    )
    add_connection_args(parser)
    pay = parser.add_argument_group("payment (like lncli sendpayment)")
    pay.add_argument("--keysend", action="store_true", help="spontaneous payment to --dest")
    pay.add_argument("--dest", help="33-byte destination pubkey, hex")
    pay.add_argument("--amt", type=int, default=0, help="amount in satoshis")
    pay.add_argument("--amt_msat", type=int, default=0, help="amount in millisatoshis")
    pay.add_argument("--data", default="", help="custom records: TYPE=HEX,TYPE=HEX")
    pay.add_argument("--fee_limit", type=int, help="maximum fee in satoshis")
    pay.add_argument("--timeout", type=int, default=60, help="payment timeout in seconds")
    pay.add_argument("--pay_req", help="BOLT 11 payment request instead of --keysend")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.amt and args.amt_msat:
        parser.error("--amt and --amt_msat are mutually exclusive")
    amt_msat = args.amt_msat or args.amt * 1000
    fee_limit_msat = None if args.fee_limit is None else args.fee_limit * 1000
    try:
        records = parse_data(args.data)
    except ValueError as exc:
        parser.error(str(exc))
    if args.pay_req and args.keysend:
        parser.error("--pay_req cannot be combined with --keysend")
    if not args.pay_req and not (args.keysend and args.dest and amt_msat):
        parser.error("need --keysend --dest PUBKEY --amt SATS, or --pay_req")
    try:
        with client_from_args(args) as client:
            if args.pay_req:
                payment = client.pay_invoice(
                    args.pay_req,
                    amt_msat=amt_msat,
                    fee_limit_msat=fee_limit_msat,
                    timeout_seconds=args.timeout,
                )
            else:
                payment = client.keysend(
                    args.dest,
                    amt_msat,
                    records,
                    fee_limit_msat=fee_limit_msat,
                    timeout_seconds=args.timeout,
                )
    except LightningError as exc:
        where = None if args.lndconnect else args.rpcserver
        print(f"error: {describe_node_error(exc, rpcserver=where)}", file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(payment), indent=2))
    return 0 if payment.succeeded else 1


if __name__ == "__main__":
    raise SystemExit(main())
