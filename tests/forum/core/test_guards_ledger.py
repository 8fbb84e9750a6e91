"""Guard: two writers racing one invoice into the ledger make one row, and only one of them
says it created it (so the payment is announced, counted and reconciled once).

The race staged here is the one the savepoint in `ledger.ledger_insert_once` exists for: both
writers look for the payment hash before either has committed, both insert, and the loser
waits on the unique index until the winner commits. Real threads, real PostgreSQL
connections; the interleaving is forced by holding the winner's transaction open until the
loser is seen blocked on the lock.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from forum import nostr, protocol
from forum.models import Author, Event, LedgerEntry, Rejection, Thread
from tests.conftest import need, record_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def blocked_on_lock() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL answers from a snapshot taken at the first look.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def race_one_invoice(invoice, node_pubkey: str) -> list[tuple[str, bool]]:
    """Record `invoice` from two threads so that the second inserts into the first's
    uncommitted row; returns [(writer, created), ...] in finishing order."""
    inserted = threading.Event()
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def winner() -> None:
        try:
            with transaction.atomic():
                _, created = record_invoice(invoice, node_pubkey=node_pubkey)
                inserted.set()
                # Keep the row uncommitted until the loser is stuck behind it on the unique
                # index: it has already looked for the row and not found it.
                deadline = time.monotonic() + 20
                while blocked_on_lock() == 0:
                    assert time.monotonic() < deadline, "the second writer never blocked"
                    time.sleep(0.02)
            results.append(("winner", created))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            inserted.set()
            connection.close()

    def loser() -> None:
        try:
            inserted.wait(20)
            _, created = record_invoice(invoice, node_pubkey=node_pubkey)
            results.append(("loser", created))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=winner), threading.Thread(target=loser)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_racing_writers_record_a_valid_post_once(forum_node, board, alice_key):
    need(connection.vendor == "postgresql", "two concurrent writers need PostgreSQL")
    event = nostr.thread_event(alice_key, board="general", title="t", content="raced")
    invoice = forum_node.keysend(protocol.encode_event(event), 10_000)

    results = race_one_invoice(invoice, forum_node.pubkey)

    assert sorted(results) == [("loser", False), ("winner", True)]
    assert LedgerEntry.objects.filter(payment_hash=invoice.payment_hash).count() == 1
    assert LedgerEntry.objects.get().reconcile_state == "done"
    assert Thread.objects.count() == 1
    assert Event.objects.get().state == "published"
    # Charged once: the author's spending counts this payment a single time.
    assert Author.objects.get(pubkey=event.pubkey).spent_msat == 10_000
    assert not Rejection.objects.exists()  # in particular no "duplicate" for the replay


def test_racing_writers_reject_an_underpaid_post_once(forum_node, board, alice_key):
    need(connection.vendor == "postgresql", "two concurrent writers need PostgreSQL")
    event = nostr.thread_event(alice_key, board="general", title="t", content="cheap")
    invoice = forum_node.keysend(protocol.encode_event(event), 4_000)

    results = race_one_invoice(invoice, forum_node.pubkey)

    assert sorted(results) == [("loser", False), ("winner", True)]
    assert LedgerEntry.objects.count() == 1
    assert list(Rejection.objects.values_list("reason", flat=True)) == ["underpaid"]
    assert Event.objects.get().waiting_for == "underpaid"
    assert not Thread.objects.exists()
