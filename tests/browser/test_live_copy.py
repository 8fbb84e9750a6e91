"""What an open thread page says as it changes: the reply count in words, the price breakdown,
and a moderator's lock, all without a reload."""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _quote(page, text: str, *, title: str | None = None) -> None:
    if title is not None:
        page.fill("#compose-title-input", title)
    page.fill("#compose textarea", text)
    page.click("#compose .compose-quote")
    page.wait_for_selector("#compose .quote-box:not([hidden])")


def _pay(page) -> None:
    page.click("#compose .compose-pay")
    page.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)


def _main_text(page) -> str:
    return re.sub(r"\s+", " ", page.inner_text("main"))


def test_an_open_thread_counts_in_words_and_shows_a_lock_live(new_page, forum_server):
    from forum.services.moderation import demo

    author = new_page()
    author.goto(forum_server.url + "/b/general/")
    title = f"Counting replies {uuid.uuid4().hex[:6]}"
    _quote(author, "Who will answer first?", title=title)
    _pay(author)
    author.get_by_role("link", name="Open your thread").click()
    author.wait_for_selector("h1.thread-heading")
    thread_url = author.url

    reader = new_page()
    reader.goto(thread_url)
    reader.wait_for_function("() => document.body.dataset.live === 'on'")
    reader.evaluate("window.__sameDocument = true")  # gone if the page reloads
    text = _main_text(reader)
    assert "No replies yet." in text and "0 replies" not in text
    assert reader.locator("#replies-head").is_hidden()

    # The author's second post on the board within the window: the price doubles once.
    author.wait_for_function("() => document.body.dataset.live === 'on'")
    _quote(author, "Answering myself, then.")
    assert "^" not in author.inner_text("#compose .quote-detail")
    _pay(author)
    reader.locator("#replies-head", has_text="1 reply").wait_for(timeout=15_000)
    text = _main_text(reader)
    assert "1 reply" in text and "1 replies" not in text and "No replies yet" not in text

    # The third: "× 2²" with a real superscript, and the last post's "Published!" is gone.
    _quote(author, "And once more.")
    detail = author.locator("#compose .quote-detail")
    assert "^" not in detail.inner_text()
    assert detail.locator("sup").inner_text() == "2"
    assert "posted 2 times" in detail.inner_text()
    assert author.locator("#compose .status-box").is_hidden()

    # A moderator locks the thread: the open page shows the tag and stops offering the form.
    moderator = new_page()
    password = (forum_server.data_dir / demo.PASSWORD_FILE).read_text().strip()
    moderator.goto(forum_server.url + "/mod/login/")
    moderator.fill("input[name=username]", demo.DEMO_USERNAME)
    moderator.fill("input[name=password]", password)
    moderator.click("form button[type=submit], form input[type=submit]")
    moderator.wait_for_url(re.compile(r"/mod/$"))
    event_id = re.search(r"/t/([0-9a-f]{64})/", thread_url).group(1)
    with sqlite3.connect(forum_server.data_dir / "forum.sqlite3") as db:
        (pk,) = db.execute(
            "SELECT t.id FROM forum_thread t JOIN forum_event e ON e.id = t.event_id"
            " WHERE e.event_id = ?",
            (event_id,),
        ).fetchone()
    moderator.goto(f"{forum_server.url}/mod/threads/{pk}/")
    moderator.get_by_role("button", name="Lock", exact=True).click()

    reader.locator("h1.thread-heading .tag-lock", has_text="locked").wait_for(timeout=15_000)
    assert reader.locator("#compose").count() == 0
    assert "This thread is locked" in reader.inner_text("#locked-notice")
    assert reader.evaluate("window.__sameDocument") is True
    assert author.js_errors == [] and reader.js_errors == [] and moderator.js_errors == []
