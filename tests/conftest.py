"""Shared fixtures: eager Celery by default, real services when a test asks for them.

Locally with no environment, tests that need Redis or a browser skip with a reason; in CI
(REQUIRE_SERVICES=1) the same absence fails the run instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a real service the test needs is missing."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _eager_celery(settings) -> Iterator[None]:
    """Tasks run in-process unless a test starts a real worker (see `celery_worker`)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    need(bool(url), "REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # pragma: no cover - environment dependent
        need(False, f"Redis at {url} does not answer: {exc}")
    return url


def database_url_for_subprocess() -> str:
    """The URL of the database this test run uses, for worker/listener subprocesses."""
    from django.db import connection

    db = connection.settings_dict
    need(db["ENGINE"].endswith("postgresql"), "a subprocess needs PostgreSQL (DATABASE_URL)")
    base = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(base._replace(path="/" + db["NAME"]))


@pytest.fixture
def subprocess_env(redis_url) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_subprocess()
    env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture
def celery_worker(subprocess_env, tmp_path) -> Iterator[subprocess.Popen]:
    """A real `celery worker` process on the real Redis broker; tasks stop being eager."""
    from config.celery import app

    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=subprocess_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if b"ready." in log.read_bytes():
                break
            if proc.poll() is not None:
                pytest.fail(f"celery worker exited early:\n{log.read_text()}")
            time.sleep(0.2)
        else:
            pytest.fail(f"celery worker did not become ready:\n{log.read_text()}")
        yield proc
    finally:
        app.conf.task_always_eager = True
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
