"""Minimal BOLT 11 payment requests for simnet invoices (regtest, ``lnbcrt``).

Encodes what lnd puts in an AddInvoice request (payment hash, payment secret,
description, expiry, min_final_cltv_expiry, features) signed with the node
key, and decodes such strings for SendPaymentV2 and DecodePayReq. A description hash
(AddInvoice's ``description_hash``, for LNURL-pay and zaps) goes in the ``h`` field instead of
the description, as lnd does. Route hints and fallback addresses are not supported.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import coincurve

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
HRP_PREFIX = "lnbcrt"
# BOLT 11 multipliers, as msat per unit (p is a tenth of a msat).
_MSAT_PER_UNIT = {"m": 100_000_000, "u": 100_000, "n": 100}
# var_onion_optin required (8), payment_secret required (14), basic_mpp optional (17).
_FEATURE_BITS = (8, 14, 17)


@dataclass(frozen=True)
class Decoded:
    payee: str
    payment_hash: str
    payment_secret: str
    amount_msat: int
    timestamp: int
    expiry: int
    description: str
    min_final_cltv_expiry: int
    description_hash: str = ""  # hex, when the request commits to a description by hash


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _checksum(hrp: str, data: list[int]) -> list[int]:
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ 1
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def _convert(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad and bits:
        out.append((acc << (tobits - bits)) & maxv)
    return out


def _int_groups(value: int, min_len: int = 1) -> list[int]:
    groups = []
    while value:
        groups.append(value & 31)
        value >>= 5
    groups.reverse()
    return [0] * (min_len - len(groups)) + groups if len(groups) < min_len else groups


def _tagged(tag: str, groups: list[int]) -> list[int]:
    return [CHARSET.index(tag), len(groups) >> 5, len(groups) & 31, *groups]


def _amount_hrp(msat: int) -> str:
    if not msat:
        return ""
    for unit, size in _MSAT_PER_UNIT.items():
        if msat % size == 0:
            return f"{msat // size}{unit}"
    return f"{msat * 10}p"


def _features() -> list[int]:
    value = sum(1 << bit for bit in _FEATURE_BITS)
    return _int_groups(value)


def encode(inv: Any, privkey: bytes, *, description_hash: bytes = b"") -> str:
    """BOLT 11 string for an ``InvoiceRecord`` (duck-typed to stay import-light)."""
    hrp = HRP_PREFIX + _amount_hrp(inv.value_msat)
    data = _int_groups(inv.creation_date, 7)
    data += _tagged("p", _convert(bytes.fromhex(inv.payment_hash), 8, 5, True))
    data += _tagged("s", _convert(bytes.fromhex(inv.payment_addr), 8, 5, True))
    if description_hash:
        data += _tagged("h", _convert(description_hash, 8, 5, True))
    else:
        data += _tagged("d", _convert(inv.memo.encode(), 8, 5, True))
    data += _tagged("x", _int_groups(inv.expiry))
    data += _tagged("c", _int_groups(inv.cltv_expiry))
    data += _tagged("9", _features())
    message = hrp.encode() + bytes(_convert(data, 5, 8, True))
    sig = coincurve.PrivateKey(privkey).sign_recoverable(
        hashlib.sha256(message).digest(), hasher=None
    )
    data += _convert(sig, 8, 5, True)
    return hrp + "1" + "".join(CHARSET[d] for d in data + _checksum(hrp, data))


def decode(text: str) -> Decoded:
    """Decode and verify a payment request; raises ValueError when invalid."""
    text = text.strip().lower()
    if text.startswith("lightning:"):
        text = text[len("lightning:") :]
    pos = text.rfind("1")
    if pos < 1 or len(text) - pos < 7 + 104 + 6:
        raise ValueError("invalid payment request length")
    hrp, rest = text[:pos], text[pos + 1 :]
    if any(c not in CHARSET for c in rest):
        raise ValueError("invalid character in payment request")
    values = [CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise ValueError("invalid checksum")
    match = re.fullmatch(r"ln(bcrt|bc|tbs|tb|sb)(\d+)?([munp])?", hrp)
    if not match:
        raise ValueError(f"unknown human-readable part {hrp!r}")
    amount_msat = 0
    if match.group(2):
        number, unit = int(match.group(2)), match.group(3)
        if unit == "p":
            if number % 10:
                raise ValueError("amount has sub-millisatoshi precision")
            amount_msat = number // 10
        elif unit:
            amount_msat = number * _MSAT_PER_UNIT[unit]
        else:
            amount_msat = number * 100_000_000_000
    data = values[:-6]
    sig_groups, body = data[-104:], data[:-104]
    sig = bytes(_convert(sig_groups, 5, 8, False))
    message = hrp.encode() + bytes(_convert(body, 5, 8, True))
    try:
        payee = coincurve.PublicKey.from_signature_and_message(
            sig, hashlib.sha256(message).digest(), hasher=None
        ).format(compressed=True)
    except Exception as exc:  # coincurve raises plain Exception subclasses
        raise ValueError(f"invalid signature: {exc}") from exc
    timestamp = _groups_int(body[:7])
    fields: dict[str, list[int]] = {}
    i = 7
    while i + 3 <= len(body):
        tag = CHARSET[body[i]]
        length = body[i + 1] << 5 | body[i + 2]
        fields.setdefault(tag, body[i + 3 : i + 3 + length])
        i += 3 + length
    if "p" not in fields:
        raise ValueError("payment request has no payment hash")
    explicit_payee = fields.get("n")
    if explicit_payee is not None and bytes(_convert(explicit_payee, 5, 8, False)) != payee:
        raise ValueError("signature does not match the payee")
    return Decoded(
        payee=payee.hex(),
        payment_hash=bytes(_convert(fields["p"], 5, 8, False))[:32].hex(),
        payment_secret=bytes(_convert(fields.get("s", []), 5, 8, False))[:32].hex(),
        amount_msat=amount_msat,
        timestamp=timestamp,
        expiry=_groups_int(fields["x"]) if "x" in fields else 3600,
        description=bytes(_convert(fields.get("d", []), 5, 8, False)).decode("utf-8", "replace"),
        min_final_cltv_expiry=_groups_int(fields["c"]) if "c" in fields else 18,
        description_hash=bytes(_convert(fields.get("h", []), 5, 8, False))[:32].hex(),
    )


def _groups_int(groups: list[int]) -> int:
    value = 0
    for g in groups:
        value = value << 5 | g
    return value
