"""Paying a Lightning Address (LUD-16) from the forum: the author's share of a tip, when the
author published a `lud16` in their kind 0 profile instead of naming a node.

`address_invoice` asks the address's LNURL-pay server (LUD-06) for an invoice: two small
HTTPS GETs, each with a timeout (`LNURL_FETCH_TIMEOUT_SECONDS`) and a size cap
(`LNURL_FETCH_MAX_BYTES`), no redirects, and never to a private, loopback or link-local
address (the address is the author's input, so the forum must not be made to fetch its own
network; `LNURL_ALLOW_PRIVATE` lifts that for tests and closed networks, and then allows
plain http to such hosts). The caller checks the invoice against the amount and the metadata's
hash (LUD-06) with its node before paying it (`forum.services.tips`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.conf import settings


class AddressError(Exception):
    """The address cannot be paid now; the text says why (shown at /mod/tips/)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as the error it then is


def _allow_private() -> bool:
    return bool(getattr(settings, "LNURL_ALLOW_PRIVATE", False))


def host_is_private(host: str) -> bool:
    """Whether `host` is, or resolves to, an address the forum must not fetch."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise AddressError(f"the address's host {host!r} does not resolve ({exc})") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            return True
        if ip.is_multicast or ip.is_unspecified:
            return True
    return False


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if not host:
        raise AddressError(f"not a URL: {url[:100]!r}")
    private = host_is_private(host)
    if private and not _allow_private():
        raise AddressError(f"the address's server {host} is on a private network")
    if parts.scheme != "https" and not (parts.scheme == "http" and private):
        raise AddressError(f"the address's server must be https, not {url[:100]!r}")


def fetch_json(url: str) -> dict[str, Any]:
    """GET a JSON object with the timeout and size cap; `AddressError` on anything else."""
    _check_url(url)
    timeout = float(getattr(settings, "LNURL_FETCH_TIMEOUT_SECONDS", 10))
    cap = int(getattr(settings, "LNURL_FETCH_MAX_BYTES", 65536))
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(cap + 1)
    except urllib.error.HTTPError as exc:
        detail = ""
        with contextlib.suppress(ValueError, AttributeError, OSError):
            detail = str(json.loads(exc.read(cap)).get("reason", ""))[:200]
        raise AddressError(f"{url[:100]} answered HTTP {exc.code} {detail}".strip()) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AddressError(f"{url[:100]} could not be read ({exc})") from None
    if len(body) > cap:
        raise AddressError(f"{url[:100]} answered more than {cap} bytes")
    try:
        data = json.loads(body)
    except ValueError:
        raise AddressError(f"{url[:100]} did not answer JSON") from None
    if not isinstance(data, dict):
        raise AddressError(f"{url[:100]} did not answer a JSON object")
    if str(data.get("status", "")).upper() == "ERROR":
        raise AddressError(f"the address's server refused: {str(data.get('reason', ''))[:200]}")
    return data


def address_url(address: str) -> str:
    """LUD-16: `name@domain` -> `https://domain/.well-known/lnurlp/name` (http only for a
    private host, when allowed)."""
    name, _, domain = address.strip().lower().partition("@")
    if not name or not domain or "/" in domain or "/" in name:
        raise AddressError(f"{address[:100]!r} is not a Lightning Address (name@domain)")
    host = urllib.parse.urlsplit(f"//{domain}").hostname or ""
    scheme = "http" if _allow_private() and host and host_is_private(host) else "https"
    return f"{scheme}://{domain}/.well-known/lnurlp/{urllib.parse.quote(name)}"


def address_invoice(address: str, *, amount_msat: int) -> tuple[str, str]:
    """(payment request, metadata) for `amount_msat` to `address`; `AddressError` otherwise."""
    info = fetch_json(address_url(address))
    if info.get("tag") != "payRequest":
        raise AddressError("the address's server did not answer a LUD-06 payRequest")
    callback, metadata = info.get("callback"), info.get("metadata")
    low, high = info.get("minSendable"), info.get("maxSendable")
    if not isinstance(callback, str) or not isinstance(metadata, str):
        raise AddressError("the address's payRequest lacks its callback or metadata")
    if not isinstance(low, int) or not isinstance(high, int) or not low <= amount_msat <= high:
        raise AddressError(
            f"the address takes between {low} and {high} msat, not {amount_msat} msat"
        )
    separator = "&" if urllib.parse.urlsplit(callback).query else "?"
    answer = fetch_json(f"{callback}{separator}amount={amount_msat}")
    payment_request = answer.get("pr")
    if not isinstance(payment_request, str) or not payment_request:
        raise AddressError("the address's server gave no invoice (pr)")
    return payment_request, metadata
