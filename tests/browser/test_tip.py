"""Real Chromium tips a post from the page with the demo wallet: by keysend, by invoice
(WebLN sendPayment), and by an invoice shown as a QR code that a phone wallet would scan.
The thread's sats go up live each time."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _sats(page) -> int:
    return int(re.sub(r"\D", "", page.inner_text("#thread-sats")) or 0)


def _wait_sats(page, at_least: int) -> None:
    page.wait_for_function(
        "(n) => Number(document.getElementById('thread-sats').textContent.replace(/\\D/g, ''))"
        " >= n",
        arg=at_least,
        timeout=30_000,
    )


def _pay_as_a_phone_wallet(base: str, payment_request: str) -> None:
    """Any wallet that scanned the code: here the demo wallet's node, asked over HTTP."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    token = json.loads(opener.open(base + "/csrf", timeout=10).read())["token"]
    request = urllib.request.Request(
        base + "/demo/pay-invoice",
        data=json.dumps({"paymentRequest": payment_request}).encode(),
        headers={"Content-Type": "application/json", "X-CSRFToken": token},
        method="POST",
    )
    opener.open(request, timeout=60).read()


def _tip(page, sats: int, method: str) -> None:
    page.click("#op .tip-button")
    page.wait_for_selector("#tip-dialog[open]")
    page.fill("#tip-dialog .tip-input", str(sats))
    page.click(f"#tip-dialog .tip-pay[data-method={method}]")


def test_tip_a_thread_from_the_page_three_ways(new_page, forum_server, artifacts):
    page = new_page()
    page.goto(forum_server.url + "/b/general/")
    page.get_by_role("link", name=re.compile("^Welcome")).click()
    page.wait_for_selector("#post-list")
    page.wait_for_function("() => document.body.dataset.live === 'on'")
    # Every post has its Tip button (the opening post and each reply).
    assert page.locator("article.post .tip-button").count() == page.locator("article.post").count()
    before = _sats(page)

    # 1. Keysend from the demo wallet (the `tip` record names the post).
    _tip(page, 21, "keysend")
    page.wait_for_selector("#tip-dialog .tip-status:has-text('Paid 21 sats')")
    _wait_sats(page, before + 21)

    # 2. An invoice paid by the wallet (WebLN sendPayment).
    page.click("#tip-dialog .tip-close")
    _tip(page, 100, "invoice")
    page.wait_for_selector("#tip-dialog .tip-status:has-text('Paid 100 sats')")
    _wait_sats(page, before + 121)

    # 3. An invoice shown as a QR code; a phone wallet pays it (here: the demo node, over HTTP).
    page.click("#tip-dialog .tip-close")
    _tip(page, 1000, "qr")
    page.wait_for_selector("#tip-dialog .tip-invoice:not([hidden])")
    page.wait_for_function("() => document.querySelector('#tip-dialog .tip-qr').naturalWidth > 0")
    link = page.get_attribute("#tip-dialog .tip-link", "href")
    assert link.startswith("lightning:lnbcrt10u")  # 1000 sats on regtest
    payment_request = page.inner_text("#tip-dialog .tip-pr")
    page.screenshot(path=str(artifacts / "tip-qr.png"), full_page=False)
    _pay_as_a_phone_wallet(forum_server.url, payment_request)
    page.wait_for_selector("#tip-dialog .tip-status:has-text('Paid 1000 sats')", timeout=30_000)
    _wait_sats(page, before + 1121)
    page.screenshot(path=str(artifacts / "tip-paid.png"), full_page=False)
    assert page.js_errors == []
