"""Fuzz properties of everything that parses what strangers send us, and their input strategies.

Shared by the test suite (`tests/fuzz/test_fuzz.py`, a few hundred examples each) and
`bench/fuzz.py` (100,000 inputs and more). Each `check_*` takes one generated input and
returns a short outcome ("accepted", or "rejected:<reason>"), or raises:

- `Escaped`: an exception other than the parser's documented rejection got out (a crash:
  a Celery task marked `error`, a dropped websocket);
- `Unreasoned`: the parser rejected the input without a reason code a user or a moderator
  would be shown (a rejection row needs a `Rejection.Reason`, a relay answer a NIP-01 prefix).

The documented rejections: `protocol.ProtocolError` for keysend records and multipart sets,
`nostr.EventError` for event JSON, `FilterError` for relay filters; the relay's websocket
answers a bad message with NOTICE / CLOSED / OK false, each "prefix: text".

Inputs are mostly valid messages with a few mutations (a fuzzer that only sends noise never
gets past the first check), plus raw noise and a corpus of known-nasty strings.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st

from forum import nostr, protocol
from forum.relay import filters as relay_filters

# --- what counts as a reasoned rejection ---------------------------------------------------

# ProtocolError's documented codes (its docstring) and EventError's; each is a
# `Rejection.Reason` value (tests/fuzz/test_fuzz.py checks that against the model).
PROTOCOL_CODES = frozenset(
    {"malformed", "unsupported_version", "incomplete_parts", "bad_id", "bad_signature"}
)
EVENT_CODES = frozenset({"malformed", "bad_id", "bad_signature"})
# NIP-01's machine-readable prefixes for OK / CLOSED (and our NOTICEs), plus "unsupported",
# which NIP-01 uses in its examples.
RELAY_PREFIXES = frozenset(
    {
        "duplicate",
        "pow",
        "blocked",
        "rate-limited",
        "invalid",
        "restricted",
        "mute",
        "error",
        "unsupported",
    }
)
_PREFIXED = re.compile(r"([a-z-]+): \S")


class Escaped(AssertionError):
    """An undocumented exception escaped the parser."""


class Unreasoned(AssertionError):
    """A rejection without a reason code."""


def _escaped(what: str, value: Any, exc: BaseException) -> Escaped:
    shown = repr(value)
    if len(shown) > 400:
        shown = shown[:400] + "..."
    return Escaped(f"{what}: {type(exc).__name__}: {exc} <- {shown}")


def _require_code(code: object, message: object, allowed: frozenset[str], value: Any) -> str:
    if not isinstance(code, str) or code not in allowed or not message:
        raise Unreasoned(f"rejection code {code!r} (message {message!r}) <- {value!r:.300}")
    return f"rejected:{code}"


def _require_prefix(text: object, value: Any) -> str:
    match = _PREFIXED.match(text) if isinstance(text, str) else None
    if match is None or match.group(1) not in RELAY_PREFIXES:
        raise Unreasoned(f"relay answer without a NIP-01 prefix: {text!r} <- {value!r:.300}")
    return f"rejected:{match.group(1)}"


# --- checks ---------------------------------------------------------------------------------


def check_records(records: Mapping[int, bytes]) -> str:
    """`protocol.decode_records`: a message, None, or ProtocolError with a documented code."""
    try:
        message = protocol.decode_records(records)
    except protocol.ProtocolError as exc:
        return _require_code(exc.code, exc.message, PROTOCOL_CODES, records)
    except Exception as exc:
        raise _escaped("decode_records", records, exc) from exc
    if isinstance(message, protocol.EventMessage):
        # What decodes is authentic and travels again unchanged.
        try:
            nostr.verify_event(message.event)
            again = protocol.decode_records(protocol.encode_event(message.event))
        except Exception as exc:
            raise _escaped("re-encoding a decoded event", records, exc) from exc
        assert again == message, (again, message)
    return "accepted" if message is not None else "not ours"


def check_parts(parts: list[protocol.PartMessage]) -> str:
    """`protocol.join_parts`: a verified event or ProtocolError with a documented code."""
    try:
        event = protocol.join_parts(parts)
    except protocol.ProtocolError as exc:
        return _require_code(exc.code, exc.message, PROTOCOL_CODES, parts)
    except Exception as exc:
        raise _escaped("join_parts", parts, exc) from exc
    assert nostr.is_valid(event)
    return "accepted"


def check_event_json(data: str | bytes | dict[str, Any]) -> str:
    """`nostr.parse_event(..., verify=True)` and, for what passes, the forum's reading of it."""
    try:
        event = nostr.parse_event(data, verify=True)
    except nostr.EventError as exc:
        return _require_code(exc.code, exc.message, EVENT_CODES, data)
    except Exception as exc:
        raise _escaped("parse_event", data, exc) from exc
    try:
        assert nostr.parse_event(event.to_json(), verify=True) == event
        event.tag_value("h")
        nostr.ln_node(event)
        if event.kind == nostr.KIND_REPLY:
            try:
                nostr.reply_target(event)
            except nostr.EventError as exc:
                _require_code(exc.code, exc.message, EVENT_CODES, data)
    except (Escaped, Unreasoned, AssertionError):
        raise
    except Exception as exc:
        raise _escaped("reading a parsed event", data, exc) from exc
    return "accepted"


