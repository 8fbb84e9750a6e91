"""Room-create events and room password verifiers: pure functions, no Django.

A private room is rented with a signed event of kind `KIND_ROOM_CREATE` whose tags name the
room (`d` = slug, `name`), carry a salted scrypt verifier of its password (`verifier`) and may
set its lifetime in seconds (`lifetime`); see docs/protocol.md, "Private rooms". The verifier is
`scrypt$N$r$p$<salt>$<hash>` (salt and hash in base64, either alphabet, padding optional), so the
password itself never travels in a payment. `forum.services.rooms` applies these to payments;
`forum.client room create` uses them to build one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from forum import nostr

# A regular (stored, not replaceable) kind of the forum's own; no NIP assigns 9311.
KIND_ROOM_CREATE = 9311
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{2,63}")

# scrypt bounds: enough work to slow guessing, little enough that checking one password is
# cheap for the server (memory is 128 * N * r bytes: 16 MiB at verifier_make's N=2^14, r=8).
SCRYPT_MAX_N = 2**16
SCRYPT_MAX_R = 16
SCRYPT_MAX_P = 4
SCRYPT_MAXMEM = 128 * SCRYPT_MAX_N * SCRYPT_MAX_R + 2**20
SALT_BYTES = (16, 64)
HASH_BYTES = (16, 64)


class VerifierError(ValueError):
    """A password verifier that is not `scrypt$N$r$p$salt$hash` within our bounds."""


# --- the password verifier ------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str, name: str) -> bytes:
    # Standard or URL-safe alphabet, padded or not: browsers' btoa() gives the former.
    normal = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise VerifierError(f"the {name} is not base64") from None


@dataclass(frozen=True)
class Verifier:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def verifier_parse(text: str) -> Verifier:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise VerifierError("the verifier must be scrypt$N$r$p$salt$hash")
    try:
        n, r, p = (int(x) for x in parts[1:4])
    except ValueError:
        raise VerifierError("scrypt N, r and p must be numbers") from None
    if n < 2**10 or n > SCRYPT_MAX_N or n & (n - 1):
        raise VerifierError(f"scrypt N must be a power of two from 1024 to {SCRYPT_MAX_N}")
    if not 1 <= r <= SCRYPT_MAX_R or not 1 <= p <= SCRYPT_MAX_P:
        raise VerifierError(f"scrypt r must be 1..{SCRYPT_MAX_R} and p 1..{SCRYPT_MAX_P}")
    salt, digest = _unb64(parts[4], "salt"), _unb64(parts[5], "hash")
    if not SALT_BYTES[0] <= len(salt) <= SALT_BYTES[1]:
        raise VerifierError(f"the salt must be {SALT_BYTES[0]} to {SALT_BYTES[1]} bytes")
    if not HASH_BYTES[0] <= len(digest) <= HASH_BYTES[1]:
        raise VerifierError(f"the hash must be {HASH_BYTES[0]} to {HASH_BYTES[1]} bytes")
    return Verifier(n, r, p, salt, digest)


def _scrypt(password: str, v: Verifier, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=v.salt,
        n=v.n,
        r=v.r,
        p=v.p,
        maxmem=SCRYPT_MAXMEM,
        dklen=length,
    )


def verifier_make(*, password: str, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """What a client puts in the room-create event's `verifier` tag (also `forum.client`)."""
    v = Verifier(n, r, p, secrets.token_bytes(16), b"")
    digest = _scrypt(password, v, 32)
    return f"scrypt${n}${r}${p}${_b64(v.salt)}${_b64(digest)}"


def verifier_check(*, verifier: str, password: str) -> bool:
    """Does `password` match? Constant-time compare; a broken verifier matches nothing."""
    try:
        v = verifier_parse(verifier)
    except VerifierError:
        return False
    return hmac.compare_digest(_scrypt(password, v, len(v.digest)), v.digest)


def room_event(
    secret_hex: str,
    *,
    slug: str,
    name: str,
    password: str,
    lifetime_seconds: int | None = None,
    description: str = "",
    ln_node: str | None = None,
) -> nostr.Event:
    """A signed room-create event (what `forum.client room create` pays for)."""
    tags = [["d", slug], ["name", name], ["verifier", verifier_make(password=password)]]
    if lifetime_seconds is not None:
        tags.append(["lifetime", str(lifetime_seconds)])
    if ln_node:
        tags.append(["ln", ln_node])
    return nostr.sign_event(secret_hex, kind=KIND_ROOM_CREATE, tags=tags, content=description)
