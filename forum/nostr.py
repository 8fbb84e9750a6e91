"""Nostr-style signed events: canonical serialization, id, BIP-340 signing and verification.

This module owns everything the forum knows about a signed event as such (NIP-01), the
tag shapes of the forum's two kinds (NIP-7D threads, NIP-22 replies, a NIP-29 style ``h``
board tag, and our ``ln`` refund/tip node tag), and NIP-19 ``npub``/``nsec`` display
encoding. It is pure: no Django, no I/O besides the system clock and random source.

Validation has two layers so that callers can tell "garbage" from "forged":

* structure (``malformed``): checked whenever an :class:`Event` is constructed, so an
  ``Event`` instance is always well formed;
* authenticity (``bad_id``, ``bad_signature``): checked by :func:`verify_event`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from coincurve import PrivateKey, PublicKeyXOnly

KIND_THREAD = 11
KIND_REPLY = 1111
KIND_PROFILE = 0  # NIP-01 user metadata
KIND_DELETION = 5  # NIP-09 deletion request
KIND_EDIT = 1010  # an edit of a thread or reply (docs/protocol.md, "Edits")

MAX_KIND = 65535
# uint32 seconds (until the year 2106). Anything larger is a broken clock or an attempt
# to pin a post to the top of "newest first" listings forever.
MAX_CREATED_AT = 2**32 - 1

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_NODE_PUBKEY = re.compile(r"0[23][0-9a-f]{64}")
# C0 controls except \t \n \r, and UTF-16 surrogates. json.dumps would write the former as
# \u00XX, which NIP-01 does not specify (implementations disagree), and the latter cannot
# be encoded as UTF-8 at all, so neither can take part in a reproducible id.
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")

_EVENT_KEYS = ("id", "pubkey", "created_at", "kind", "tags", "content", "sig")

Tags = tuple[tuple[str, ...], ...]


class EventError(ValueError):
    """An event that cannot be accepted.

    ``code`` is machine-readable and stable (the forum maps it to a rejection reason):
    ``malformed`` (structure), ``bad_id`` (id is not the hash of the event),
    ``bad_signature`` (signature or public key invalid). ``message`` is for humans.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _malformed(message: str) -> EventError:
    return EventError("malformed", message)


# --- structural validation ------------------------------------------------------------


def _check_hex(value: object, pattern: re.Pattern[str], name: str, nbytes: int) -> str:
    if not isinstance(value, str):
        raise _malformed(f"{name} must be a string")
    if pattern.fullmatch(value) is None:
        raise _malformed(f"{name} must be {nbytes * 2} lowercase hex characters")
    return value


def _check_int(value: object, name: str, maximum: int) -> int:
    # bool is an int subclass; JSON true must not pass as 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _malformed(f"{name} must be an integer")
    if not 0 <= value <= maximum:
        raise _malformed(f"{name} must be between 0 and {maximum}")
    return value


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise _malformed(f"{name} must be a string")
    bad = _FORBIDDEN_CHARS.search(value)
    if bad is not None:
        char = bad.group()
        kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
        raise _malformed(f"{name} contains {kind} (U+{ord(char):04X})")
    return value


def _check_tags(value: object) -> Tags:
    if not isinstance(value, list | tuple):
        raise _malformed("tags must be a list of lists of strings")
    tags = []
    for i, tag in enumerate(value):
        if not isinstance(tag, list | tuple):
            raise _malformed(f"tag {i} must be a list of strings")
        if not tag:
            # An empty tag has no name; nothing can index or interpret it.
            raise _malformed(f"tag {i} is empty")
        for j, item in enumerate(tag):
            if not isinstance(item, str):
                raise _malformed(f"tag {i} element {j} must be a string")
        tags.append(tuple(tag))
    # Every element in one scan (forbidden characters are single code points, so joining
    # cannot make or hide one); element by element only to name the culprit.
    if _FORBIDDEN_CHARS.search("".join(item for tag in tags for item in tag)):
        for i, tag in enumerate(tags):
            for j, item in enumerate(tag):
                _check_text(item, f"tag {i} element {j}")
    return tuple(tags)


