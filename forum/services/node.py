"""The forum's own Lightning node: where to find it and one shared client for it.

A real lnd is configured with LND_GRPC_HOST + LND_TLS_CERT + LND_MACAROON or LND_CONNECT.
With simnet, the running simulator writes `nodes.json` into its data dir and we read the
forum node's address and credential paths from there.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from lightning.client import LightningClient

NODES_FILE = "nodes.json"


class NodeNotConfigured(RuntimeError):
    """No lnd settings and no running simnet to talk to."""


@dataclass(frozen=True)
class NodeEndpoint:
    host: str = ""
    tls_cert_path: str = ""
    macaroon_path: str = ""
    lndconnect: str = ""


def simnet_nodes(data_dir: Path | None = None) -> dict[str, dict]:
    path = Path(data_dir or settings.SIMNET_DATA_DIR) / NODES_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def write_simnet_nodes(simnet, data_dir: Path) -> None:
    """Record where each simnet node listens so other processes (listener, CLI) can reach it."""
    nodes = {
        name: {
            "pubkey": node.pubkey,
            "alias": node.alias,
            "host": node.grpc_address,
            "tls_cert": str(node.tls_cert_path),
            "macaroon": str(node.macaroon_path),
            "lndconnect": node.lndconnect_uri(),
        }
        for name, node in simnet.nodes.items()
    }
    tmp = Path(data_dir) / (NODES_FILE + ".tmp")
    tmp.write_text(json.dumps(nodes, indent=2))
    tmp.replace(Path(data_dir) / NODES_FILE)


def endpoint(node_name: str | None = None) -> NodeEndpoint:
    name = node_name or settings.LND_NODE_NAME
    if settings.LND_CONNECT and node_name is None:
        return NodeEndpoint(lndconnect=settings.LND_CONNECT)
    if settings.LND_GRPC_HOST and node_name is None:
        return NodeEndpoint(
            host=settings.LND_GRPC_HOST,
            tls_cert_path=settings.LND_TLS_CERT,
            macaroon_path=settings.LND_MACAROON,
        )
    if settings.SIMNET_ENABLED:
        node = simnet_nodes().get(name)
        if node:
            return NodeEndpoint(
                host=node["host"], tls_cert_path=node["tls_cert"], macaroon_path=node["macaroon"]
            )
    raise NodeNotConfigured(
        "no Lightning node configured: set LND_GRPC_HOST/LND_TLS_CERT/LND_MACAROON or LND_CONNECT, "
        "or start simnet (make run does)"
    )


def make_client(ep: NodeEndpoint) -> LightningClient:
    from lightning.client import LightningClient

    if ep.lndconnect:
        return LightningClient.from_lndconnect(ep.lndconnect)
    return LightningClient.from_files(ep.host, ep.tls_cert_path or None, ep.macaroon_path or None)


_clients: dict[str | None, tuple[NodeEndpoint, LightningClient]] = {}
_clients_lock = threading.Lock()


def client(node_name: str | None = None) -> LightningClient:
    """A shared client for the forum node (or a named simnet node); rebuilt if the endpoint moved."""
    ep = endpoint(node_name)
    with _clients_lock:
        cached = _clients.get(node_name)
        if cached and cached[0] == ep:
            return cached[1]
        if cached:
            cached[1].close()
        fresh = make_client(ep)
        _clients[node_name] = (ep, fresh)
        return fresh


def reset_clients() -> None:
    with _clients_lock:
        for _, cached_client in _clients.values():
            cached_client.close()
        _clients.clear()
