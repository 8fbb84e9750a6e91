"""The relay's own Nostr key: it signs what the forum says as itself (NIP-57 zap receipts).

NIP-11 publishes its public key as `self`; the LNURL-pay answer names it as `nostrPubkey`, so a
Nostr client knows which receipts to trust. Set `RELAY_NOSTR_SECRET_KEY` (64 hex characters,
or an `nsec1…`) to choose it; by default it is derived from `SECRET_KEY` (HMAC-SHA256 under a
fixed label), so every process of one deployment signs with the same key and nothing more has
to be kept secret. Changing `SECRET_KEY` therefore changes the relay's pubkey: receipts
already signed stay valid, new ones are signed by the new key.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from django.conf import settings

from forum import nostr

_LABEL = b"forum.relay-nostr-key\x00"


@cache
def _secret_for(configured: str, django_secret: str) -> str:
    if configured:
        value = configured.strip()
        return nostr.nsec_decode(value) if value.startswith("nsec1") else value.lower()
    counter = 0
    while True:  # the chance that an HMAC is not a valid key is ~2**-128; loop, never bias
        digest = hmac.new(
            django_secret.encode(), _LABEL + bytes([counter]), hashlib.sha256
        ).hexdigest()
        try:
            nostr.public_key(digest)
            return digest
        except nostr.EventError:
            counter += 1


def relay_secret_key() -> str:
    return _secret_for(
        str(getattr(settings, "RELAY_NOSTR_SECRET_KEY", "") or ""), str(settings.SECRET_KEY)
    )


def relay_pubkey() -> str:
    return nostr.public_key(relay_secret_key())
