"""A real forum for the browser: `manage.py runforum` (daphne + simnet + listener + demo seed)
in a subprocess on its own SQLite file and free ports, and Debian's Chromium via Playwright.

The server is the embedded default exactly as `make run` starts it, so these tests cover the
newcomer path end to end: demo seeding, quote, browser signing, demo-wallet keysend over gRPC,
listener, reconciliation, websockets.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, need

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_range(count: int) -> int:
    """A base port with `count` free ports after it (simnet serves one per node)."""
    for _ in range(200):
        base = random.randint(20_000, 50_000)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range")


def _get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


class ForumServer:
    def __init__(self, url: str, data_dir: Path, proc: subprocess.Popen, log: Path) -> None:
        self.url = url
        self.data_dir = data_dir
        self.proc = proc
        self.log = log

    def get(self, path: str) -> str:
        return _get(self.url + path)


@contextlib.contextmanager
def running_forum(data_dir: Path, **extra_env: str) -> Iterator[ForumServer]:
    """`manage.py runforum` on its own SQLite file and free ports, up once its demo seed is
    published; `extra_env` on top of the embedded default (e.g. HOLD_MODE="0")."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LND_", "REDIS_", "DATABASE_", "SIMNET", "DEMO_", "CELERY"))
    }
    env.update(
        FORUM_DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:///{data_dir}/forum.sqlite3",
        SIMNET_BASE_PORT=str(free_port_range(8)),
        DEMO_MODE="1",
        SWEEP_INTERVAL_SECONDS="5",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    web_port = free_port_range(1)
    log = data_dir / "server.log"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runforum", "--host", "127.0.0.1", "--port", str(web_port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = ForumServer(f"http://127.0.0.1:{web_port}", data_dir, proc, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"runforum exited early:\n{log.read_text()}")
            try:
                # Ready when the demo seed's threads are published (they went through simnet).
                if "Welcome" in server.get("/b/general/"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the forum did not come up with its demo seed:\n{log.read_text()}")
            time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def forum_server(tmp_path_factory) -> Iterator[ForumServer]:
    with running_forum(tmp_path_factory.mktemp("forum-server")) as server:
        yield server


# Module scope, not session: Playwright's sync API keeps an event loop running on this thread
# while it is open, and other packages' browser tests start their own afterwards.
@pytest.fixture(scope="module")
def browser():
    need(os.path.exists(CHROMIUM), f"Debian's Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def page_maker(browser):
    """A maker of pages in separate browser contexts (separate people: own storage, own key),
    each page keeping its JavaScript errors in `page.js_errors`; closes them all when done."""
    contexts = []

    def make(context=None, width: int = 1100):
        if context is None:
            context = browser.new_context(viewport={"width": width, "height": 900})
            contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def new_page(browser, forum_server):
    """Pages of the embedded forum, each in its own browser context."""
    yield from page_maker(browser)
