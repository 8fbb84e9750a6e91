"""The forum's keysend message protocol: our custom TLV records, multipart, onion sizes.

This module owns the bytes that travel in a keysend onion next to lnd's preimage record
(5482373484): how a signed event (:mod:`forum.nostr`) becomes a handful of custom
records and back, how an event too large for one onion is split into parts and joined
again, the top-up and tip messages that name an event, and how many bytes an onion
leaves for our records on a route of N hops. ``docs/protocol.md`` is its user manual.
It is pure: no Django, no I/O.

Every record value is UTF-8 text, because WebLN wallets take ``customRecords`` values as
plain strings. Within that constraint the encoding is compact: 32/64-byte values as
unpadded base64url, numbers as decimal, tags as compact JSON in which every 64-hex string
(event ids and pubkeys, which replies repeat) becomes an index into one base64url table,
content as raw UTF-8. The event id is not sent: the receiver recomputes it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forum import nostr
from forum.nostr import Event, EventError
from lightning.onion import HMAC_SIZE, MAX_HOPS, MAX_ROUTING_PAYLOAD, HopPayload, bigsize_len
from lightning.types import KEYSEND_PREIMAGE_RECORD

PROTOCOL_VERSION = 1

# One block of odd types (odd = "ignore if unknown" in BOLT 1 terms, although lnd hands
# every custom record >= 65536 to the invoice anyway). 0x3F5A01 is arbitrary and clear of
# every registry we know (bLIP-0002, Podcasting 2.0, whatsat, Sphinx). All types stay
# below 2**32, so each costs 5 bytes of BigSize in the onion.
RECORD_BASE = 0x3F5A01  # 4151809
RECORD_BLOCK_SIZE = 64  # types RECORD_BASE .. RECORD_BASE + 63 are reserved for us
RECORD_TYPES: dict[str, int] = {
    "version": RECORD_BASE,  # "1"; in every forum message
    "pubkey": RECORD_BASE + 2,  # base64url, 32 bytes (43 chars)
    "sig": RECORD_BASE + 4,  # base64url, 64 bytes (86 chars)
    "created_at": RECORD_BASE + 6,  # decimal
    "kind": RECORD_BASE + 8,  # decimal
    "tags": RECORD_BASE + 10,  # compact tags JSON; omitted when there are no tags
    "content": RECORD_BASE + 12,  # raw UTF-8; omitted when empty
    "part": RECORD_BASE + 14,  # "<index>/<count>/<event id base64url>"
    "part_data": RECORD_BASE + 16,  # a UTF-8 slice of the packed event
    "topup": RECORD_BASE + 18,  # event id base64url
    "tip": RECORD_BASE + 20,  # event id base64url (docs/rooms-and-tips.md)
    "credit": RECORD_BASE + 22,  # pubkey base64url: fund its relay balance (docs/relay.md)
}
KEYSEND_PREIMAGE_TYPE = KEYSEND_PREIMAGE_RECORD  # lnd's, never ours

_T = RECORD_TYPES
_NAMES = {number: name for name, number in RECORD_TYPES.items()}
_EVENT_FIELDS = ("pubkey", "sig", "created_at", "kind", "tags", "content")
_CATEGORIES = {
    "event": frozenset(_EVENT_FIELDS),
    "part": frozenset({"part", "part_data"}),
    "topup": frozenset({"topup"}),
    "tip": frozenset({"tip"}),
    "credit": frozenset({"credit"}),
}

# A part count this high already carries ~140 kB, beyond any board's content limit;
# the cap bounds what a receiver must buffer for one event id.
MAX_PARTS = 128

_HEX64 = re.compile(r"[0-9a-f]{64}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class ProtocolError(ValueError):
    """Records that do not form a valid forum message.

    ``code``: ``malformed``, ``unsupported_version``, ``incomplete_parts`` (join before all
    parts arrived), or the :class:`forum.nostr.EventError` code (``malformed``, ``bad_id``,
    ``bad_signature``) when the event inside is at fault. ``event_id`` is set when the
    message names or yields one, so a rejection can still be filed under it.
    """

    def __init__(self, code: str, message: str, *, event_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.event_id = event_id


def _malformed(message: str) -> ProtocolError:
    return ProtocolError("malformed", message)


@dataclass(frozen=True)
class EventMessage:
    """A whole signed event in one payment (already verified)."""

    event: Event


@dataclass(frozen=True)
class PartMessage:
    """One part of a multipart event: ``data`` is a UTF-8 slice of its packed form."""

    event_id: str
    index: int
    count: int
    data: bytes


@dataclass(frozen=True)
class TopUpMessage:
    """A payment that adds its amount to an (underpaid) event's payment."""

    event_id: str


