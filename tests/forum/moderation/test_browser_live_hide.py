"""In a real Chromium: a moderator hides a post in the console and a viewer's open thread page
loses it live, without reloading. Both talk to a real daphne (HTTP + websockets)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import need
from tests.forum.moderation.conftest import make_author, make_board, make_reply, make_thread
from tests.forum.relay.conftest import live_relay  # noqa: F401 - the shared in-process daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", "test-artifacts")) / "moderation"


@pytest.fixture
def browser(monkeypatch):
    need(shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is not installed")
    # Playwright's sync API runs an event loop in this thread while the test uses the ORM.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def test_hidden_post_disappears_from_an_open_thread(live_relay, moderator, browser):  # noqa: F811
    board = make_board("live")
    thread = make_thread(author=make_author(), board=board, title="Live thread")
    spammer = make_author()
    keep = make_reply(author=spammer, thread=thread, content="an honest reply")
    spam = make_reply(author=spammer, thread=thread, content="BUY CHEAP SATS")
    base = f"http://127.0.0.1:{live_relay.port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    viewer = browser.new_context().new_page()
    viewer.goto(f"{base}/t/{thread.event.event_id}/")
    spam_el = viewer.locator(f'[data-event-id="{spam.event.event_id}"]')
    assert spam_el.count() == 1
    viewer.wait_for_selector('body[data-live="on"]', timeout=10_000)

    console = browser.new_context().new_page()
    console.goto(f"{base}/mod/threads/{thread.pk}/")
    assert "/mod/login/" in console.url  # anonymous: sent to sign in
    console.fill("input[name=username]", "mod")
    console.fill("input[name=password]", "correct horse battery")
    console.click("button[type=submit]")
    console.wait_for_url(f"**/mod/threads/{thread.pk}/")
    article = console.locator(f"#post-{spam.number}")
    article.locator("input[name=reason]").fill("spam")
    article.locator("button", has_text="Hide").click()
    console.wait_for_load_state()
    assert "Post hidden." in console.content()
    console.screenshot(path=str(ARTIFACTS / "console-after-hide.png"), full_page=True)

    spam_el.wait_for(state="detached", timeout=10_000)
    assert viewer.locator(f'[data-event-id="{keep.event.event_id}"]').count() == 1
    viewer.screenshot(path=str(ARTIFACTS / "viewer-after-hide.png"), full_page=True)
    # And a fresh load agrees.
    viewer.reload()
    assert viewer.locator(f'[data-event-id="{spam.event.event_id}"]').count() == 0
