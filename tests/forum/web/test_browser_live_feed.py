"""In a real Chromium: a moderator hides a reply, then its thread, and a visitor's open home page
loses them from "Latest across the forum" live, without reloading (and not after a reload)."""

from __future__ import annotations

import pytest

from tests.forum.moderation import test_browser_live_hide as live_hide

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The same forum process, seed and Chromium as the thread page's live-hide test.
forum_server = live_hide.forum_server
browser = live_hide.browser


def test_hidden_reply_and_thread_leave_an_open_home_feed(forum_server, browser):
    seed, base = forum_server.seed, forum_server.url
    viewer = browser.new_context().new_page()
    viewer.goto(f"{base}/")
    feed = viewer.locator("#feed-list")
    item = lambda event_id: feed.locator(f'[data-event-id="{event_id}"]')  # noqa: E731
    for event_id in (seed["thread"], seed["keep"], seed["spam"]):
        assert item(event_id).count() == 1
    viewer.wait_for_selector('body[data-live="on"]', timeout=10_000)

    console = browser.new_context().new_page()
    console.goto(f"{base}/mod/threads/{seed['thread_pk']}/")
    console.fill("input[name=username]", "mod")
    console.fill("input[name=password]", live_hide.PASSWORD)
    console.click("button[type=submit]")
    console.wait_for_url(f"**/mod/threads/{seed['thread_pk']}/")
    console.locator(f"#post-{seed['spam_number']}").locator("button", has_text="Hide").click()
    console.wait_for_load_state()

    item(seed["spam"]).wait_for(state="detached", timeout=10_000)
    assert item(seed["keep"]).count() == 1 and item(seed["thread"]).count() == 1

    # Hiding the thread takes its opening post and its remaining replies off the feed.
    console.locator(".actions button", has_text="Hide").first.click()
    console.wait_for_load_state()
    item(seed["thread"]).wait_for(state="detached", timeout=10_000)
    item(seed["keep"]).wait_for(state="detached", timeout=10_000)
    viewer.reload()
    for event_id in (seed["thread"], seed["keep"], seed["spam"]):
        assert item(event_id).count() == 0
