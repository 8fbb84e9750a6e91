"""Connection flags shared by the command-line tools, named like lncli's."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning.client import LightningClient


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    conn = parser.add_argument_group("connection (like lncli's global flags)")
    conn.add_argument("--lndconnect", help="lndconnect:// URI (cert and macaroon included)")
    conn.add_argument("--rpcserver", default="localhost:10009", help="host:port of lnd's gRPC")
    conn.add_argument("--tlscertpath", type=Path, help="lnd's tls.cert")
    conn.add_argument("--macaroonpath", type=Path, help="admin.macaroon")


def client_from_args(args: argparse.Namespace) -> LightningClient:
    if args.lndconnect:
        return LightningClient.from_lndconnect(args.lndconnect)
    return LightningClient.from_files(args.rpcserver, args.tlscertpath, args.macaroonpath)
