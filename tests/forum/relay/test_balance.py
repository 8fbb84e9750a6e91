"""A balance per pubkey: credits by keysend, EVENTs charged to it in settle order, refusals
free. The ledger rows are made as in production (a real keysend over simnet, recorded by the
listener's ledger call; a spend row under the cursor lock) and judged by the reconciler."""

from __future__ import annotations

import pytest

from forum import nostr, protocol
from forum.ingest.balance import balance_of, spend_record
from forum.ingest.outcome import Recorded
from forum.models import Ban, Event, LedgerEntry, Rejection, Thread
from forum.relay import writes
from forum.selectors.moderation import revenue
from forum.tasks import recorded_handle
from tests.conftest import record_invoice
from tests.forum.core.conftest import fresh_forum_node as fresh_forum_node  # noqa: F401
from tests.forum.relay.factories import ALICE, make_board

pytestmark = pytest.mark.django_db(transaction=True)

PUB = nostr.public_key(ALICE)


def fund(forum_node, pubkey: str, amount_msat: int) -> LedgerEntry:
    invoice = forum_node.keysend(protocol.encode_credit(pubkey), amount_msat)
    row, _ = record_invoice(invoice, forum_node.pubkey)
    return row


def charge(event: nostr.Event, node_pubkey: str) -> LedgerEntry:
    """What the relay does once the first look passed: a spend row, then a reconcile batch."""
    row = spend_record(event, node_pubkey=node_pubkey)
    recorded_handle(Recorded(payment_hashes=(row.payment_hash,)))
    row.refresh_from_db()
    return row


def test_a_credit_is_a_ledger_row_of_its_own_purpose(forum_node):
    row = fund(forum_node, PUB, 50_000)
    assert (row.purpose, row.pubkey, row.amount_msat) == ("credit", PUB, 50_000)
    row.refresh_from_db()
    assert row.reconcile_state == "done"
    assert not Rejection.objects.filter(ledger_entry=row).exists()
    assert balance_of(PUB).balance_msat == 50_000


def test_an_event_charged_to_the_balance_is_published_at_its_price(forum_node):
    make_board(thread_price_msat=10_000)
    fund(forum_node, PUB, 50_000)
    event = nostr.thread_event(ALICE, board="general", title="Over the relay", content="hi")
    row = charge(event, forum_node.pubkey)
    assert row.purpose == "spend" and row.amount_msat == 10_000
    assert Thread.objects.get(event__event_id=event.id).title == "Over the relay"
    assert balance_of(PUB).balance_msat == 40_000
    assert writes.spend_outcome(row.payment_hash) == writes.Answer(True, "")


def test_escalation_counts_earlier_charges_in_settle_order(forum_node):
    make_board(thread_price_msat=10_000, escalation_factor=2)
    fund(forum_node, PUB, 30_000)  # exactly both: an earlier charge is counted once
    first = nostr.thread_event(ALICE, board="general", title="one", content="a")
    second = nostr.thread_event(ALICE, board="general", title="two", content="b")
    # Both charged before either is judged: the same cursor index, ordered by row.
    rows = [spend_record(e, node_pubkey=forum_node.pubkey) for e in (first, second)]
    assert rows[0].settle_index == rows[1].settle_index
    recorded_handle(Recorded(payment_hashes=(rows[0].payment_hash,)))
    for row in rows:
        row.refresh_from_db()
    assert [r.amount_msat for r in rows] == [10_000, 20_000]
    assert balance_of(PUB).balance_msat == 0


def test_too_little_balance_charges_nothing_and_says_how_to_top_up(forum_node):
    make_board(thread_price_msat=10_000)
    fund(forum_node, PUB, 4_000)
    event = nostr.thread_event(ALICE, board="general", title="t", content="c")
    row = charge(event, forum_node.pubkey)
    assert row.amount_msat == 0
    rejection = Rejection.objects.get(ledger_entry=row)
    assert rejection.reason == "insufficient_balance"
    assert rejection.message.startswith(
        "blocked: not enough balance: balance 4000 msat, this costs 10000 msat; top up by"
    )
    assert forum_node.pubkey in rejection.message
    assert balance_of(PUB).balance_msat == 4_000
    assert not Event.objects.filter(event_id=event.id, state="published").exists()
    answer = writes.spend_outcome(row.payment_hash)
    assert answer is not None and not answer.accepted


def test_a_ban_at_the_charge_refuses_for_nothing(forum_node):
    make_board(thread_price_msat=10_000)
    fund(forum_node, PUB, 50_000)
    Ban.objects.create(pubkey=PUB, reason="spam")
    row = charge(
        nostr.thread_event(ALICE, board="general", title="t", content="c"), forum_node.pubkey
    )
    assert row.amount_msat == 0
    assert Rejection.objects.get(ledger_entry=row).message.startswith("blocked: ")
    assert balance_of(PUB).balance_msat == 50_000


