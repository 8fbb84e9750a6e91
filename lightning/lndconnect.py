"""lndconnect URIs: ``lndconnect://host:port?cert=<b64url DER>&macaroon=<b64url>``.

Format from LN-Zap/lndconnect ``lnd_connect_uri.md``: cert is the DER of the
PEM certificate (the PEM body) base64url-encoded without padding, and is
optional (omitted for nodes with a CA-signed certificate).
"""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from lightning.types import LightningRequestError

_PEM_HEADER = "-----BEGIN CERTIFICATE-----"
_PEM_FOOTER = "-----END CERTIFICATE-----"


@dataclass(frozen=True)
class LndConnect:
    host: str  # "host:port"
    tls_cert: bytes | None  # PEM
    macaroon: bytes | None  # raw macaroon bytes


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem_to_der(pem: bytes) -> bytes:
    lines = pem.decode().strip().splitlines()
    body = "".join(line for line in lines if line and not line.startswith("-----"))
    return base64.b64decode(body)


def der_to_pem(der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"{_PEM_HEADER}\n{body}\n{_PEM_FOOTER}\n".encode()


def parse(uri: str) -> LndConnect:
    """Parse an lndconnect URI; raises LightningRequestError if malformed."""
    parts = urlsplit(uri.strip())
    if parts.scheme != "lndconnect" or not parts.netloc:
        raise LightningRequestError(f"not an lndconnect URI: {uri[:40]!r}")
    host = parts.netloc if parts.port else f"{parts.netloc}:10009"
    query = parse_qs(parts.query)
    try:
        cert = query.get("cert", [""])[0]
        mac = query.get("macaroon", [""])[0]
        return LndConnect(
            host=host,
            tls_cert=der_to_pem(_b64url_decode(cert)) if cert else None,
            macaroon=_b64url_decode(mac) if mac else None,
        )
    except ValueError as exc:
        raise LightningRequestError(f"bad lndconnect URI: {exc}") from exc


def build(host: str, *, tls_cert: bytes | None, macaroon: bytes | None) -> str:
    """Build an lndconnect URI from a PEM certificate and macaroon bytes."""
    params = {}
    if tls_cert:
        params["cert"] = _b64url_encode(pem_to_der(tls_cert))
    if macaroon:
        params["macaroon"] = _b64url_encode(macaroon)
    query = urlencode(params, safe="-_")
    return f"lndconnect://{host}" + (f"?{query}" if query else "")
