"""Paying by invoice with hold mode off (`HOLD_MODE=0`): the invoice settles at once and the
forum judges the post afterwards, as it does a keysend. An underpaid post is kept, and the
composer offers the missing sats as a new invoice for the same signed event."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.browser.conftest import ForumServer, page_maker, running_forum
from tests.browser.test_invoice import _invoice
from tests.browser.test_posting import _compose, _welcome_thread_url

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def settle_server(tmp_path_factory) -> Iterator[ForumServer]:
    """The embedded default as `make run` starts it, with hold mode off."""
    with running_forum(tmp_path_factory.mktemp("forum-settle"), HOLD_MODE="0") as server:
        yield server


@pytest.fixture
def settle_page(browser, settle_server):
    """Pages of the hold-mode-off forum, each in its own browser context."""
    yield from page_maker(browser)


def test_underpaid_invoice_post_is_kept_and_topped_up_by_a_new_invoice(settle_page, settle_server):
    stale = settle_page()
    url = _welcome_thread_url(stale, settle_server)
    fresh = settle_page(stale.context)  # the same browser key
    fresh.goto(url)
    text = f"Invoice first, price later {uuid.uuid4().hex[:6]}"
    price = _compose(stale, text)
    _invoice(stale)
    _compose(fresh, f"Posted first {uuid.uuid4().hex[:6]}")
    fresh.click("#compose .compose-pay")
    fresh.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)

    # Paid at the old price: settled (hold mode off), then found short and kept waiting.
    stale.click("#compose .invoice-pay")
    top_up = stale.locator("#compose .topup-invoice-button")
    top_up.wait_for(timeout=60_000)
    status = stale.inner_text("#compose .status-text")
    assert status.startswith("Rejected:") and "costs" in status, status
    top_up.click()
    shown = _invoice_shown(stale)
    assert shown["amount"] == price  # it costs twice the quote now; the quote was paid
    stale.click("#compose .invoice-pay")
    stale.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)
    stale.locator("#post-list .post", has_text=text).wait_for(timeout=15_000)
    assert stale.js_errors == [] and fresh.js_errors == []


def _invoice_shown(page) -> dict:
    page.wait_for_selector("#compose .invoice-box:not([hidden])")
    return {"amount": page.inner_text("#compose .invoice-amount")}