def _check_fields(
    pubkey: object, created_at: object, kind: object, tags: object, content: object
) -> tuple[str, int, int, Tags, str]:
    return (
        _check_hex(pubkey, _HEX64, "pubkey", 32),
        _check_int(created_at, "created_at", MAX_CREATED_AT),
        _check_int(kind, "kind", MAX_KIND),
        _check_tags(tags),
        _check_text(content, "content"),
    )


# --- the event ------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A signed event. Construction validates structure (raises ``EventError("malformed")``)
    and normalises tags to tuples; authenticity is :func:`verify_event`'s job."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: Tags = field(repr=False)
    content: str = field(repr=False)
    sig: str = field(repr=False)

    def __post_init__(self) -> None:
        _check_hex(self.id, _HEX64, "id", 32)
        _, _, _, tags, _ = _check_fields(
            self.pubkey, self.created_at, self.kind, self.tags, self.content
        )
        _check_hex(self.sig, _HEX128, "sig", 64)
        # Frozen: normalise lists from JSON into hashable tuples once, here.
        object.__setattr__(self, "tags", tags)

    def to_dict(self) -> dict[str, Any]:
        """NIP-01 JSON object, keys in the conventional order, tags as lists."""
        return {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": [list(tag) for tag in self.tags],
            "content": self.content,
            "sig": self.sig,
        }

    def to_json(self) -> str:
        """Compact JSON, non-ASCII verbatim: the form the forum stores and links to."""
        return self._compact_json

    @cached_property
    def _compact_json(self) -> str:
        # Made once per event (frozen, so it cannot go stale): the reconciler's look-ahead
        # makes it outside the sequencer, and the batch that stores the event finds it made.
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    def tag_value(self, name: str) -> str | None:
        """First value of the first tag called ``name`` (NIP-01 indexes only that one)."""
        for tag in self.tags:
            if tag[0] == name and len(tag) > 1:
                return tag[1]
        return None

    def serialize(self) -> bytes:
        """The NIP-01 bytes whose sha256 is the id."""
        return serialize(self.pubkey, self.created_at, self.kind, self.tags, self.content)


