"""Task adapters retry transient database errors; the quote API refuses what it cannot price."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from forum import nostr, protocol, tasks
from forum.ingest import reconcile, sweep
from forum.models import LedgerEntry, Thread
from tests.conftest import record_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def test_reconcile_task_retries_a_transient_error(forum_node, board, alice_key, monkeypatch):
    event = nostr.thread_event(alice_key, board="general", title="t", content="c")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)
    record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    real = reconcile._Run._row
    calls = []

    def flaky(run, row, message):
        calls.append(row.payment_hash)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(run, row, message)

    monkeypatch.setattr(reconcile._Run, "_row", flaky)
    # throw=False: eager apply() then re-runs a Retry the way a worker would redeliver it.
    result = tasks.reconcile_batch.apply(throw=False)
    assert result.get() == 1
    assert len(calls) == 2
    assert Thread.objects.count() == 1
    assert LedgerEntry.objects.get().reconcile_attempts == 1  # the failed try rolled back


def test_a_bug_marks_only_that_entry_and_the_sweep_retries_it(
    forum_node, board, alice_key, bob_key, monkeypatch
):
    poisoned = nostr.thread_event(alice_key, board="general", title="t", content="c")
    healthy = nostr.thread_event(bob_key, board="general", title="u", content="d")
    invoices = [
        forum_node.keysend(protocol.encode_event(event), 10_000) for event in (poisoned, healthy)
    ]
    for invoice in invoices:
        record_invoice(invoice, node_pubkey=forum_node.pubkey, enqueue=False)
    real = reconcile._Run._row

    def buggy(run, row, message):
        if row.payment_hash == invoices[0].payment_hash:
            return 1 / 0
        return real(run, row, message)

    monkeypatch.setattr(reconcile._Run, "_row", buggy)
    outcome = reconcile.reconcile_batch()
    assert (outcome.rows, outcome.errors) == (1, 1)
    entry = LedgerEntry.objects.get(payment_hash=invoices[0].payment_hash)
    assert (entry.reconcile_state, entry.reconcile_attempts) == ("error", 1)
    assert "ZeroDivisionError" in entry.reconcile_error
    # The rest of the batch went through.
    assert list(Thread.objects.values_list("title", flat=True)) == ["u"]
    monkeypatch.setattr(reconcile._Run, "_row", real)
    report = sweep.sweep_run(now=timezone.now() + timedelta(minutes=5))
    assert report.retried == 1 and report.reconcile_due
    tasks.reconcile_batch()
    assert LedgerEntry.objects.get(payment_hash=invoices[0].payment_hash).reconcile_state == "done"
    assert Thread.objects.count() == 2


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