def test_revenue_counts_a_credit_when_it_is_spent(forum_node):
    from django.utils import timezone

    make_board(thread_price_msat=10_000)
    fund(forum_node, PUB, 50_000)
    charge(nostr.thread_event(ALICE, board="general", title="t", content="c"), forum_node.pubkey)
    today = timezone.now().date()
    report = revenue(start=today, end=today)
    assert report.total.credited_msat >= 50_000
    by_board = {row.key: row for row in report.boards}
    assert by_board["general"].received_msat == 10_000


def test_rebuild_from_node_keeps_spends_in_their_place(fresh_forum_node):
    """Spends are ledger rows without node invoices: a rebuild keeps them and judges them
    again at their place, so balances and relay posts come back as they were."""
    from django.core.management import call_command

    make_board(thread_price_msat=10_000, escalation_factor=2)
    fund(fresh_forum_node, PUB, 30_000)
    first = charge(
        nostr.thread_event(ALICE, board="general", title="one", content="a"),
        fresh_forum_node.pubkey,
    )
    fund(fresh_forum_node, PUB, 5_000)  # between the two charges
    second = charge(
        nostr.thread_event(ALICE, board="general", title="two", content="b"),
        fresh_forum_node.pubkey,
    )
    before = sorted(
        LedgerEntry.objects.filter(pubkey=PUB).values_list("purpose", "amount_msat", "settle_index")
    )
    assert [first.amount_msat, second.amount_msat] == [10_000, 20_000]
    call_command("rebuild_from_node", "--yes", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = sorted(
        LedgerEntry.objects.filter(pubkey=PUB).values_list("purpose", "amount_msat", "settle_index")
    )
    assert after == before, list(Rejection.objects.values_list("message", flat=True))
    assert balance_of(PUB).balance_msat == 5_000
    assert set(Thread.objects.values_list("title", flat=True)) == {"one", "two"}


def test_the_revenue_page_shows_credits_apart(forum_node, client, django_user_model):
    make_board(thread_price_msat=10_000)
    fund(forum_node, PUB, 50_000)
    charge(nostr.thread_event(ALICE, board="general", title="t", content="c"), forum_node.pubkey)
    moderator = django_user_model.objects.create_superuser("mod", "mod@example.com", "pw")
    client.force_login(moderator)
    html = client.get("/mod/revenue/").content.decode()
    # The 50 sats came in for the balance; 10 of them are revenue, spent on a post.
    assert "50 credited to relay balances" in html
    assert "<strong>10 sats</strong> net" in html


def test_count_includes_zap_receipts_like_req(db):
    """COUNT answers for every filter REQ serves: the forum's events and the relay's zap
    receipts (kind 9735), each counted once however many filters match it."""
    from forum.models import ZapReceipt
    from forum.relay.filters import parse_filter
    from forum.relay.selectors import count_for_filters, events_for_filters
    from forum.relay_key import relay_pubkey
    from tests.forum.relay.factories import store, thread

    board = make_board()
    root = thread(created_at=1_000)
    store(root, board)
    ZapReceipt.objects.create(
        payment_hash="aa" * 32,
        receipt_id="bb" * 32,
        pubkey=relay_pubkey(),
        recipient=root.pubkey,
        zapped_event_id=root.id,
        sender=PUB,
        amount_msat=21_000,
        created_at=1_001,
        raw_json="{}",
    )
    filters = [parse_filter(f) for f in ({"kinds": [9735]}, {"#p": [root.pubkey]}, {"kinds": [11]})]
    served = events_for_filters([(flt, 100) for flt in filters])
    assert count_for_filters(filters) == len(served) == 2
    assert count_for_filters([parse_filter({"kinds": [9735], "#e": ["cc" * 32]})]) == 0


def test_an_event_waiting_underpaid_is_completed_from_the_balance(forum_node):
    """A keysend paid 4 of 10 sats (kept, waiting for a top-up); the same event sent to the
    relay takes only the missing 6 sats from the balance and is published."""
    make_board(thread_price_msat=10_000)
    event = nostr.thread_event(ALICE, board="general", title="Short", content="paid in part")
    invoice = forum_node.keysend(protocol.encode_event(event), 4_000)
    record_invoice(invoice, forum_node.pubkey)
    assert Event.objects.get(event_id=event.id).waiting_for == "underpaid"
    fund(forum_node, PUB, 50_000)
    row = charge(event, forum_node.pubkey)
    assert row.amount_msat == 6_000
    assert Thread.objects.get(event__event_id=event.id).title == "Short"
    assert balance_of(PUB).balance_msat == 44_000
    assert writes.spend_outcome(row.payment_hash) == writes.Answer(True, "")
