"""In a real Chromium: a moderator hides a post in the console and a viewer's open thread page
loses it live, without reloading.

The forum runs as its own `manage.py runforum --no-background` process (daphne: HTTP +
websockets) on a throwaway SQLite file, seeded by a `manage.py shell` step. A separate process
keeps Twisted's one-per-process reactor out of the test process, where other suites run their
own in-process daphne, and needs nothing from the test database.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, need

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "test-artifacts")) / "moderation"
PASSWORD = "correct horse battery"

# Runs in `manage.py shell` against the server's database; the password comes in by env.
SEED = """
import json, os
from django.contrib.auth.models import Group, User
from forum.permissions import MODERATOR_GROUP
from tests.forum.moderation.conftest import make_author, make_board, make_reply, make_thread

board = make_board("live")
thread = make_thread(author=make_author(), board=board, title="Live thread")
spammer = make_author()
keep = make_reply(author=spammer, thread=thread, content="an honest reply")
spam = make_reply(author=spammer, thread=thread, content="BUY CHEAP SATS")
user = User.objects.create_user("mod", password=os.environ["SEED_PASSWORD"])
user.groups.add(Group.objects.get_or_create(name=MODERATOR_GROUP)[0])
print(json.dumps({"thread_pk": thread.pk, "thread": thread.event.event_id,
                  "keep": keep.event.event_id, "spam": spam.event.event_id,
                  "spam_number": spam.number}))
"""


@dataclass
class Server:
    url: str
    seed: dict


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def forum_server(tmp_path: Path) -> Iterator[Server]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'forum.sqlite3'}",
        "FORUM_DATA_DIR": str(tmp_path),
        "REDIS_URL": "",  # in-memory channel layer: the hide and the sockets share one process
        "SIMNET": "0",
        "DEMO_MODE": "0",
        "PYTHONPATH": str(ROOT),
        "SEED_PASSWORD": PASSWORD,
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    seeded = subprocess.run(
        [*manage, "shell", "-c", SEED],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [*manage, "runforum", "--no-background", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/mod/login/", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"forum server did not start:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.2)
        yield Server(url=url, seed=seed)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser():
    need(shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is not installed")
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


def test_hidden_post_disappears_from_an_open_thread(forum_server: Server, browser):
    seed, base = forum_server.seed, forum_server.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    viewer = browser.new_context().new_page()
    viewer.goto(f"{base}/t/{seed['thread']}/")
    spam_el = viewer.locator(f'[data-event-id="{seed["spam"]}"]')
    assert spam_el.count() == 1
    viewer.wait_for_selector('body[data-live="on"]', timeout=10_000)

    console = browser.new_context().new_page()
    console.goto(f"{base}/mod/threads/{seed['thread_pk']}/")
    assert "/mod/login/" in console.url  # anonymous: sent to sign in first
    console.fill("input[name=username]", "mod")
    console.fill("input[name=password]", PASSWORD)
    console.click("button[type=submit]")
    console.wait_for_url(f"**/mod/threads/{seed['thread_pk']}/")
    article = console.locator(f"#post-{seed['spam_number']}")
    article.locator("input[name=reason]").fill("spam")
    article.locator("button", has_text="Hide").click()
    console.wait_for_load_state()
    assert "Post hidden." in console.content()
    console.screenshot(path=str(ARTIFACTS / "console-after-hide.png"), full_page=True)

    # The viewer never reloads: the post.hidden message removes it.
    spam_el.wait_for(state="detached", timeout=10_000)
    assert viewer.locator(f'[data-event-id="{seed["keep"]}"]').count() == 1
    viewer.screenshot(path=str(ARTIFACTS / "viewer-after-hide.png"), full_page=True)
    viewer.reload()
    assert viewer.locator(f'[data-event-id="{seed["spam"]}"]').count() == 0