def check_bech32(text: str) -> str:
    """`nostr.npub_decode`: a pubkey or EventError("malformed")."""
    try:
        nostr.npub_decode(text)
    except nostr.EventError as exc:
        return _require_code(exc.code, exc.message, EVENT_CODES, text)
    except Exception as exc:
        raise _escaped("npub_decode", text, exc) from exc
    return "accepted"


_PROBE = nostr.thread_event("03" * 32, board="general", title="probe", content="x").to_dict()


def check_filter(obj: Any) -> str:
    """`parse_filter`: a Filter (that can be matched) or FilterError with a NIP-01 prefix."""
    try:
        flt = relay_filters.parse_filter(obj)
    except relay_filters.FilterError as exc:
        return _require_prefix(str(exc), obj)
    except Exception as exc:
        raise _escaped("parse_filter", obj, exc) from exc
    try:
        relay_filters.matches(flt, _PROBE)
        relay_filters.effective_limit(flt, default_limit=100, max_limit=500)
    except Exception as exc:
        raise _escaped("matching a parsed filter", obj, exc) from exc
    return "accepted"


class RelayHarness:
    """The relay's websocket consumer fed one client message at a time, without a socket.

    `send` is the transport: it encodes the text as a websocket text frame must be (UTF-8),
    so a reply the transport could not send fails here as it would under daphne. Valid
    REQs and EVENTs reach the database (empty) as they would on a live relay.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def answers(self, text: str | None = None, data: bytes | None = None) -> list[Any]:
        from forum.relay.consumer import RelayConsumer
        from forum.relay.info import RelayLimits

        sent: list[Any] = []

        async def send(text_data: str | None = None, bytes_data: bytes | None = None, close=False):
            assert text_data is not None and bytes_data is None
            sent.append(json.loads(text_data.encode("utf-8")))

        consumer = RelayConsumer()
        consumer.scope = {"type": "websocket", "path": "/relay", "headers": [(b"host", b"fuzz")]}
        consumer.limits = RelayLimits.from_settings()
        consumer.subscriptions = {}
        consumer.send = send
        self.loop.run_until_complete(consumer.receive(text_data=text, bytes_data=data))
        return sent

    def check(self, message: str | bytes) -> str:
        """Every answer is a NIP-01 message; every refusal says why with a prefix."""
        try:
            if isinstance(message, bytes):
                answers = self.answers(data=message)
            else:
                answers = self.answers(text=message)
        except Exception as exc:
            raise _escaped("relay receive", message, exc) from exc
        outcome = "accepted"
        for answer in answers:
            if not isinstance(answer, list) or not answer or not isinstance(answer[0], str):
                raise Unreasoned(f"not a NIP-01 message: {answer!r} <- {message!r:.300}")
            verb = answer[0]
            if verb == "NOTICE" and len(answer) == 2:
                outcome = _require_prefix(answer[1], message)
            elif verb == "CLOSED" and len(answer) == 3:
                outcome = _require_prefix(answer[2], message)
            elif verb == "OK" and len(answer) == 4 and answer[2] is False:
                outcome = _require_prefix(answer[3], message)
            elif verb == "COUNT" and len(answer) == 3:  # NIP-45
                if not isinstance(answer[2], dict) or not isinstance(answer[2].get("count"), int):
                    raise Unreasoned(f"COUNT without a count: {answer!r} <- {message!r:.300}")
            elif verb == "OK" and len(answer) == 4 and answer[2] is True:
                pass  # a duplicate of a published event (NIP-01: OK true "duplicate: ...")
            elif verb not in ("EVENT", "EOSE"):
                raise Unreasoned(f"unexpected answer {answer!r} <- {message!r:.300}")
        return outcome


# --- strategies -----------------------------------------------------------------------------

# Fixed keys: examples are reproducible and signing is the only key cost.
KEYS = [hashlib.sha256(f"fuzz-{i}".encode()).hexdigest() for i in range(4)]
R = protocol.RECORD_TYPES

hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
# Every code point, lone surrogates and controls included: JSON escapes can produce them.
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=40)
# What a signed event may hold (no C0 controls but \t \n \r, no surrogates).
event_char = st.characters(
    exclude_categories=("Cs",),
    exclude_characters=[chr(c) for c in range(32) if chr(c) not in "\t\n\r"],
)
event_text = st.text(event_char, max_size=60)
# What a websocket text frame can carry: any Unicode but lone surrogates.
frame_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)

NASTY_STRINGS = [
    "",
    "[" * 5000,
    '{"a":' * 3000,
    "1" * 5000,
    "-" + "9" * 30,
    "NaN",
    "Infinity",
    '{"id":"a","id":"b"}',
    '"\\ud800"',
    "\x00",
    "null",
    "[]",
    "{}",
    '["REQ","\\ud800",{}]',
    '["EVENT",{"id":"\\udfff"}]',
    '["CLOSE"]',
    '["REQ","s",{"#":[]}]',
    '["REQ","s",{"limit":1e400}]',
    '["REQ","s",{"since":-1}]',
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
    hex64,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(any_text, inner, max_size=5)
    ),
    max_leaves=20,
)

tag_name = st.sampled_from(["E", "e", "P", "p", "K", "k", "h", "title", "ln", "t", "d"])
valid_tag = st.lists(st.one_of(hex64, tag_name, event_text), min_size=1, max_size=5)
valid_tags = st.lists(valid_tag, max_size=6)


@st.composite
def signed_events(draw: Callable) -> nostr.Event:
    """Authentic events: forum-shaped threads and replies, and arbitrary kinds and tags."""
    key = draw(st.sampled_from(KEYS))
    created_at = draw(st.integers(min_value=0, max_value=nostr.MAX_CREATED_AT))
    shape = draw(st.sampled_from(["thread", "reply", "any"]))
    content = draw(event_text)
    if shape == "any":
        kind = draw(st.one_of(st.sampled_from([1, 11, 1111, 40000]), st.integers(0, 65535)))
        return nostr.sign_event(
            key, kind=kind, tags=draw(valid_tags), content=content, created_at=created_at
        )
    board = draw(st.one_of(st.just("general"), event_text.filter(bool)))
    root = nostr.thread_event(
        key,
        board=board,
        title=draw(event_text.filter(lambda t: t.strip() != "")),
        content=content,
        created_at=created_at,
    )
    if shape == "thread":
        return root
    return nostr.reply_event(
        draw(st.sampled_from(KEYS)), board=board, root=root, content=content, created_at=created_at
    )


# Record types a mutation may touch: ours (known and unknown in the block), lnd's, foreign.
record_type = st.one_of(
    st.sampled_from(sorted(R.values())),
    st.integers(protocol.RECORD_BASE, protocol.RECORD_BASE + protocol.RECORD_BLOCK_SIZE + 1),
    st.sampled_from([protocol.KEYSEND_PREIMAGE_TYPE, 65536, 7629169, 133773310]),
    st.integers(0, 2**64 - 1),
)
record_value = st.one_of(
    st.binary(max_size=80),
    any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(-(10**25), 10**25).map(lambda n: str(n).encode()),
    hex64.map(lambda h: protocol.b64url_encode(bytes.fromhex(h)).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
)


@st.composite
def base_records(draw: Callable) -> dict[int, bytes]:
    """A valid message of each type, before mutation."""
    which = draw(st.sampled_from(["event", "part", "topup", "tip", "donation"]))
    if which == "event":
        return protocol.encode_event(draw(signed_events()))
    if which == "part":
        event = draw(signed_events())
        parts = protocol.split_event(event, budget=draw(st.integers(120, 700)))
        return dict(draw(st.sampled_from(parts)))
    if which == "topup":
        return protocol.encode_topup(draw(hex64))
    if which == "tip":
        return protocol.encode_tip(draw(hex64))
    return {}


@st.composite
def records(draw: Callable) -> dict[int, bytes]:
    """Valid records with up to four mutations (replace, drop, add, truncate, splice), or noise."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.dictionaries(record_type, record_value, max_size=8))
    result = draw(base_records())
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["replace", "drop", "add", "truncate", "splice"]))
        keys = sorted(result)
        if op == "add" or not keys:
            result[draw(record_type)] = draw(record_value)
        elif op == "drop":
            result.pop(draw(st.sampled_from(keys)))
        elif op == "replace":
            result[draw(st.sampled_from(keys))] = draw(record_value)
        else:
            key = draw(st.sampled_from(keys))
            value = result[key]
            at = draw(st.integers(0, len(value)))
            if op == "truncate":
                result[key] = value[:at]
            else:
                result[key] = value[:at] + draw(st.binary(min_size=1, max_size=4)) + value[at:]
    return result


