"""simnet: a simulated Lightning network that speaks lnd's gRPC.

Each node of the network is served on its own port, over TLS with its own
self-signed certificate, and checks lnd-style macaroons, so the real
``LightningClient`` (or any lnd client) talks to it unchanged. Files per
node, where an lnd user looks for them::

    <data_dir>/<node>/tls.cert, tls.key
    <data_dir>/<node>/data/chain/bitcoin/regtest/admin.macaroon

State (nodes, keys, channels, balances, invoices, payments, ports) lives in
``<data_dir>/simnet.sqlite3``; ``SimNet.start`` on the same directory restores
it and ignores the topology. The default topology (``topology.json``) has the
forum node (accepts keysend), router1, router2 and the demo users alice and
bob (accept keysend), all funded, with 1-hop (alice), 2-hop (bob via router1)
and 3-hop (alice via router2, router1) routes to forum.

Simplifications against a real network: the sender knows every channel's
balance (routes never fail mid-way), HTLCs resolve at once unless held, channels have no
reserve or commitment fee. Hold invoices and lnd's keysend hold mode
(``keysend_hold_seconds`` per node in the topology) are supported.
"""

from __future__ import annotations

import argparse
import fcntl
import signal
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from lightning import lndconnect
from lightning.client import MAX_MESSAGE_SIZE, LightningClient
from lightning.simnet import auth
from lightning.simnet.network import Network
from lightning.simnet.servicers import MacaroonInterceptor, add_services

MACAROON_SUBPATH = Path("data/chain/bitcoin/regtest/admin.macaroon")
_WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")
# Streams (SubscribeInvoices, SendPaymentV2) hold a worker thread each.
_MAX_WORKERS = 256


@dataclass
class SimNode:
    """One simulated lnd node as a client sees it."""

    name: str
    alias: str
    pubkey: str
    grpc_address: str  # "host:port"
    tls_cert_path: Path
    macaroon_path: Path

    def lndconnect_uri(self) -> str:
        return lndconnect.build(
            self.grpc_address,
            tls_cert=self.tls_cert_path.read_bytes(),
            macaroon=self.macaroon_path.read_bytes(),
        )

    def client(self, **kw: Any) -> LightningClient:
        return LightningClient.from_files(
            self.grpc_address, self.tls_cert_path, self.macaroon_path, **kw
        )


