"""Who the forum's node is: its client and its identity pubkey (asked once per address)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from forum.services import node

if TYPE_CHECKING:
    from lightning.client import LightningClient

_pubkeys: dict[str, str] = {}
_lock = threading.Lock()


def forum_client() -> LightningClient:
    return node.client()


def forum_node_pubkey(client: LightningClient | None = None) -> str:
    """The node's identity pubkey; cached per gRPC address (a node never changes its key)."""
    client = client or forum_client()
    with _lock:
        cached = _pubkeys.get(client.host)
    if cached:
        return cached
    pubkey = client.get_info().identity_pubkey
    with _lock:
        _pubkeys[client.host] = pubkey
    return pubkey


def forget() -> None:
    """Tests restart simnet on new ports and keys."""
    with _lock:
        _pubkeys.clear()
