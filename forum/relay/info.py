"""What the relay tells clients about itself: its limits and its NIP-11 document. (What an
EVENT is answered is `forum.relay.writes`: paid from a balance, or refused with a reason.)

Limits come from ``settings.NOSTR_RELAY_LIMITS`` (a dict overriding any field of
:class:`RelayLimits`), so an operator can tune them without code changes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

from forum.nostr import KIND_REPLY, KIND_THREAD
from forum.relay.selectors import BoardPrice
from forum.relay_key import relay_pubkey

HOW_TO_POST_PATH = "/how-to-post/"
SOFTWARE = "lnforum"


@dataclass(frozen=True)
class RelayLimits:
    # Bytes of one websocket text message. A REQ with 10 filters of 1000 ids is ~660 kB, so
    # 64 kB keeps a single message cheap to parse while allowing a few hundred ids.
    max_message_length: int = 65_536
    max_subscriptions: int = 20
    max_filters: int = 10
    # Total values (ids, authors, kinds, tag values) in one filter: bounds the SQL IN/OR size.
    max_filter_values: int = 1000
    max_limit: int = 500
    default_limit: int = 100
    max_subid_length: int = 64
    # Not a NIP-11 field: the stored queries of one REQ are stopped after this many seconds.
    query_seconds: float = 5.0
    # Not NIP-11 fields: EVENTs a connection may send (a token bucket: per second, burst),
    # EVENTs charged and still waiting for their verdict on one connection, and how long an
    # EVENT waits for its verdict before the answer says it is still being judged.
    events_per_second: float = 5.0
    event_burst: int = 20
    max_pending_writes: int = 10
    write_wait_seconds: float = 10.0

    @classmethod
    def from_settings(cls) -> RelayLimits:
        return cls(**getattr(settings, "NOSTR_RELAY_LIMITS", {}))


@cache
def software_version() -> str:
    pyproject = Path(settings.BASE_DIR) / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def nip11_document(
    *,
    limits: RelayLimits,
    boards: list[BoardPrice],
    side_prices: Mapping[int, int],
    max_content_length: int | None,
    node_pubkey: str | None,
    how_to_url: str,
) -> dict[str, Any]:
    """The NIP-11 relay information document. Fees are the default (first listed) board's
    for threads and replies, and `side_prices` (kind -> msat, on no board) for the rest."""
    limitation: dict[str, Any] = {
        "max_message_length": limits.max_message_length,
        "max_subscriptions": limits.max_subscriptions,
        "max_filters": limits.max_filters,
        "max_limit": limits.max_limit,
        "default_limit": limits.default_limit,
        "max_subid_length": limits.max_subid_length,
        "auth_required": False,
        # Reading is free; only publishing costs, and that is per event (fees.publication).
        "payment_required": False,
        "restricted_writes": True,
    }
    if max_content_length is not None:
        limitation["max_content_length"] = max_content_length
    document: dict[str, Any] = {
        "name": "Lightning Forum",
        "description": (
            "A forum of Nostr events (kind 11 threads, kind 1111 replies). Every post is paid"
            " by Lightning: a keysend that carries the signed event, or an EVENT sent here and"
            " paid from the author's balance (funded by a keysend with a credit record; see"
            " payments_url and balance_url). Boards are NIP-29 style h tags."
        ),
        # 9: an author's deletion (kind 5) is served, and what it deletes no longer is.
        "supported_nips": [1, 9, 11, 45, 50],
        "software": SOFTWARE,
        "version": software_version(),
        "limitation": limitation,
        "payments_url": how_to_url,
        # Not a NIP-11 field: a pubkey's balance for EVENTs sent here (append the hex pubkey).
        "balance_url": how_to_url.removesuffix(HOW_TO_POST_PATH) + "/api/balance?pubkey=",
    }
    prices = dict(side_prices)
    if boards:
        default = boards[0]
        prices = {
            KIND_THREAD: default.thread_price_msat,
            KIND_REPLY: default.reply_price_msat,
            **prices,
        }
    if prices:
        document["fees"] = {
            "publication": [
                {"kinds": [kind], "amount": amount, "unit": "msats"}
                for kind, amount in prices.items()
            ]
        }
    if node_pubkey:
        # Not a NIP-11 field: where keysends go, for clients that know this forum.
        document["lightning_node"] = node_pubkey
    # NIP-57: the zap receipts served here are signed by the relay's own key, named by `self`.
    document["supported_nips"] = sorted({*document["supported_nips"], 57})
    document["self"] = relay_pubkey()
    return document