class SimNet:
    """A running simulated network; build it with ``SimNet.start``."""

    def __init__(
        self,
        network: Network,
        nodes: dict[str, SimNode],
        servers: list[grpc.Server],
        lock_file: Any,
    ) -> None:
        self.network = network
        self.nodes = nodes
        self._servers = servers
        self._lock_file = lock_file
        self._stopped = False

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        topology: Path | dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        base_port: int = 0,
        tls_extra_domains: tuple[str, ...] = (),
    ) -> SimNet:
        """Create or restore the network in ``data_dir`` and serve every node.

        ``base_port`` 0 reuses the ports of the previous run in this
        directory when they are free, otherwise picks free ones; a non-zero
        base gives node i the port ``base_port + i``.
        """
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        lock_file = _lock(data_dir)
        try:
            network = Network(data_dir, topology)
        except BaseException:
            lock_file.close()
            raise
        advertise = "127.0.0.1" if host in _WILDCARD_HOSTS else host
        san_hosts = [advertise, host, socket.gethostname(), *tls_extra_domains]
        nodes: dict[str, SimNode] = {}
        servers: list[grpc.Server] = []
        try:
            for i, node in enumerate(network.nodes.values()):
                node_dir = data_dir / node.name
                cert = auth.ensure_tls(
                    node_dir / "tls.cert",
                    node_dir / "tls.key",
                    common_name=node.name,
                    hosts=[h for h in san_hosts if h not in _WILDCARD_HOSTS],
                )
                macaroon_path = node_dir / MACAROON_SUBPATH
                macaroon_path.parent.mkdir(parents=True, exist_ok=True)
                macaroon_path.write_bytes(node.macaroon)
                macaroon_path.chmod(0o600)
                server = grpc.server(
                    ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix=node.name),
                    interceptors=[MacaroonInterceptor(node.root_key)],
                    options=[
                        ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
                        ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
                        # Two simnets must not silently share a port.
                        ("grpc.so_reuseport", 0),
                    ],
                )
                add_services(server, network, node.name, advertise)
                creds = grpc.ssl_server_credentials([((node_dir / "tls.key").read_bytes(), cert)])
                wanted = base_port + i if base_port else node.port
                port = _bind(server, host, wanted, creds, fallback=not base_port)
                network.set_port(node.name, port)
                server.start()
                servers.append(server)
                nodes[node.name] = SimNode(
                    name=node.name,
                    alias=node.alias,
                    pubkey=node.pubkey,
                    grpc_address=f"{advertise}:{port}",
                    tls_cert_path=node_dir / "tls.cert",
                    macaroon_path=macaroon_path,
                )
        except BaseException:
            for server in servers:
                server.stop(None)
            network.close()
            lock_file.close()
            raise
        return cls(network, nodes, servers, lock_file)

    def stop(self, grace: float = 0.5) -> None:
        """Stop serving and close the database; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        # End invoice streams first so clients see UNAVAILABLE promptly.
        self.network.begin_shutdown()
        events = [server.stop(grace) for server in self._servers]
        for event in events:
            event.wait()
        self.network.close()
        self._lock_file.close()  # releases the flock

    def __enter__(self) -> SimNet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _lock(data_dir: Path) -> Any:
    """Hold an exclusive lock on the data dir: two simnets must not share one state."""
    handle = (data_dir / "simnet.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RuntimeError(f"another simnet is already serving {data_dir}") from None
    return handle


def _bind(
    server: grpc.Server, host: str, port: int, creds: grpc.ServerCredentials, *, fallback: bool
) -> int:
    address = f"[{host}]" if ":" in host and not host.startswith("[") else host
    try:
        bound = server.add_secure_port(f"{address}:{port}", creds)
    except RuntimeError:
        bound = 0
    if not bound and fallback and port:
        # The previous run's port is taken: take any free one.
        bound = server.add_secure_port(f"{address}:0", creds)
    if not bound:
        raise OSError(f"cannot bind {host}:{port}")
    return bound


def main(argv: list[str] | None = None) -> int:
    """``python -m lightning.simnet``: start, print one line per node, serve until signalled."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning.simnet",
        description="Serve a simulated Lightning network over lnd's gRPC API.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var/simnet"),
        help="state, certificates and macaroons (default: var/simnet)",
    )
    parser.add_argument("--topology", type=Path, default=None, help="JSON topology (first start)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (0.0.0.0: all interfaces)"
    )
    parser.add_argument("--base-port", type=int, default=0, help="node i serves on base+i")
    parser.add_argument(
        "--tlsextradomain",
        action="append",
        default=[],
        help="extra DNS name or IP for the TLS certificates (repeatable, like lnd)",
    )
    args = parser.parse_args(argv)
    # Many payment threads share the GIL with each invoice stream; a shorter
    # switch interval keeps stream latency low under load (main() owns the
    # process, so changing it here is fine).
    sys.setswitchinterval(0.0005)
    simnet = SimNet.start(
        args.data_dir,
        topology=args.topology,
        host=args.host,
        base_port=args.base_port,
        tls_extra_domains=tuple(args.tlsextradomain),
    )
    stop = threading.Event()
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    except ValueError:
        pass  # not the main thread: rely on KeyboardInterrupt / the caller
    try:
        for node in simnet.nodes.values():
            print(node.name, node.pubkey, node.grpc_address, node.lndconnect_uri(), flush=True)
        print(f"simnet: serving {len(simnet.nodes)} nodes from {args.data_dir}", file=sys.stderr)
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        simnet.stop()
    return 0


__all__ = ["MACAROON_SUBPATH", "SimNet", "SimNode", "main"]
