"""Task adapters retry transient database errors; the quote API refuses what it cannot price."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from forum import nostr, protocol, tasks
from forum.models import LedgerEntry, Thread
from forum.services import ledger, reconcile

pytestmark = pytest.mark.django_db(transaction=True)


def test_reconcile_task_retries_a_transient_error(forum_node, board, alice_key, monkeypatch):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
    ledger.ledger_record_invoice(invoice=invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    real = reconcile._reconcile_entry
    calls = []

    def flaky(entry):
        calls.append(entry.payment_hash)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(entry)

    monkeypatch.setattr(reconcile, "_reconcile_entry", flaky)
    # throw=False: eager apply() then re-runs a Retry the way a worker would redeliver it.
    result = tasks.reconcile_payment.apply(args=[invoice.payment_hash], throw=False)
    assert result.get() == "reconciled"
    assert len(calls) == 2
    assert Thread.objects.count() == 1
    assert LedgerEntry.objects.get().reconcile_attempts == 1  # the failed try rolled back


def test_a_bug_marks_only_that_entry_and_the_sweep_retries_it(
    forum_node, board, alice_key, monkeypatch
):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
    ledger.ledger_record_invoice(invoice=invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    real = reconcile._reconcile_entry
    monkeypatch.setattr(reconcile, "_reconcile_entry", lambda entry: 1 / 0)
    reconcile.ledger_entry_reconcile(payment_hash=invoice.payment_hash)
    entry = LedgerEntry.objects.get()
    assert (entry.reconcile_state, entry.reconcile_attempts) == ("error", 1)
    assert "ZeroDivisionError" in entry.reconcile_error
    monkeypatch.setattr(reconcile, "_reconcile_entry", real)
    reconcile.ledger_entry_reconcile(payment_hash=invoice.payment_hash)
    assert LedgerEntry.objects.get().reconcile_state == "done"
    assert Thread.objects.count() == 1


def test_quote_errors(client, board):
    assert client.get("/api/quote", {"board": "nope"}).status_code == 404
    bad_kind = client.get("/api/quote", {"board": "general", "kind": "1"})
    assert bad_kind.status_code == 400 and bad_kind.json()["field"] == "kind"
    bad_key = client.get("/api/quote", {"board": "general", "pubkey": "xyz"})
    assert bad_key.status_code == 400 and bad_key.json()["field"] == "pubkey"


def test_quote_shape(client, forum_node, board):
    body = client.get("/api/quote", {"board": "general", "kind": "1111"}).json()
    assert body["price_msat"] == 2_000 and body["price_sats"] == 2
    assert body["node_pubkey"] == forum_node.pubkey
    assert body["record_types"] == dict(protocol.RECORD_TYPES)
    assert body["keysend_preimage_record"] == 5482373484
    assert set(body["onion"]) == {"1", "2", "3", "4"}
    assert body["onion"]["1"]["records_budget"] > body["onion"]["4"]["records_budget"]
    assert body["limits"]["max_content_length"] == 5_000