@st.composite
def part_sets(draw: Callable) -> list[protocol.PartMessage]:
    """The parts of a real multipart event, shuffled, some lost, repeated or tampered with."""
    event = draw(signed_events())
    bulky = nostr.sign_event(
        draw(st.sampled_from(KEYS)),
        kind=event.kind,
        tags=[list(t) for t in event.tags],
        content=event.content + draw(event_text) * 8,
        created_at=event.created_at,
    )
    parts = []
    for records_ in protocol.split_event(bulky, budget=draw(st.integers(120, 500))):
        message = protocol.decode_records(records_)
        if isinstance(message, protocol.PartMessage):
            parts.append(message)
        else:  # it fitted in one payment: make it one part of one
            parts.append(protocol.PartMessage(bulky.id, 0, 1, protocol.pack_event(bulky)))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["drop", "repeat", "data", "index", "count", "event_id"]))
        i = draw(st.integers(0, len(parts) - 1)) if parts else 0
        if not parts:
            break
        part = parts[i]
        if op == "drop":
            parts.pop(i)
        elif op == "repeat":
            parts.append(part)
        elif op == "data":
            parts[i] = protocol.PartMessage(
                part.event_id, part.index, part.count, draw(st.binary(max_size=60))
            )
        elif op == "index":
            parts[i] = protocol.PartMessage(
                part.event_id, draw(st.integers(0, 200)), part.count, part.data
            )
        elif op == "count":
            parts[i] = protocol.PartMessage(
                part.event_id, part.index, draw(st.integers(1, 200)), part.data
            )
        else:
            parts[i] = protocol.PartMessage(draw(hex64), part.index, part.count, part.data)
    return draw(st.permutations(parts))


