"""Connection flags shared by the command-line tools, named like lncli's, and the one-line
explanations they print when a node cannot be reached (never a traceback)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning.client import LightningClient
from lightning.types import LightningAuthError, LightningError, LightningUnavailable


class NodeConfigError(LightningError):
    """The flags do not say how to reach a node: a file cannot be read, a URI is malformed."""


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    conn = parser.add_argument_group("connection (like lncli's global flags)")
    conn.add_argument("--lndconnect", help="lndconnect:// URI (cert and macaroon included)")
    conn.add_argument("--rpcserver", default="localhost:10009", help="host:port of lnd's gRPC")
    conn.add_argument("--tlscertpath", type=Path, help="lnd's tls.cert")
    conn.add_argument("--macaroonpath", type=Path, help="admin.macaroon")


def _read(path: str | Path | None, flag: str, what: str) -> bytes | None:
    if not path:
        return None
    full = Path(path).expanduser()
    try:
        return full.read_bytes()
    except FileNotFoundError:
        raise NodeConfigError(
            f"{flag} {path}: no such file (the path to your node's {what})"
        ) from None
    except OSError as exc:
        raise NodeConfigError(f"{flag} {path}: cannot read it ({exc.strerror})") from None


def client_open(
    *,
    lndconnect: str | None = None,
    rpcserver: str | None = None,
    tlscertpath: str | Path | None = None,
    macaroonpath: str | Path | None = None,
) -> LightningClient:
    """A client from lncli-style flags; unreadable files raise `NodeConfigError` (one line)."""
    if lndconnect:
        try:
            return LightningClient.from_lndconnect(lndconnect)
        except LightningError as exc:
            raise NodeConfigError(f"--lndconnect: {exc.message}") from None
    cert = _read(tlscertpath, "--tlscertpath", "tls.cert")
    macaroon = _read(macaroonpath, "--macaroonpath", "macaroon (admin.macaroon)")
    return LightningClient(rpcserver or "localhost:10009", tls_cert=cert, macaroon=macaroon)


def client_from_args(args: argparse.Namespace) -> LightningClient:
    return client_open(
        lndconnect=args.lndconnect,
        rpcserver=args.rpcserver,
        tlscertpath=args.tlscertpath,
        macaroonpath=args.macaroonpath,
    )


def describe_node_error(exc: LightningError, *, rpcserver: str | None = None) -> str:
    """One line a person can act on, for an error talking to their own node."""
    where = rpcserver or "your node"
    if isinstance(exc, NodeConfigError):
        return exc.message
    if isinstance(exc, LightningUnavailable):
        return (
            f"cannot reach the Lightning node at {where}: {exc.message.splitlines()[0]}. "
            "Is it running, and is that its gRPC address (lncli's --rpcserver)?"
        )
    if isinstance(exc, LightningAuthError):
        return (
            f"the node at {where} refused the macaroon: {exc.message}. "
            "Pass one that may send payments (--macaroonpath admin.macaroon)."
        )
    return f"the node at {where} answered: {exc.message}"
