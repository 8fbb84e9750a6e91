""" "verify" checks a post's signed event in the browser and says what it checked; error
pages look like the forum."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _welcome(page, forum_server) -> None:
    page.goto(forum_server.url + "/b/general/")
    page.get_by_role("link", name=re.compile("^Welcome")).click()
    page.wait_for_selector("#post-list")


def test_verify_checks_id_and_signature_in_the_browser(new_page, forum_server):
    from forum import nostr

    page = new_page()
    _welcome(page, forum_server)
    post = page.locator("#op")
    post.locator(".verify").click()
    panel = post.locator(".verify-panel")
    panel.locator(".verify-result.good, .verify-result.bad").wait_for()
    result = panel.locator(".verify-result").inner_text()
    assert "Checked in your browser" in result
    assert "id matches" in result and "signature is valid" in result
    assert panel.locator(".verify-result.good").count() == 1
    shown = panel.locator("pre.event-json").inner_text()
    event = nostr.parse_event(shown, verify=True)  # the readable copy is the same event
    assert event.id == post.get_attribute("data-event-id")
    assert "\n" in shown  # one field per line, not one long line
    raw = panel.locator("a.raw-json").get_attribute("href")
    assert raw.endswith(".json")
    post.locator(".verify").click()  # again: folds away
    panel.wait_for(state="detached")
    assert page.js_errors == []


def _tampered(forum_server, route, field: str, value) -> None:
    event = json.loads(forum_server.get(urlsplit(route.request.url).path))
    event[field] = value
    route.fulfill(content_type="application/json", body=json.dumps(event))


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("content", "Edited after signing", "id does not match"),
        ("sig", "00" * 64, "signature is not valid"),
    ],
)
def test_verify_says_so_when_an_event_was_altered(new_page, forum_server, field, value, says):
    page = new_page()
    _welcome(page, forum_server)
    page.route("**/e/*.json", lambda route: _tampered(forum_server, route, field, value))
    post = page.locator("#op")
    post.locator(".verify").click()
    result = post.locator(".verify-panel .verify-result.bad")
    result.wait_for()
    assert says in result.inner_text()
    assert post.locator(".verify-result.bad").count() == 1


def test_verify_reads_on_a_phone(browser, forum_server):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        _welcome(page, forum_server)
        page.locator("#op .verify").click()
        page.locator("#op .verify-panel pre.event-json").wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"horizontal scroll on a phone: {width}px"
        pre_fits = page.evaluate(
            "() => { const pre = document.querySelector('#op pre.event-json');"
            " return pre.scrollWidth <= pre.clientWidth; }"
        )
        assert pre_fits, "the event's lines run off the side"
    finally:
        context.close()


def test_a_missing_page_looks_like_the_forum_and_leads_back(new_page, forum_server):
    page = new_page()
    response = page.goto(forum_server.url + "/b/no-such-board/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert page.locator(".site-header").is_visible()  # forum.css applied, the site's header
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
    page.get_by_role("link", name="Back to the boards").click()
    page.wait_for_selector(".board-card")
    assert page.js_errors == []
