"""The header's bell: the inbox of the key this browser keeps, live without a reload."""

from __future__ import annotations

import uuid

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _post(page, text: str, *, title: str | None = None) -> None:
    if title is not None:
        page.fill("#compose-title-input", title)
    page.fill("#compose textarea", text)
    page.click("#compose .compose-quote")
    page.wait_for_selector("#compose .quote-box:not([hidden])")
    page.click("#compose .compose-pay")
    page.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)


def test_a_reply_rings_the_authors_bell_and_the_inbox_page_reads_it(new_page, forum_server):
    author = new_page()
    author.goto(forum_server.url + "/b/general/")
    assert author.locator("#inbox-bell").is_hidden()  # no key in this browser yet
    title = f"Ring my bell {uuid.uuid4().hex[:6]}"
    _post(author, "Anyone there?", title=title)
    author.get_by_role("link", name="Open your thread").click()
    author.wait_for_selector("h1.thread-heading")
    thread_url = author.url
    # The key exists now: the bell shows, with nothing unread.
    author.wait_for_function(
        "() => !document.getElementById('inbox-bell').hidden"
        " && document.getElementById('inbox-bell').dataset.unread === '0'"
    )
    assert author.locator("#inbox-count").is_hidden()

    replier = new_page()
    replier.goto(thread_url)
    _post(replier, "I am here.")

    # Live over the socket: no reload on the author's page.
    author.evaluate("window.__sameDocument = true")
    author.locator("#inbox-count", has_text="1").wait_for(timeout=20_000)
    assert author.evaluate("window.__sameDocument") is True

    author.click("#inbox-bell")
    author.wait_for_selector("#inbox-list")
    item = author.locator("#inbox-list .inbox-item").first
    assert "replied" in item.inner_text() and title in item.inner_text()
    assert "is-unread" in (item.get_attribute("class") or "")
    # Opening the inbox read it: the bell has nothing unread on the next page.
    author.goto(thread_url)
    author.wait_for_function("() => document.getElementById('inbox-bell').dataset.unread === '0'")
    assert author.locator("#inbox-count").is_hidden()
    assert author.js_errors == []
