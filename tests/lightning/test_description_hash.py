"""AddInvoice with a description hash (LNURL-pay, NIP-57 zaps), read by an independent decoder."""

from __future__ import annotations

import hashlib

import bolt11
import pytest

from lightning.client import LightningClient
from lightning.types import LightningError


def test_an_invoice_commits_to_its_description_by_hash(
    clients: dict[str, LightningClient],
) -> None:
    metadata = '[["text/plain","Tip a post"]]'
    digest = hashlib.sha256(metadata.encode()).digest()
    invoice = clients["forum"].add_invoice(value_msat=21_000, description_hash=digest, expiry=600)
    decoded = bolt11.decode(invoice.payment_request)
    assert decoded.description_hash == digest.hex()
    assert decoded.description is None
    assert decoded.amount_msat == 21_000
    assert decoded.payment_hash == invoice.payment_hash
    assert decoded.expiry == 600
    payment = clients["bob"].pay_invoice(invoice.payment_request)
    assert payment.succeeded and payment.value_msat == 21_000


def test_a_memo_and_a_description_hash_together_are_refused_as_lnd_does(
    clients: dict[str, LightningClient],
) -> None:
    with pytest.raises(LightningError, match="not both"):
        clients["forum"].add_invoice(value_msat=1000, memo="x", description_hash=b"\0" * 32)
    with pytest.raises(LightningError, match="want 32"):
        clients["forum"].add_invoice(value_msat=1000, description_hash=b"\0" * 31)
