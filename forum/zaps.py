"""Zaps and LNURL-pay as pure functions: NIP-57 zap requests and receipts, LUD-06 metadata.

No Django and no I/O. `zap_request_parse` checks a zap request (kind 9734) the way NIP-57's
appendix D asks a Lightning service to (signature, tags, the `amount` tag against the amount
asked for, the `relays` tag); what only the forum knows (is the `p` tag the author of a post
served here, is the `e` tag such a post) is `forum.services.lnurl`'s check on top. Each
refusal is a `ZapRequestError` with a machine-readable `code` and a sentence for the client.

`zap_receipt_build` makes the kind 9735 receipt the forum's relay key signs when the invoice
is paid; `lnurl_metadata` and `description_hash` are what LUD-06 wallets check an invoice
against (for a zap, NIP-57 makes the hash commit to the zap request's JSON instead).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from forum import nostr

KIND_ZAP_REQUEST = 9734
KIND_ZAP_RECEIPT = 9735

# The zap request travels URL-encoded in the callback's query string; a real one is a few
# hundred bytes (a dozen relays included). Anything larger is refused before parsing.
MAX_ZAP_REQUEST_BYTES = 8192
MAX_RELAYS = 20
MAX_RELAY_URL_LENGTH = 256
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ZapRequestError(ValueError):
    """A zap request the forum refuses; `code` for programs, `text` for people."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class ZapRequest:
    """A checked zap request. `text` is the JSON exactly as the client sent it: the invoice's
    description hash is its sha256, and the receipt's `description` tag repeats it."""

    event: nostr.Event
    text: str
    recipient: str  # the `p` tag: whom the zap is for
    event_id: str  # the `e` tag, "" for a zap of a profile
    relays: tuple[str, ...]
    amount_msat: int | None  # the `amount` tag, when the client sent one
    lnurl: str  # the `lnurl` tag, "" when absent

    @property
    def sender(self) -> str:
        return self.event.pubkey


def _tags(event: nostr.Event, name: str) -> list[tuple[str, ...]]:
    return [tag for tag in event.tags if tag and tag[0] == name]


def _relay_url_ok(url: str) -> bool:
    if len(url) > MAX_RELAY_URL_LENGTH:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("ws", "wss") and bool(parts.hostname)


