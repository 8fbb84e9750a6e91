"""BOLT 4 onion payload budget, computed the way lnd does.

lnd skips every path whose hop payloads exceed the 1300-byte routing info
(``routing/pathfind.go``), so a keysend with too much custom data fails with
FAILURE_REASON_NO_ROUTE. The size of one hop is lnd's ``route.Hop.PayloadSize``:
sum(BigSize(type) + BigSize(len) + len) over its TLV records, plus
BigSize(total) and a 32-byte HMAC. simnet uses this to decide which routes
fit; the forum can use ``max_record_size`` to split messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lightning.types import KEYSEND_PREIMAGE_RECORD

MAX_ROUTING_PAYLOAD = 1300  # lightning-onion MaxRoutingPayloadSize
HMAC_SIZE = 32
MAX_HOPS = 27  # lightning-onion NumMaxHops

# BOLT 4 onion TLV types (lnd record/hop.go).
AMT_TO_FORWARD_TYPE = 2
OUTGOING_CLTV_TYPE = 4
SHORT_CHANNEL_ID_TYPE = 6


def bigsize_len(value: int) -> int:
    """Bytes of BOLT 1 BigSize(value)."""
    if value < 0xFD:
        return 1
    if value < 0x10000:
        return 3
    if value < 0x1_0000_0000:
        return 5
    return 9


def truncated_len(value: int) -> int:
    """Bytes of a BOLT 1 truncated integer (tu32/tu64): no leading zero bytes."""
    return (value.bit_length() + 7) // 8


def _record(tlv_type: int, length: int) -> int:
    return bigsize_len(tlv_type) + bigsize_len(length) + length


@dataclass(frozen=True)
class HopPayload:
    """What lnd puts in one hop's onion payload (the fields that have a size)."""

    amt_to_forward_msat: int
    outgoing_cltv: int
    next_chan_id: int = 0  # 0 for the final hop
    custom_records: Mapping[int, int] | None = None  # type -> value length

    def size(self) -> int:
        """lnd route.Hop.PayloadSize."""
        records = self.records_size()
        return records + bigsize_len(records) + HMAC_SIZE

    def records_size(self) -> int:
        """The hop's TLV records alone, before the length prefix and the HMAC."""
        size = 0
        if self.amt_to_forward_msat:
            size += _record(AMT_TO_FORWARD_TYPE, truncated_len(self.amt_to_forward_msat))
        if self.outgoing_cltv:
            size += _record(OUTGOING_CLTV_TYPE, truncated_len(self.outgoing_cltv))
        if self.next_chan_id:
            size += _record(SHORT_CHANNEL_ID_TYPE, 8)
        for tlv_type, length in (self.custom_records or {}).items():
            size += _record(tlv_type, length)
        return size


def route_payload_size(hops: Sequence[HopPayload]) -> int:
    return sum(hop.size() for hop in hops)


def fits(hops: Sequence[HopPayload]) -> bool:
    return len(hops) <= MAX_HOPS and route_payload_size(hops) <= MAX_ROUTING_PAYLOAD


def max_record_size(
    hops: int,
    *,
    amt_msat: int = 1000,
    cltv: int = 950_000,
    record_type: int = 65537,
    other_records: Mapping[int, int] | None = None,
    forward_amt_msat: int | None = None,
) -> int:
    """Largest value for one extra keysend record on a route of ``hops`` hops.

    Assumes every intermediate hop forwards ``forward_amt_msat`` (default:
    ``amt_msat``) with a cltv the size of ``cltv``. Exact for the final hop;
    real intermediate amounts include fees and may be a byte longer each.
    """
    forward = forward_amt_msat or amt_msat
    intermediate = HopPayload(forward, cltv, next_chan_id=1).size() * (hops - 1)
    best = -1
    # Payload size is monotonic in the value length; a linear scan is plenty.
    for length in range(MAX_ROUTING_PAYLOAD):
        records = {KEYSEND_PREIMAGE_RECORD: 32, record_type: length, **(other_records or {})}
        final = HopPayload(amt_msat, cltv, custom_records=records).size()
        if intermediate + final > MAX_ROUTING_PAYLOAD:
            break
        best = length
    return best
