"""Posts paid by invoice: the hold-mode fixtures (`hold`, `listening`) plus asking for an
invoice over HTTP and paying it from a simnet wallet node."""

from __future__ import annotations

from typing import Any

import pytest

from forum import nostr
from tests.forum.hold.conftest import (  # noqa: F401 (fixtures)
    Hold,
    alice_key,
    board,
    bob_key,
    held_net,
    hold,
    listening,
)


def ask_invoice(client: Any, event: nostr.Event | dict | str, **kw: Any) -> Any:
    """POST /api/invoice as any client would (JSON, no CSRF token)."""
    body = event.to_json() if isinstance(event, nostr.Event) else event
    payload = f'{{"event": {body}}}' if isinstance(body, str) else {"event": body}
    return client.post("/api/invoice", payload, content_type="application/json", **kw)


def pay_invoice(node_: Hold, payment_request: str, *, sender: str = "alice") -> Any:
    """A wallet pays the BOLT11 invoice (SendPaymentV2.payment_request); a future of the
    final Payment (a hold invoice stays in flight until the forum decides)."""
    from forum.services import node

    return node_.pool.submit(node.client(sender).pay_invoice, payment_request)


@pytest.fixture(autouse=True)
def _fresh_invoice_budgets(settings) -> None:
    """Under REDIS_URL the rate limit's counters live in Redis, shared across tests and runs:
    every test here starts with the test client's addresses at a full budget. (The database
    counters go with each test's database.)"""
    if not getattr(settings, "REDIS_URL", ""):
        return
    from forum.services.moderation import throttle

    counter = throttle.attempt_counter()
    for address in ("127.0.0.1", "10.9.8.7"):
        counter.clear(throttle.counter_key("invoice-client", address))
