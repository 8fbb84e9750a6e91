"""Hold mode, the same event paid more than once at the same moment: exactly one copy is
settled and published, every other copy is cancelled uncharged (`duplicate`).

Real concurrent keysends over simnet: sender threads wait at a barrier and then send the same
signed event (or the same parts) at once, so the copies are held side by side and reach the
reviewer before the first one is recorded or reconciled.
"""

from __future__ import annotations

import threading

import pytest
from django.db.models import Sum

from forum import nostr, protocol
from forum.models import Event, LedgerEntry, Rejection
from lightning.types import Payment
from tests.forum.hold.conftest import Hold, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CANCELED = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"


def race(
    hold: Hold, payments: list[tuple[dict[int, bytes], int]], *, sender: str = "alice"
) -> list[Payment]:
    """Send every (records, amount) from `sender`'s simnet node at the same moment."""
    from forum.services import node

    barrier = threading.Barrier(len(payments))
    results: list[Payment | BaseException | None] = [None] * len(payments)

    def send(i: int) -> None:
        records, amount = payments[i]
        client = node.client(sender)
        barrier.wait(timeout=10)
        try:
            results[i] = client.keysend(hold.pubkey, amount, records)
        except BaseException as exc:  # reported below, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(payments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=40)
    for result in results:
        if not isinstance(result, Payment):
            raise AssertionError(f"a racing keysend did not complete: {result!r}")
    return results  # type: ignore[return-value]


def spent_msat(hold: Hold, before: dict[int, tuple[int, int]], sender: str = "alice") -> int:
    return sum(before[c][0] - now for c, (now, _) in hold.balances_msat(sender).items())


def charged_msat(event_id: str) -> int:
    settled = LedgerEntry.objects.filter(event_id=event_id, status=LedgerEntry.Status.SETTLED)
    return settled.aggregate(total=Sum("amount_msat"))["total"] or 0


def published(event_id: str) -> bool:
    return Event.objects.filter(event_id=event_id, state="published").exists()


def assert_charged_once(hold: Hold, event: nostr.Event, before, payments, price_msat: int) -> None:
    wait_for(lambda: published(event.id), what="the event")
    # Every settled payment is in the ledger (reconciled), so the totals are final.
    wait_for(
        lambda: (
            charged_msat(event.id) >= price_msat
            and not LedgerEntry.objects.filter(reconcile_state="pending").exists()
        ),
        what="the ledger",
    )
    assert spent_msat(hold, before) == price_msat  # the payer's node: exactly one price
    assert charged_msat(event.id) == price_msat
    assert Event.objects.filter(event_id=event.id).count() == 1
    refused = [p for p in payments if not p.succeeded]
    assert all(p.failure_reason == CANCELED for p in refused)
    for payment in refused:
        rejection = Rejection.objects.get(ledger_entry__payment_hash=payment.payment_hash)
        assert rejection.reason == "duplicate"
        assert "No charge" in rejection.message
    # Nothing was kept as a charged rejection.
    assert not Rejection.objects.filter(ledger_entry__status=LedgerEntry.Status.SETTLED).exists()


def thread(key: str, **kw) -> nostr.Event:
    return nostr.thread_event(key, board="general", title="twice", content=kw.get("content", "c"))


def test_two_copies_at_once_are_charged_once(listening: Hold, board, alice_key):
    event = thread(alice_key)
    before = listening.balances_msat("alice")
    payments = race(listening, [(protocol.encode_event(event), 10_000)] * 2)
    assert sorted(p.succeeded for p in payments) == [False, True]
    assert_charged_once(listening, event, before, payments, 10_000)


def test_five_copies_at_once_are_charged_once(listening: Hold, board, alice_key):
    event = thread(alice_key)
    before = listening.balances_msat("alice")
    payments = race(listening, [(protocol.encode_event(event), 10_000)] * 5)
    assert sum(p.succeeded for p in payments) == 1
    assert_charged_once(listening, event, before, payments, 10_000)


def test_a_copy_right_after_the_first_settled_is_refused(listening: Hold, board, alice_key):
    """The second copy leaves as soon as the first one returns: recorded or not, it is taken."""
    event = thread(alice_key)
    before = listening.balances_msat("alice")
    first = listening.result(listening.post(event, 10_000))
    second = listening.result(listening.post(event, 10_000))
    assert first.succeeded and second.failure_reason == CANCELED
    assert_charged_once(listening, event, before, [first, second], 10_000)


def parts_of(event: nostr.Event, count: int = 3) -> list[dict[int, bytes]]:
    data = protocol.pack_event(event)
    size = -(-len(data) // count)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return [protocol.encode_part(event.id, i, count, chunk) for i, chunk in enumerate(chunks)]


def test_a_multipart_set_sent_twice_at_once_is_charged_once(listening: Hold, board, alice_key):
    event = thread(alice_key, content="word " * 120)
    parts = parts_of(event)
    amounts = [4_000, 3_000, 3_000]
    before = listening.balances_msat("alice")
    payments = race(listening, list(zip(parts, amounts, strict=True)) * 2)
    assert sum(p.succeeded for p in payments) == 3
    assert_charged_once(listening, event, before, payments, 10_000)


def test_a_multipart_set_sent_again_right_after_it_settled_is_refused(
    listening: Hold, board, alice_key
):
    event = thread(alice_key, content="word " * 120)
    parts = parts_of(event)
    amounts = [4_000, 3_000, 3_000]
    before = listening.balances_msat("alice")
    first = race(listening, list(zip(parts, amounts, strict=True)))
    assert all(p.succeeded for p in first)
    second = race(listening, list(zip(parts, amounts, strict=True)))
    assert not any(p.succeeded for p in second)
    assert_charged_once(listening, event, before, [*first, *second], 10_000)


def test_a_whole_copy_and_a_multipart_copy_at_once_are_charged_once(
    listening: Hold, board, alice_key
):
    event = thread(alice_key, content="word " * 120)
    parts = parts_of(event)
    before = listening.balances_msat("alice")
    payments = race(
        listening,
        [(protocol.encode_event(event), 10_000), *zip(parts, [4_000, 3_000, 3_000], strict=True)],
    )
    assert_charged_once(listening, event, before, payments, 10_000)