@st.composite
def event_objects(draw: Callable) -> dict[str, Any]:
    """A signed event's JSON object with up to three fields changed, removed or added."""
    obj = draw(signed_events()).to_dict()
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["replace", "drop", "add", "tweak", "hexflip"]))
        key = draw(st.sampled_from(sorted(obj) or ["id"]))
        if op == "hexflip" and key in ("id", "pubkey", "sig") and isinstance(obj[key], str):
            # Still well formed, no longer authentic: the bad_id / bad_signature paths.
            text = obj[key]
            at = draw(st.integers(0, max(0, len(text) - 1)))
            obj[key] = text[:at] + draw(st.sampled_from("0123456789abcdef")) + text[at + 1 :]
        elif op == "replace":
            obj[key] = draw(json_values)
        elif op == "drop":
            obj.pop(key, None)
        elif op == "add":
            obj[draw(any_text)] = draw(json_values)
        elif isinstance(obj.get(key), str) and obj[key]:
            text = obj[key]
            at = draw(st.integers(0, len(text) - 1))
            obj[key] = text[:at] + draw(any_char) + text[at + 1 :]
        elif isinstance(obj.get(key), int):
            obj[key] = obj[key] + draw(st.integers(-2, 2))
    return obj


def _dumps_any(value: Any, ensure_ascii: bool) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii)


