"""Revenue: received minus refunds, tip forwards and their fees, by UTC day and by board."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from forum.models import Event, LedgerEntry
from forum.selectors import moderation as selectors
from tests.forum.moderation.conftest import hex32, make_author, make_board, make_event, make_payment

pytestmark = pytest.mark.django_db

DAY1 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 11, 2, 23, 59, tzinfo=dt.UTC)


def out(amount: int, fee: int, *, purpose: str, event_id: str, at: dt.datetime) -> LedgerEntry:
    return LedgerEntry.objects.create(
        payment_hash=hex32(),
        node_pubkey="02" + "11" * 32,
        direction=LedgerEntry.Direction.OUT,
        purpose=purpose,
        amount_msat=amount,
        fee_msat=fee,
        settled_at=at,
        event_id=event_id,
    )


@pytest.fixture
def ledger():
    general, market = make_board("general"), make_board("market")
    author = make_author()
    e_general = make_event(author=author, board=general, kind=11, state=Event.State.PUBLISHED)
    e_market = make_event(author=author, board=market, kind=11, state=Event.State.REJECTED)
    make_payment(pubkey=author.pubkey, event_id=e_general.event_id, amount_msat=10_000, at=DAY1)
    make_payment(pubkey=author.pubkey, event_id=e_market.event_id, amount_msat=4_000, at=DAY1)
    make_payment(pubkey=author.pubkey, event_id=e_general.event_id, amount_msat=2_000, at=DAY2)
    # A donation with no forum records: revenue, but of no board.
    make_payment(pubkey="", event_id="", amount_msat=500, at=DAY2, purpose="other")
    out(4_000, 3, purpose="refund", event_id=e_market.event_id, at=DAY2)
    out(1_000, 1, purpose="tip_forward", event_id=e_general.event_id, at=DAY2)
    # Outside the range.
    make_payment(
        pubkey=author.pubkey, event_id="", amount_msat=99_000, at=DAY1 - dt.timedelta(days=3)
    )


def test_revenue_by_day_and_board(ledger):
    result = selectors.revenue(start=DAY1.date(), end=DAY2.date() + dt.timedelta(days=1))
    days = {row.key: row for row in result.days}
    assert [row.key for row in result.days] == [
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 2),
        dt.date(2026, 11, 3),
    ]
    assert days[dt.date(2026, 11, 1)].net_msat == 14_000
    day2 = days[dt.date(2026, 11, 2)]
    assert (day2.received_msat, day2.refunded_msat, day2.forwarded_msat, day2.fees_msat) == (
        2_500,
        4_000,
        1_000,
        4,
    )
    assert day2.net_msat == 2_500 - 4_000 - 1_000 - 4
    assert days[dt.date(2026, 11, 3)].net_msat == 0

    boards = {row.key: row.net_msat for row in result.boards}
    assert boards == {"general": 10_000 + 2_000 - 1_001, "market": 4_000 - 4_003, "": 500}
    assert result.total.net_msat == sum(boards.values())
    assert result.total.net_msat == sum(row.net_msat for row in result.days)


def test_revenue_of_one_board(ledger):
    result = selectors.revenue(start=DAY1.date(), end=DAY2.date(), board="market")
    assert result.total.received_msat == 4_000 and result.total.refunded_msat == 4_000
    assert [row.key for row in result.boards] == ["market"]


def test_revenue_today(db):
    now = timezone.now()
    make_payment(pubkey="", event_id="", amount_msat=1_234, at=now)
    assert selectors.revenue_today(now=now).net_msat == 1_234


def test_chart_draws_losses_below_the_axis_and_escapes_labels():
    from forum.views.moderation_chart import revenue_svg

    gain = selectors.RevenueRow(key=dt.date(2026, 11, 1), received_msat=5_000)
    loss = selectors.RevenueRow(key=dt.date(2026, 11, 2), refunded_msat=2_000)
    svg = str(revenue_svg([gain, loss], title="<script>"))
    assert svg.count('class="bar"') == 1 and svg.count('class="bar loss"') == 1
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert ">-2<" in svg  # the lowest tick, in sats