def zap_request_parse(text: str, *, amount_msat: int) -> ZapRequest:
    """Check a zap request (the callback's `nostr` parameter) for a payment of `amount_msat`.

    NIP-57 appendix D: a valid signature, tags, exactly one `p` tag, at most one `e` tag, a
    `relays` tag (relays to publish the receipt to), and an `amount` tag, when present, equal
    to the amount asked for. An `a` tag (a zap of an addressable event) is refused: this forum
    serves no addressable events.
    """
    if len(text.encode("utf-8")) > MAX_ZAP_REQUEST_BYTES:
        raise ZapRequestError(
            "too_large", f"the zap request is larger than {MAX_ZAP_REQUEST_BYTES} bytes"
        )
    try:
        event = nostr.parse_event(text, verify=True)
    except nostr.EventError as exc:
        if exc.code == "bad_signature":
            raise ZapRequestError(
                "bad_signature", "the zap request's signature does not verify"
            ) from exc
        if exc.code == "bad_id":
            raise ZapRequestError(
                "bad_id", "the zap request's id does not match its contents"
            ) from exc
        raise ZapRequestError(
            "malformed", f"the zap request is not a valid Nostr event: {exc.message}"
        ) from exc
    if event.kind != KIND_ZAP_REQUEST:
        raise ZapRequestError(
            "wrong_kind", f"a zap request is a kind {KIND_ZAP_REQUEST} event, not kind {event.kind}"
        )
    if not event.tags:
        raise ZapRequestError("malformed", "the zap request has no tags")
    p_tags = _tags(event, "p")
    if len(p_tags) != 1 or len(p_tags[0]) < 2 or not _HEX64.fullmatch(p_tags[0][1]):
        raise ZapRequestError(
            "bad_p_tag",
            f"a zap request needs exactly one p tag with the recipient's hex pubkey"
            f" (this one has {len(p_tags)})",
        )
    e_tags = _tags(event, "e")
    if len(e_tags) > 1:
        raise ZapRequestError("bad_e_tag", "a zap request may name at most one event (e tag)")
    event_id = ""
    if e_tags:
        if len(e_tags[0]) < 2 or not _HEX64.fullmatch(e_tags[0][1]):
            raise ZapRequestError("bad_e_tag", "the zap request's e tag is not a hex event id")
        event_id = e_tags[0][1]
    if _tags(event, "a"):
        raise ZapRequestError(
            "unsupported", "this forum serves no addressable events: zap a post (e tag) instead"
        )
    if len(_tags(event, "P")) > 1:
        raise ZapRequestError("malformed", "a zap request may have at most one P tag")
    relay_tags = _tags(event, "relays")
    if len(relay_tags) != 1:
        raise ZapRequestError(
            "bad_relays",
            "a zap request needs one relays tag listing the relays for its receipt",
        )
    relays = tuple(relay_tags[0][1:])
    if not relays or len(relays) > MAX_RELAYS:
        raise ZapRequestError(
            "bad_relays", f"the relays tag must list between 1 and {MAX_RELAYS} relays"
        )
    bad = next((url for url in relays if not _relay_url_ok(url)), None)
    if bad is not None:
        raise ZapRequestError(
            "bad_relays", f"the relays tag holds {bad[:80]!r}, which is not a ws:// or wss:// URL"
        )
    tagged_amount: int | None = None
    amount_tags = _tags(event, "amount")
    if len(amount_tags) > 1:
        raise ZapRequestError("wrong_amount", "a zap request may have at most one amount tag")
    if amount_tags:
        value = amount_tags[0][1] if len(amount_tags[0]) > 1 else ""
        if not value.isdigit() or len(value) > 18:
            raise ZapRequestError(
                "wrong_amount", "the zap request's amount tag is not a number of msat"
            )
        tagged_amount = int(value)
        if tagged_amount != amount_msat:
            raise ZapRequestError(
                "wrong_amount",
                f"the zap request says {tagged_amount} msat but {amount_msat} msat was asked for",
            )
    lnurl = event.tag_value("lnurl") or ""
    return ZapRequest(
        event=event,
        text=text,
        recipient=p_tags[0][1],
        event_id=event_id,
        relays=relays,
        amount_msat=tagged_amount,
        lnurl=lnurl,
    )


def zap_receipt_build(
    secret_hex: str,
    request: ZapRequest,
    *,
    bolt11: str,
    preimage_hex: str,
    paid_at: int,
) -> nostr.Event:
    """The kind 9735 zap receipt, signed by the forum's relay key (the LNURL response's
    `nostrPubkey`). `created_at` is when the invoice was paid (NIP-57)."""
    tags: list[list[str]] = [["p", request.recipient]]
    if request.event_id:
        tags.append(["e", request.event_id])
    tags += [
        ["P", request.sender],
        ["bolt11", bolt11],
        ["description", request.text],
    ]
    if preimage_hex:
        tags.append(["preimage", preimage_hex])
    return nostr.sign_event(
        secret_hex, kind=KIND_ZAP_RECEIPT, tags=tags, content="", created_at=paid_at
    )


# --- LNURL-pay (LUD-06, LUD-16) ---------------------------------------------------------------


def lnurl_metadata(*, text: str, identifier: str = "") -> str:
    """LUD-06 `metadata`: a JSON array as a string; wallets hash these exact bytes."""
    entries = [["text/plain", text]]
    if identifier:
        entries.append(["text/identifier", identifier])  # LUD-16: the Lightning Address
    return json.dumps(entries, separators=(",", ":"), ensure_ascii=False)


def description_hash(text: str) -> bytes:
    """sha256 of the UTF-8 bytes: LUD-06 hashes the metadata, NIP-57 the zap request JSON."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def lnurl_encode(url: str) -> str:
    """LUD-01 bech32 form (`LNURL1…`), upper case so QR codes use their compact mode."""
    return nostr.bech32_encode("lnurl", url.encode("utf-8")).upper()