def serialize(
    pubkey: str, created_at: int, kind: int, tags: Iterable[Sequence[str]], content: str
) -> bytes:
    """NIP-01 canonical serialization ``[0,pubkey,created_at,kind,tags,content]``.

    ``ensure_ascii=False`` keeps non-ASCII verbatim as NIP-01 requires (``é`` as two UTF-8
    bytes, never ``\\u00e9``); json.dumps escapes exactly ``"``, ``\\`` and the control
    characters, which is what NIP-01 specifies for the characters we allow.
    """
    tag_lists = [list(tag) for tag in tags]
    return json.dumps(
        [0, pubkey, created_at, kind, tag_lists, content],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def compute_id(
    pubkey: str, created_at: int, kind: int, tags: Iterable[Sequence[str]], content: str
) -> str:
    """Lowercase hex sha256 of :func:`serialize`."""
    return hashlib.sha256(serialize(pubkey, created_at, kind, tags, content)).hexdigest()


def assemble_event(
    *, pubkey: str, created_at: int, kind: int, tags: object, content: str, sig: str
) -> Event:
    """Build an :class:`Event` from its signed fields, recomputing the id.

    For transports that do not carry the id (our keysend records). The result still has
    to pass :func:`verify_event` (the signature is over the recomputed id).
    """
    pubkey, created_at, kind, norm_tags, content = _check_fields(
        pubkey, created_at, kind, tags, content
    )
    event_id = compute_id(pubkey, created_at, kind, norm_tags, content)
    return Event(event_id, pubkey, created_at, kind, norm_tags, content, sig)


# --- keys, signing, verification ------------------------------------------------------


def _private_key(secret_hex: str) -> PrivateKey:
    _check_hex(secret_hex, _HEX64, "secret key", 32)
    try:
        return PrivateKey(bytes.fromhex(secret_hex))
    except ValueError as exc:  # zero or >= the group order
        raise _malformed("secret key is out of range") from exc


def generate_secret_key() -> str:
    """A fresh random secret key, lowercase hex."""
    while True:
        candidate = os.urandom(32).hex()
        try:
            _private_key(candidate)
        except EventError:  # probability ~2**-128; loop rather than bias the key
            continue
        return candidate


def public_key(secret_hex: str) -> str:
    """The x-only (BIP-340) public key for ``secret_hex``: the Nostr pubkey."""
    return _private_key(secret_hex).public_key_xonly.format().hex()


def sign_event(
    secret_hex: str,
    *,
    kind: int,
    tags: Iterable[Sequence[str]],
    content: str,
    created_at: int | None = None,
) -> Event:
    """Sign an event with BIP-340 over its id. ``created_at`` defaults to now."""
    if created_at is None:
        created_at = int(time.time())
    pubkey, created_at, kind, norm_tags, content = _check_fields(
        public_key(secret_hex), created_at, kind, list(tags), content
    )
    event_id = compute_id(pubkey, created_at, kind, norm_tags, content)
    sig = schnorr_sign(secret_hex, bytes.fromhex(event_id))
    return Event(event_id, pubkey, created_at, kind, norm_tags, content, sig)


def schnorr_sign(secret_hex: str, message: bytes, *, aux_rand: bytes | None = None) -> str:
    """BIP-340 signature (hex) of a 32-byte ``message``.

    ``aux_rand=None`` draws fresh randomness per signature, as BIP-340 recommends; a fixed
    value exists for the official test vectors.
    """
    if len(message) != 32:
        raise ValueError("BIP-340 signing here takes a 32-byte message (an event id)")
    aux = os.urandom(32) if aux_rand is None else aux_rand
    return _private_key(secret_hex).sign_schnorr(message, aux_randomness=aux).hex()


def verify_signature(pubkey_hex: str, message: bytes, sig_hex: str) -> bool:
    """BIP-340 verification; an invalid public key is simply "not valid"."""
    try:
        key = PublicKeyXOnly(bytes.fromhex(pubkey_hex))
    except ValueError:
        # coincurve raises for x not on the curve or >= the field size (BIP-340 vectors 5, 14)
        return False
    return key.verify(bytes.fromhex(sig_hex), message)


def verify_event(event: Event) -> None:
    """Raise ``EventError`` ``bad_id`` or ``bad_signature`` unless the event is authentic."""
    expected = compute_id(event.pubkey, event.created_at, event.kind, event.tags, event.content)
    if event.id != expected:
        raise EventError("bad_id", f"id does not match the event's contents (expected {expected})")
    signature_check(event)


def signature_check(event: Event) -> None:
    """Raise ``EventError`` ``bad_signature`` unless the signature is over ``event.id``.

    Alone only for an event whose id was computed here from its contents
    (:func:`assemble_event`); any other event needs :func:`verify_event`."""
    if not verify_signature(event.pubkey, bytes.fromhex(event.id), event.sig):
        raise EventError("bad_signature", "signature does not verify for this pubkey and id")


def is_valid(event: Event) -> bool:
    """``verify_event`` as a predicate."""
    try:
        verify_event(event)
    except EventError:
        return False
    return True


# --- parsing --------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise _malformed(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        # Two "content" keys would let two parsers see two different events.
        if key in result:
            raise _malformed(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that rejects invalid UTF-8, NaN/Infinity, duplicate keys and
    absurd nesting with ``EventError("malformed")``."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed("event is not valid UTF-8") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except EventError:
        raise
    except RecursionError as exc:
        raise _malformed("JSON is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise _malformed(f"not valid JSON ({exc.msg} at position {exc.pos})") from exc
    except ValueError as exc:  # int() refuses a number of more than 4300 digits
        raise _malformed("a number in it has too many digits") from exc


def parse_event(data: str | bytes | dict[str, Any], *, verify: bool = False) -> Event:
    """Parse a NIP-01 event object with strict structural validation.

    Raises ``EventError("malformed")`` with a specific message. Authenticity is not
    checked unless ``verify=True`` (then :func:`verify_event` runs too).
    """
    if isinstance(data, dict):
        obj: Any = data
    elif isinstance(data, str | bytes | bytearray):
        obj = loads_strict(data)
    else:  # e.g. a JSON array already decoded by a caller
        raise _malformed("event must be a JSON object")
    if not isinstance(obj, dict):
        raise _malformed("event must be a JSON object")
    missing = [key for key in _EVENT_KEYS if key not in obj]
    if missing:
        raise _malformed(f"missing field(s): {', '.join(missing)}")
    extra = sorted(set(obj) - set(_EVENT_KEYS))
    if extra:
        raise _malformed(f"unknown field(s): {', '.join(map(str, extra))}")
    event = Event(**{key: obj[key] for key in _EVENT_KEYS})
    if verify:
        verify_event(event)
    return event


# --- the forum's kinds ----------------------------------------------------------------


def _check_ln_node(ln_node: str | None) -> list[list[str]]:
    if ln_node is None:
        return []
    if not isinstance(ln_node, str) or _NODE_PUBKEY.fullmatch(ln_node) is None:
        raise _malformed("ln node must be a 66-character lowercase hex compressed pubkey")
    return [["ln", ln_node]]


def _check_board(board: str) -> str:
    if not isinstance(board, str) or not board:
        raise _malformed("board must be a non-empty string")
    return board


def thread_event(
    secret_hex: str,
    *,
    board: str,
    title: str,
    content: str,
    ln_node: str | None = None,
    created_at: int | None = None,
) -> Event:
    """A NIP-7D thread: kind 11 with ``title`` and the ``h`` board tag (and ``ln``)."""
    if not isinstance(title, str) or not title.strip():
        raise _malformed("title must be a non-empty string")
    tags = [["title", title], ["h", _check_board(board)], *_check_ln_node(ln_node)]
    return sign_event(
        secret_hex, kind=KIND_THREAD, tags=tags, content=content, created_at=created_at
    )


def reply_event(
    secret_hex: str,
    *,
    board: str,
    root: Event,
    parent: Event | None = None,
    content: str,
    ln_node: str | None = None,
    created_at: int | None = None,
) -> Event:
    """A NIP-22 comment (kind 1111) in the thread ``root``.

    ``parent=None`` replies to the thread itself (lowercase tags then equal the uppercase
    ones); otherwise ``parent`` is a reply in the same thread.
    """
    if root.kind != KIND_THREAD:
        raise _malformed(f"root must be a kind {KIND_THREAD} thread, not kind {root.kind}")
    root_board = root.tag_value("h")
    if root_board is not None and root_board != board:
        raise _malformed(f"thread is on board {root_board!r}, not {board!r}")
    if parent is None:
        parent = root
    elif parent.kind != KIND_REPLY or parent.tag_value("E") != root.id:
        raise _malformed("parent must be a kind 1111 reply in the same thread")
    tags = [
        ["E", root.id, "", root.pubkey],
        ["K", str(root.kind)],
        ["P", root.pubkey],
        ["e", parent.id, "", parent.pubkey],
        ["k", str(parent.kind)],
        ["p", parent.pubkey],
        ["h", _check_board(board)],
        *_check_ln_node(ln_node),
    ]
    return sign_event(
        secret_hex, kind=KIND_REPLY, tags=tags, content=content, created_at=created_at
    )


@dataclass(frozen=True)
class ReplyTarget:
    """Where a kind 1111 reply points: its thread (root) and its parent."""

    root_id: str
    parent_id: str
    parent_kind: int


def reply_target(event: Event) -> ReplyTarget:
    """Read the NIP-22 root/parent references of a reply; ``malformed`` if unusable."""
    if event.kind != KIND_REPLY:
        raise _malformed(f"not a reply (kind {event.kind})")
    root_id, parent_id = event.tag_value("E"), event.tag_value("e")
    root_kind, parent_kind = event.tag_value("K"), event.tag_value("k")
    if root_id is None or parent_id is None or root_kind is None or parent_kind is None:
        raise _malformed("reply needs E, K, e and k tags")
    _check_hex(root_id, _HEX64, "E tag event id", 32)
    _check_hex(parent_id, _HEX64, "e tag event id", 32)
    if root_kind != str(KIND_THREAD):
        raise _malformed(f"reply root must be kind {KIND_THREAD}, K tag says {root_kind!r}")
    if parent_kind not in (str(KIND_THREAD), str(KIND_REPLY)):
        raise _malformed(f"reply parent must be kind 11 or 1111, k tag says {parent_kind!r}")
    if (parent_kind == str(KIND_THREAD)) != (parent_id == root_id):
        raise _malformed("k tag disagrees with whether the parent is the thread")
    return ReplyTarget(root_id, parent_id, int(parent_kind))


def ln_node(event: Event) -> str | None:
    """The Lightning node the author named for refunds and tips, if well formed."""
    value = event.tag_value("ln")
    if value is None or _NODE_PUBKEY.fullmatch(value) is None:
        return None
    return value


# --- NIP-19 bech32 (BIP-173, not bech32m) ---------------------------------------------

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Iterable[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_BECH32_GEN):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or (acc << (to_bits - bits)) & maxv:
        raise _malformed("bech32 data has invalid padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """Bech32 (BIP-173) of ``data`` under ``hrp``."""
    words = _convert_bits(data, 8, 5, pad=True)
    checksum_in = _hrp_expand(hrp) + words + [0] * 6
    polymod = _polymod(checksum_in) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[w] for w in words + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Inverse of :func:`bech32_encode`; ``EventError("malformed")`` on any defect."""
    if not isinstance(text, str) or not text.isascii():
        raise _malformed("bech32 string must be ASCII")
    if text.lower() != text and text.upper() != text:
        raise _malformed("bech32 string mixes upper and lower case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1 or len(text) - sep - 1 < 6:
        raise _malformed("bech32 string has no separator or is too short")
    hrp, rest = text[:sep], text[sep + 1 :]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise _malformed("bech32 prefix has invalid characters")
    try:
        words = [_BECH32_CHARSET.index(c) for c in rest]
    except ValueError as exc:
        raise _malformed("bech32 string has invalid characters") from exc
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise _malformed("bech32 checksum is wrong")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, pad=False))


def _key_encode(hrp: str, key_hex: str, name: str) -> str:
    _check_hex(key_hex, _HEX64, name, 32)
    return bech32_encode(hrp, bytes.fromhex(key_hex))


def _key_decode(hrp: str, text: str) -> str:
    found, data = bech32_decode(text)
    if found != hrp:
        raise _malformed(f"expected a {hrp} string, got prefix {found!r}")
    if len(data) != 32:
        raise _malformed(f"{hrp} must hold 32 bytes, not {len(data)}")
    return data.hex()


def npub_encode(pubkey_hex: str) -> str:
    """NIP-19 ``npub1…`` for display."""
    return _key_encode("npub", pubkey_hex, "pubkey")


def npub_decode(npub: str) -> str:
    """Hex pubkey from an ``npub1…`` string."""
    return _key_decode("npub", npub)


def pubkey_parse(text: str) -> str:
    """The lowercase hex pubkey an ``npub1…`` or 64 hex characters (either case) stand for,
    spaces around ignored; `EventError` saying what is wrong with anything else."""
    text = text.strip()
    if text.startswith("npub1"):
        try:
            return npub_decode(text)
        except ValueError as exc:  # EventError included: a bad checksum, length or prefix
            raise _malformed(f"not a valid npub: {getattr(exc, 'message', exc)}") from None
    if _HEX64.fullmatch(text.lower()) is None:
        raise _malformed("pubkey must be 64 hex characters (x-only, as in Nostr) or an npub")
    return text.lower()


def nsec_encode(secret_hex: str) -> str:
    """NIP-19 ``nsec1…`` (a secret: never log or store it server-side)."""
    return _key_encode("nsec", secret_hex, "secret key")


def nsec_decode(nsec: str) -> str:
    """Hex secret key from an ``nsec1…`` string."""
    return _key_decode("nsec", nsec)