event_inputs = st.one_of(
    event_objects(),
    st.builds(_dumps_any, event_objects(), st.booleans()),
    st.builds(_dumps_any, event_objects(), st.booleans()).map(
        lambda s: s.encode("utf-8", "replace")
    ),
    json_values.map(json.dumps),
    st.binary(max_size=200),
    any_text,
    st.sampled_from(NASTY_STRINGS),
)

bech32_inputs = st.one_of(
    hex64.map(nostr.npub_encode),
    st.builds(
        lambda npub, at, c: npub[:at] + c + npub[at + 1 :],
        hex64.map(nostr.npub_encode),
        st.integers(0, 62),
        any_char,
    ),
    hex64.map(nostr.nsec_encode),
    any_text,
)

filter_keys = st.sampled_from(
    ["ids", "authors", "kinds", "since", "until", "limit", "#e", "#p", "#E", "#t", "#h", "search"]
)
filter_values = st.one_of(
    st.lists(hex64, max_size=4),
    st.lists(st.integers(-5, 70000), max_size=4),
    st.integers(-(2**60), 2**60),
    st.lists(any_text, max_size=3),
    json_values,
)
filter_objects = st.one_of(
    st.dictionaries(filter_keys, filter_values, max_size=5),
    st.dictionaries(st.one_of(filter_keys, any_text), json_values, max_size=4),
    json_values,
)


@st.composite
def client_messages(draw: Callable) -> str | bytes:
    """What a Nostr client (or anyone) sends to /relay: well formed or not."""
    shape = draw(st.sampled_from(["REQ", "CLOSE", "EVENT", "COUNT", "other", "raw"]))
    subid = draw(st.one_of(st.just("sub"), any_text, json_values))
    if shape == "REQ":
        items: list[Any] = ["REQ", subid, *draw(st.lists(filter_objects, max_size=3))]
    elif shape == "CLOSE":
        items = ["CLOSE", *draw(st.lists(st.one_of(st.just(subid), json_values), max_size=2))]
    elif shape == "EVENT":
        items = ["EVENT", draw(st.one_of(event_objects(), json_values))]
    elif shape == "COUNT":
        items = ["COUNT", subid, *draw(st.lists(filter_objects, max_size=2))]
    elif shape == "other":
        items = [draw(st.one_of(any_text, json_values)), *draw(st.lists(json_values, max_size=2))]
    else:
        raw = st.one_of(frame_text, st.binary(max_size=50), st.sampled_from(NASTY_STRINGS))
        return draw(raw.filter(_sendable))
    text = json.dumps(items, ensure_ascii=draw(st.booleans()))
    # A lone surrogate cannot travel raw in a text frame, only as a JSON escape.
    return text if _sendable(text) else json.dumps(items)


def _sendable(message: str | bytes) -> bool:
    """Whether a websocket text frame (valid UTF-8) can carry `message` (bytes: binary frame)."""
    if isinstance(message, bytes):
        return True
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
