"""Posting paid by a BOLT11 invoice from the page: the QR code, the lightning: link, the copy
button, and the demo wallet paying the invoice (WebLN sendPayment) in hold mode."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.browser.test_posting import _compose, _welcome_thread_url

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _invoice(page) -> dict:
    """Press "Pay by invoice" and read what the page shows."""
    page.click("#compose .compose-invoice")
    page.wait_for_selector("#compose .invoice-box:not([hidden])")
    # The QR code is a real image the browser decoded (served by /api/invoice/<hash>/qr.svg).
    page.wait_for_function(
        "() => { const img = document.querySelector('#compose .invoice-qr');"
        " return img && img.complete && img.naturalWidth > 100; }"
    )
    return {
        "text": page.inner_text("#compose .invoice-text").strip(),
        "href": page.get_attribute("#compose .invoice-open", "href"),
        "amount": page.inner_text("#compose .invoice-amount"),
    }


def _balance(forum_server) -> int:
    return json.loads(forum_server.get("/demo/wallet"))["balance_sat"]


def test_thread_paid_by_invoice_with_the_demo_wallet(new_page, forum_server, artifacts):
    author = new_page()
    viewer = new_page()
    author.goto(forum_server.url + "/b/meta/")
    viewer.goto(forum_server.url + "/b/meta/")
    viewer.wait_for_function("() => document.body.dataset.live === 'on'")
    title = f"Paid by invoice {uuid.uuid4().hex[:6]}"
    price = _compose(author, "Any wallet can pay for this one.", title=title)
    shown = _invoice(author)
    assert re.fullmatch(r"lnbcrt\w+", shown["text"]), shown
    assert shown["href"] == "lightning:" + shown["text"]
    assert shown["amount"] == price
    author.screenshot(path=str(artifacts / "invoice-shown.png"), full_page=True)
    # The copy button copies the invoice itself.
    author.context.grant_permissions(["clipboard-read", "clipboard-write"])
    author.click("#compose .invoice-box .copy-button")
    assert author.evaluate("() => navigator.clipboard.readText()") == shown["text"]

    pay = author.locator("#compose .invoice-pay")
    assert "demo wallet" in pay.inner_text()
    pay.click()
    author.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)
    assert "Published" in author.inner_text("#compose .status-text")
    viewer.locator("#thread-list .thread-row", has_text=title).wait_for(timeout=15_000)
    assert author.js_errors == [] and viewer.js_errors == []


def test_invoice_for_an_underpaid_post_is_cancelled_and_costs_nothing(
    new_page, forum_server, artifacts
):
    """The invoice was for the price when it was issued; the same person's other tab posts
    first, so when the invoice is paid the post costs twice as much: the forum cancels the
    held payment and the demo wallet's balance does not move."""
    stale = new_page()
    url = _welcome_thread_url(stale, forum_server)
    fresh = new_page(stale.context)  # the same browser key
    fresh.goto(url)
    _compose(stale, f"Invoice asked before my other post {uuid.uuid4().hex[:6]}")
    _invoice(stale)
    _compose(fresh, f"Posted first {uuid.uuid4().hex[:6]}")
    fresh.click("#compose .compose-pay")
    fresh.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)

    before = _balance(forum_server)
    stale.click("#compose .invoice-pay")
    stale.wait_for_selector("#compose .status-box[data-state=rejected]", timeout=60_000)
    status = stale.inner_text("#compose .status-text")
    assert status.startswith("Rejected, not charged:") and "No charge" in status, status
    assert stale.locator("#compose .invoice-box").is_hidden()
    assert _balance(forum_server) == before
    stale.screenshot(path=str(artifacts / "invoice-cancelled.png"), full_page=True)
    assert stale.js_errors == [] and fresh.js_errors == []


def test_invoice_refused_for_an_invalid_post_says_why(new_page, forum_server):
    """Too long for the board: the forum refuses before any invoice exists."""
    page = new_page()
    page.goto(forum_server.url + "/b/meta/")
    page.fill("#compose-title-input", "Too long")
    page.fill("#compose textarea", "ok")
    page.click("#compose .compose-quote")
    page.wait_for_selector("#compose .quote-box:not([hidden])")
    # Past the page's own counter: the forum must still refuse it (the same rules).
    limit = int(page.get_attribute("#compose textarea", "data-max-length"))
    page.evaluate(
        "(n) => { const t = document.querySelector('#compose textarea');"
        " t.value = 'x'.repeat(n); }",
        limit + 1,
    )
    page.click("#compose .compose-invoice")
    page.wait_for_selector("#compose .status-text.bad")
    text = page.inner_text("#compose .status-text")
    assert text.startswith("No invoice:") and "limit" in text and "Nothing was paid" in text, text
    assert page.locator("#compose .invoice-box").is_hidden()


# A WebLN wallet that pays invoices and cannot keysend (as many do), installed before the
# page's scripts; it pays through the demo node so the test needs no real wallet. The demo
# wallet is kept out, so the page must find this one.
INVOICE_ONLY_WALLET = """
Object.defineProperty(window, "forumDemoWallet", { get() { return undefined; }, set(v) {} });
window.webln = {
  enable: async () => {},
  sendPayment: async (paymentRequest) => {
    window.__paidWith = paymentRequest;
    const r = await window.ForumHttp.postJSON("/demo/pay-invoice", { paymentRequest });
    return { preimage: r.preimage };
  },
};
"""


def test_a_webln_wallet_that_only_pays_invoices_posts_by_sendpayment(new_page, forum_server):
    page = new_page()
    page.add_init_script(INVOICE_ONLY_WALLET)
    page.goto(forum_server.url + "/b/meta/")
    title = f"WebLN sendPayment {uuid.uuid4().hex[:6]}"
    _compose(page, "No keysend in this wallet.", title=title)
    assert page.locator("#compose .compose-pay").is_hidden()
    assert "pays invoices, not keysends" in page.inner_text("#compose .wallet-line")
    shown = _invoice(page)
    pay = page.locator("#compose .invoice-pay")
    assert pay.inner_text() == "Pay 10 sats with my wallet"
    pay.click()
    page.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)
    assert page.evaluate("window.__paidWith") == shown["text"]
    assert page.js_errors == []