@dataclass(frozen=True)
class TipMessage:
    """A tip for a published event: sats for the post, forwarded in part to its author."""

    event_id: str


@dataclass(frozen=True)
class CreditMessage:
    """A payment that funds ``pubkey``'s balance, spent by EVENTs sent to the relay."""

    pubkey: str


Message = EventMessage | PartMessage | TopUpMessage | TipMessage | CreditMessage


# --- value codecs ----------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, name: str) -> bytes:
    """Strict inverse of :func:`b64url_encode`: alphabet, length and canonical form."""
    # The stdlib decoder skips foreign characters and ignores non-zero trailing bits;
    # either would give one event two encodings, so both are refused here.
    if _B64URL.fullmatch(text) is None or len(text) % 4 == 1:
        raise _malformed(f"{name} is not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise _malformed(f"{name} is not canonical base64url")
    return data


def _b64url_hex(text: str, name: str, nbytes: int) -> str:
    data = b64url_decode(text, name)
    if len(data) != nbytes:
        raise _malformed(f"{name} must encode {nbytes} bytes, not {len(data)}")
    return data.hex()


def _decimal(text: str, name: str) -> int:
    if _DECIMAL.fullmatch(text) is None:
        raise _malformed(f"{name} must be a decimal number (no sign, no leading zeros)")
    return int(text)


def encode_tags(tags: Sequence[Sequence[str]]) -> str:
    """Compact tags: JSON where each 64-hex string is an index into a leading table.

    ``[["E",id,"",pk],["P",pk]]`` becomes ``["<b64url(id||pk)>",["E",0,"",1],["P",1]]``.
    Nostr tag elements are always strings, so a JSON integer is unambiguous; only exact
    lowercase 64-hex strings are replaced, so decoding restores the tags byte for byte.
    """
    table: list[bytes] = []
    index: dict[str, int] = {}
    body: list[list[str | int]] = []
    for tag in tags:
        out: list[str | int] = []
        for item in tag:
            if _HEX64.fullmatch(item):
                if item not in index:
                    index[item] = len(table)
                    table.append(bytes.fromhex(item))
                out.append(index[item])
            else:
                out.append(item)
        body.append(out)
    doc: list[Any] = [b64url_encode(b"".join(table)), *body] if table else body
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def decode_tags(text: str) -> list[list[str]]:
    """Inverse of :func:`encode_tags`; element validation is left to :mod:`forum.nostr`."""
    if text == "":
        return []
    try:
        doc = nostr.loads_strict(text)
    except EventError as exc:
        raise _malformed(f"tags record: {exc.message}") from exc
    if not isinstance(doc, list):
        raise _malformed("tags record must be a JSON array")
    table: list[str] = []
    if doc and isinstance(doc[0], str):
        raw = b64url_decode(doc[0], "tags table")
        if not raw or len(raw) % 32:
            raise _malformed("tags table must hold a whole number of 32-byte values")
        table = [raw[i : i + 32].hex() for i in range(0, len(raw), 32)]
        doc = doc[1:]
    tags = []
    for tag in doc:
        if not isinstance(tag, list):
            raise _malformed("each tag in the tags record must be a JSON array")
        items = []
        for item in tag:
            if isinstance(item, str):
                items.append(item)
            elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(table):
                items.append(table[item])
            else:
                raise _malformed(f"tag element {item!r} is neither a string nor a table index")
        tags.append(items)
    return tags


def _event_texts(event: Event) -> dict[str, str]:
    texts = {
        "pubkey": b64url_encode(bytes.fromhex(event.pubkey)),
        "sig": b64url_encode(bytes.fromhex(event.sig)),
        "created_at": str(event.created_at),
        "kind": str(event.kind),
    }
    if event.tags:
        texts["tags"] = encode_tags(event.tags)
    if event.content:
        texts["content"] = event.content
    return texts


def _event_from_texts(texts: Mapping[str, str]) -> Event:
    """Rebuild and verify an event; the id is recomputed, never read."""
    missing = [name for name in ("pubkey", "sig", "created_at", "kind") if name not in texts]
    if missing:
        raise _malformed(f"missing record(s): {', '.join(missing)}")
    try:
        event = nostr.assemble_event(
            pubkey=_b64url_hex(texts["pubkey"], "pubkey", 32),
            sig=_b64url_hex(texts["sig"], "sig", 64),
            created_at=_decimal(texts["created_at"], "created_at"),
            kind=_decimal(texts["kind"], "kind"),
            tags=decode_tags(texts.get("tags", "")),
            content=texts.get("content", ""),
        )
    except EventError as exc:
        raise ProtocolError(exc.code, exc.message) from exc
    try:
        nostr.signature_check(event)  # the id was just computed from the contents
    except EventError as exc:
        raise ProtocolError(exc.code, exc.message, event_id=event.id) from exc
    return event


# The packed form carries a whole event in part_data slices: the event's record texts
# joined by newlines, content last so that it needs no escaping (none of the other
# fields can contain a newline: compact JSON escapes it inside strings).
_PACKED_FIELDS = ("pubkey", "sig", "created_at", "kind", "tags")


def pack_event(event: Event) -> bytes:
    """The serialization of a whole event that multipart slices up."""
    texts = _event_texts(event)
    lines = [texts.get(name, "") for name in _PACKED_FIELDS] + [texts.get("content", "")]
    return "\n".join(lines).encode("utf-8")


def unpack_event(data: bytes) -> Event:
    """Inverse of :func:`pack_event`, with verification."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("packed event is not valid UTF-8") from exc
    fields = text.split("\n", len(_PACKED_FIELDS))
    if len(fields) != len(_PACKED_FIELDS) + 1:
        raise _malformed("packed event has too few lines")
    texts = dict(zip(_PACKED_FIELDS, fields, strict=False))
    texts["content"] = fields[-1]
    return _event_from_texts(texts)


# --- records ---------------------------------------------------------------------------


def _records(**texts: str) -> dict[int, bytes]:
    records = {_T["version"]: str(PROTOCOL_VERSION).encode()}
    records.update({_T[name]: value.encode("utf-8") for name, value in texts.items()})
    return records


def _check_event_id(event_id: str) -> str:
    if not isinstance(event_id, str) or _HEX64.fullmatch(event_id) is None:
        raise ValueError("event id must be 64 lowercase hex characters")
    return event_id


def encode_event(event: Event) -> dict[int, bytes]:
    """The records of a whole-event message (add lnd's preimage record to send)."""
    return _records(**_event_texts(event))


def encode_part(event_id: str, index: int, count: int, data: bytes) -> dict[int, bytes]:
    """The records of one part; ``data`` must be valid UTF-8 on its own."""
    _check_event_id(event_id)
    if not 1 <= count <= MAX_PARTS or not 0 <= index < count:
        raise ValueError(f"part {index} of {count} is out of range")
    ref = b64url_encode(bytes.fromhex(event_id))
    return _records(part=f"{index}/{count}/{ref}", part_data=data.decode("utf-8"))


def encode_topup(event_id: str) -> dict[int, bytes]:
    """A top-up for ``event_id``: the payment's amount adds to that event's."""
    return _records(topup=b64url_encode(bytes.fromhex(_check_event_id(event_id))))


def encode_tip(event_id: str) -> dict[int, bytes]:
    """A tip for ``event_id``'s author."""
    return _records(tip=b64url_encode(bytes.fromhex(_check_event_id(event_id))))


def encode_credit(pubkey: str) -> dict[int, bytes]:
    """A credit for ``pubkey`` (64 hex): the payment's amount funds its relay balance."""
    return _records(credit=b64url_encode(bytes.fromhex(_check_event_id(pubkey))))


def decode_records(records: Mapping[int, bytes]) -> Message | None:
    """Decode the forum message in a settled keysend's custom records.

    Returns ``None`` when no record is in our block (a plain keysend or donation).
    Records of other types, including lnd's preimage, are ignored, as are unknown types
    inside our block (room for optional records in later versions). An event message is
    verified here; parts are verified by :func:`join_parts`.
    """
    ours = {t: bytes(v) for t, v in records.items() if 0 <= t - RECORD_BASE < RECORD_BLOCK_SIZE}
    if not ours:
        return None
    texts: dict[str, str] = {}
    for number, value in sorted(ours.items()):
        name = _NAMES.get(number)
        if name is None:
            continue
        try:
            texts[name] = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed(f"record {name} ({number}) is not valid UTF-8") from exc

    version = texts.pop("version", None)
    if version is None:
        raise _malformed(f"missing record: version ({_T['version']})")
    if _decimal(version, "version") != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {version} is not supported (this forum speaks {PROTOCOL_VERSION})",
        )

    present = [cat for cat, names in _CATEGORIES.items() if names & texts.keys()]
    if len(present) != 1:
        what = "no message records" if not present else "records of: " + ", ".join(present)
        raise _malformed(f"expected exactly one message type, found {what}")
    kind = present[0]
    if kind == "event":
        return EventMessage(_event_from_texts(texts))
    if kind == "topup":
        return TopUpMessage(_b64url_hex(texts["topup"], "topup event id", 32))
    if kind == "tip":
        return TipMessage(_b64url_hex(texts["tip"], "tip event id", 32))
    if kind == "credit":
        return CreditMessage(_b64url_hex(texts["credit"], "credit pubkey", 32))
    return _decode_part(texts)


def _decode_part(texts: Mapping[str, str]) -> PartMessage:
    if "part" not in texts or "part_data" not in texts:
        raise _malformed("a part needs both the part and the part_data record")
    fields = texts["part"].split("/")
    if len(fields) != 3:
        raise _malformed("part record must be <index>/<count>/<event id>")
    index, count = _decimal(fields[0], "part index"), _decimal(fields[1], "part count")
    event_id = _b64url_hex(fields[2], "part event id", 32)
    if not 1 <= count <= MAX_PARTS:
        raise _malformed(f"part count {count} is out of range 1..{MAX_PARTS}")
    if index >= count:
        raise _malformed(f"part index {index} is out of range for {count} parts")
    if not texts["part_data"]:
        raise _malformed("part data is empty")
    return PartMessage(event_id, index, count, texts["part_data"].encode("utf-8"))


def join_parts(parts: Sequence[PartMessage]) -> Event:
    """Reassemble and verify a multipart event from its parts, in any order.

    The same part delivered twice is harmless; a part that contradicts another is not.
    """
    if not parts:
        raise ProtocolError("incomplete_parts", "no parts")
    event_id, count = parts[0].event_id, parts[0].count
    if any(p.event_id != event_id for p in parts):
        raise _malformed("parts belong to different events")
    if any(p.count != count for p in parts):
        raise ProtocolError("malformed", "parts disagree on the part count", event_id=event_id)
    by_index: dict[int, bytes] = {}
    for part in parts:
        if by_index.setdefault(part.index, part.data) != part.data:
            raise ProtocolError(
                "malformed", f"two different parts claim index {part.index}", event_id=event_id
            )
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise ProtocolError(
            "incomplete_parts",
            f"missing part(s) {', '.join(map(str, missing))} of {count}",
            event_id=event_id,
        )
    try:
        event = unpack_event(b"".join(by_index[i] for i in range(count)))
    except ProtocolError as exc:
        exc.event_id = event_id
        raise
    if event.id != event_id:
        raise ProtocolError(
            "bad_id",
            f"the parts reassemble into event {event.id}, not the announced {event_id}",
            event_id=event_id,
        )
    return event


# --- sizes -----------------------------------------------------------------------------

# Defaults for sizing: a post of up to 1,000 sats with lncli's default fee limit (100% of
# the amount) keeps every hop's amount below 2**24 msat, and CLTV heights stay below
# 2**24 for centuries, so each is a 3-byte truncated integer. Pass real values to be exact.
DEFAULT_AMT_MSAT = 1_000_000
DEFAULT_MAX_CLTV = 2**24 - 1


def _tlv_len(record_type: int, value_len: int) -> int:
    return bigsize_len(record_type) + bigsize_len(value_len) + value_len


def records_size(records: Mapping[int, bytes]) -> int:
    """Onion bytes that ``records`` take: types + lengths + values."""
    return sum(_tlv_len(t, len(v)) for t, v in records.items())


def _largest_fit(room: int) -> int:
    """Largest ``n`` with ``bigsize_len(n) + n <= room`` (a length-prefixed blob)."""
    n = room - 1
    while n > 0 and bigsize_len(n) + n > room:
        n -= 1
    return max(n, 0) if room > 0 else -1


def onion_budget_for_records(
    hops: int,
    *,
    amt_msat: int = DEFAULT_AMT_MSAT,
    fee_limit_msat: int | None = None,
    max_cltv: int = DEFAULT_MAX_CLTV,
) -> int:
    """Bytes left for our records (types + lengths + values) on a route of ``hops`` hops.

    lnd's ``route.Hop.PayloadSize``: per hop, the sum of its TLV records, the BigSize of
    that sum and a 32-byte HMAC; all hops together must fit in 1300 bytes. Intermediate
    hops carry amt_to_forward, outgoing_cltv_value and short_channel_id (their amounts are
    at most ``amt_msat + fee_limit_msat``); the final keysend hop carries the amount, the
    CLTV, the 32-byte preimage record and our records. ``hops=1`` is a direct channel.
    Raises ``ValueError`` for routes too long to carry a keysend at all (about 24 hops).
    """
    if not 1 <= hops <= MAX_HOPS:
        raise ValueError(f"hops must be between 1 and {MAX_HOPS}")
    fee_limit = amt_msat if fee_limit_msat is None else fee_limit_msat
    # Whole intermediate hops as lnd sizes them; the final hop's fixed records without its
    # length prefix and HMAC, which depend on how much of ours it carries.
    intermediate_hop = HopPayload(amt_msat + fee_limit, max_cltv, next_chan_id=1).size()
    final_fixed = HopPayload(
        amt_msat, max_cltv, custom_records={KEYSEND_PREIMAGE_TYPE: 32}
    ).records_size()
    room = MAX_ROUTING_PAYLOAD - (hops - 1) * intermediate_hop - HMAC_SIZE
    budget = _largest_fit(room) - final_fixed
    if budget < 0:
        raise ValueError(f"a keysend cannot cross {hops} hops with these amounts")
    return budget


def max_record_payload(hops: int, **onion: int) -> int:
    """Largest value of one custom record (type in our block) on ``hops`` hops."""
    return _largest_fit(onion_budget_for_records(hops, **onion) - bigsize_len(RECORD_BASE))


def max_content_bytes_single(hops: int, event: Event, **onion: int) -> int:
    """Largest UTF-8 content (bytes) with which ``event`` still travels in one payment.

    Only ``event``'s other fields matter (its content is ignored). 0 means no content
    fits: split the event (:func:`split_event`) or shorten its tags.
    """
    records = encode_event(event)
    records.pop(_T["content"], None)
    room = onion_budget_for_records(hops, **onion) - records_size(records)
    return max(_largest_fit(room - bigsize_len(_T["content"])), 0)


# --- multipart -------------------------------------------------------------------------


def _part_capacity(budget: int, index: int, count: int) -> int:
    fixed = records_size(encode_part("00" * 32, index, count, b""))
    # encode_part gave part_data an empty value; its type and 1-byte length are in fixed.
    return _largest_fit(budget - fixed + 1)


def _chunks(data: bytes, budget: int, count: int) -> list[bytes]:
    chunks = []
    pos = 0
    while pos < len(data):
        if len(chunks) >= MAX_PARTS:
            raise ValueError(f"the event needs more than {MAX_PARTS} parts at this budget")
        # Size the header as if the count were at least index + 1 until the loop in
        # split_event settles on the real count.
        index = len(chunks)
        end = min(pos + _part_capacity(budget, index, max(count, index + 1)), len(data))
        # Cut on a character boundary: each part must be valid UTF-8 text by itself.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        if end <= pos:
            raise ValueError(f"a budget of {budget} bytes is too small for a part")
        chunks.append(data[pos:end])
        pos = end
    return chunks


def split_event(event: Event, *, budget: int) -> list[dict[int, bytes]]:
    """Records for one payment if the event fits in ``budget`` bytes, else for parts.

    ``budget`` is the room for all our records together (see
    :func:`onion_budget_for_records`); every returned dict fits in it.
    """
    single = encode_event(event)
    if records_size(single) <= budget:
        return [single]
    data = pack_event(event)
    count = 2
    while True:
        chunks = _chunks(data, budget, count)
        # Fewer parts than assumed only shortens the count digits, so they still fit.
        if len(chunks) <= count:
            count = len(chunks)
            return [encode_part(event.id, i, count, chunk) for i, chunk in enumerate(chunks)]
        count = len(chunks)


# --- delivery helpers ------------------------------------------------------------------


def to_webln(records: Mapping[int, bytes]) -> dict[str, str]:
    """WebLN ``customRecords``: decimal type -> plain string (all our values are UTF-8)."""
    return {str(t): v.decode("utf-8") for t, v in sorted(records.items())}


def lncli_data(records: Mapping[int, bytes]) -> str:
    """The ``--data`` argument of ``lncli sendpayment --keysend``: ``TYPE=HEX,...``."""
    return ",".join(f"{t}={v.hex()}" for t, v in sorted(records.items()))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m forum.protocol [--hops N] < event.json``: print lncli ``--data`` lines.

    Reads one signed NIP-01 event (from any Nostr signer), prints one line per payment.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m forum.protocol", description=main.__doc__)
    parser.add_argument("--hops", type=int, default=1, help="route length (default: 1)")
    args = parser.parse_args(argv)
    try:
        event = nostr.parse_event(sys.stdin.buffer.read(), verify=True)
    except EventError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for records in split_event(event, budget=onion_budget_for_records(args.hops)):
        print(lncli_data(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --- records as the ledger stores them --------------------------------------------------------


def records_to_json(records: Mapping[int, bytes]) -> dict[str, str]:
    """Custom records as stored: {"<type>": "<hex>"} (JSON keys must be strings)."""
    return {str(t): bytes(v).hex() for t, v in sorted(records.items())}


def records_from_json(data: Mapping[str, str]) -> dict[int, bytes]:
    """Inverse of `records_to_json`; unreadable items are skipped (they were not ours)."""
    records: dict[int, bytes] = {}
    for key, value in data.items():
        try:
            records[int(key)] = bytes.fromhex(value)
        except (TypeError, ValueError):
            continue
    return records
