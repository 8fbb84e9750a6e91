"""The typed results and errors the rest of the project sees from lnd.

Everything outside ``lightning.client`` and ``lightning.simnet`` works with
these frozen dataclasses, never with protobuf messages. Amounts are integer
msat; hashes, preimages and pubkeys are lowercase hex strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# bLIP-0003: the keysend preimage travels in this onion TLV record.
KEYSEND_PREIMAGE_RECORD = 5482373484
# BOLT 1: record types below this are reserved for the protocol itself.
CUSTOM_RECORD_MIN = 65536

INVOICE_STATES = ("OPEN", "SETTLED", "CANCELED", "ACCEPTED")
PAYMENT_STATUSES = ("UNKNOWN", "IN_FLIGHT", "SUCCEEDED", "FAILED", "INITIATED")
FAILURE_REASONS = (
    "FAILURE_REASON_NONE",
    "FAILURE_REASON_TIMEOUT",
    "FAILURE_REASON_NO_ROUTE",
    "FAILURE_REASON_ERROR",
    "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS",
    "FAILURE_REASON_INSUFFICIENT_BALANCE",
    "FAILURE_REASON_CANCELED",
)


class LightningError(Exception):
    """Base class of every error the client raises."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        # The gRPC status code name ("UNKNOWN", "NOT_FOUND", ...), if any.
        self.code = code


class LightningUnavailable(LightningError):
    """The node cannot be reached: server gone, UNAVAILABLE, deadline exceeded."""


class LightningAuthError(LightningError):
    """The node refused our credentials (missing, wrong or expired macaroon)."""


class InvoiceNotFound(LightningError):
    """No invoice with that payment hash."""


class PaymentNotFound(LightningError):
    """No payment with that hash was ever initiated (TrackPaymentV2 NOT_FOUND)."""


class PaymentAlreadyExists(LightningError):
    """A payment with this hash is already paid or in flight (ALREADY_EXISTS)."""


class LightningRequestError(LightningError):
    """lnd rejected the request; ``message`` keeps lnd's own text."""


def _sorted_records(records: Mapping[int, bytes]) -> dict[int, bytes]:
    return dict(sorted(records.items()))


@dataclass(frozen=True)
class NodeInfo:
    identity_pubkey: str
    alias: str
    block_height: int
    synced_to_chain: bool
    uris: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class InvoiceHtlc:
    chan_id: int
    htlc_index: int
    amt_msat: int
    state: str  # "ACCEPTED" | "SETTLED" | "CANCELED"
    accept_time: int
    resolve_time: int
    # Left out of hash() because a dict is not hashable; still compared. A
    # plain dict (not a read-only proxy) so dataclasses.asdict/deepcopy work.
    custom_records: Mapping[int, bytes] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Sorted by type, like the onion TLV stream.
        object.__setattr__(self, "custom_records", _sorted_records(self.custom_records))


@dataclass(frozen=True)
class Invoice:
    payment_hash: str
    preimage: str | None
    memo: str
    value_msat: int
    amt_paid_msat: int
    state: str  # "OPEN" | "SETTLED" | "CANCELED" | "ACCEPTED"
    is_keysend: bool
    add_index: int
    settle_index: int
    creation_date: int
    settle_date: int
    payment_request: str
    htlcs: tuple[InvoiceHtlc, ...] = ()

    @property
    def custom_records(self) -> dict[int, bytes]:
        """All custom records of the invoice's HTLCs (a keysend has one HTLC).

        Includes the keysend preimage record, as lnd reports it.
        """
        merged: dict[int, bytes] = {}
        for htlc in self.htlcs:
            merged.update(htlc.custom_records)
        return merged

    @property
    def settled(self) -> bool:
        return self.state == "SETTLED"


@dataclass(frozen=True)
class InvoicePage:
    invoices: tuple[Invoice, ...]
    first_index_offset: int
    last_index_offset: int


@dataclass(frozen=True)
class Payment:
    payment_hash: str
    preimage: str  # "" until the payment succeeds (lnd sends all zeros until then)
    value_msat: int
    fee_msat: int
    status: str  # "IN_FLIGHT" | "SUCCEEDED" | "FAILED" | "INITIATED"
    failure_reason: str  # lnd's names: "FAILURE_REASON_NONE", "FAILURE_REASON_NO_ROUTE", ...
    route_length: int  # hops of the successful route, 0 if none
    payment_index: int = 0
    creation_time_ns: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def final(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class PayReq:
    """A decoded BOLT 11 payment request (lnd's DecodePayReq), what a payer checks first."""

    destination: str
    payment_hash: str
    amount_msat: int
    description: str
    description_hash: str  # hex, "" when the request carries a description instead
    timestamp: int
    expiry: int


@dataclass(frozen=True)
class Channel:
    chan_id: int
    remote_pubkey: str
    capacity_sat: int
    local_balance_sat: int
    remote_balance_sat: int
    active: bool
    channel_point: str = ""
