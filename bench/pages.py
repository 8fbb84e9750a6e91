"""Requests/s of the public pages against a bare Django view on the same server and settings.

    .venv/bin/python bench/pages.py [--seconds 10] [--concurrency 8] [--replies 1000]

Builds a fresh SQLite forum in a temporary directory (the embedded default's database):
one board with 100 threads, one of them with `--replies` replies (every tenth a reply to an
earlier reply, so the "in reply to" quotes are rendered). Then serves it with daphne (the
forum's ASGI app, as `make run` and production do) in its own process, and drives it with
`--concurrency` keep-alive HTTP clients for `--seconds` per page:

* thread: `/t/<id>/` — the opening post and the first page of 50 replies out of 1,000
* board:  `/b/<slug>/` — the first page of 30 threads, latest activity first
* home:   `/` — the boards and the first page of "Latest across the forum"
* search: `/search?q=text` — a word in every reply: 1,000+ matches ranked, one page shown
* hot:    `/hot/` — the first page of threads across the forum by their stored Hot rank
* bare:   `/bench/bare` — a view that returns "ok" through the same middleware

Each page is measured twice. **warm**: served from the page cache (by version), as most reads
are. **cold**: every request first changes every page version, as a publish does, so the page
is rendered again from the database (its post cards stay cached by event id, as after a real
publish). Each URL is warmed up first. Every response is checked for status 200. The last line
is `pages: warm thread X req/s (P% of bare), board ..., home ..., search ..., hot ...; cold
thread ..., board ..., home ..., search ..., hot ...; bare Z req/s`.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox import daphne_server, own_forum  # noqa: E402 (after the path is set)


def populate(replies: int) -> tuple[str, str]:
    """Create the forum to measure; returns (thread event id, board slug)."""
    import django

    django.setup()
    from django.core.management import call_command

    from tests.forum.web import factories as f

    call_command("migrate", verbosity=0, interactive=False)
    board = f.board("bench", title="Bench", thread_price_msat=21_000, reply_price_msat=5_000)
    thread, root = f.thread(
        board,
        title="A thread with many replies",
        content="The opening post, with **Markdown**, a [link](https://example.com) and `code`.",
    )
    made: list = []
    for start in range(0, replies, 100):
        batch = f.replies(
            thread,
            root,
            min(100, replies - start),
            content="Reply {i}: *some* text with a link https://example.org and a list\n\n- a\n- b",
        )
        made.extend(batch)
    # Some replies to replies: the page renders their quote of the parent.
    for parent in made[: replies // 10 : 10]:
        f.replies(thread, root, 1, parent=parent, content="Answering you, {i}.")
    for i in range(99):
        f.thread(board, title=f"Another thread {i}", content="Body")
    from forum.models import Thread
    from forum.ranking import threads_hot_refresh

    threads_hot_refresh(Thread.objects.values_list("pk", flat=True))  # as publishing keeps it
    return root.id, board.slug


def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/bench/bare")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("daphne did not start")


def hammer(
    port: int, path: str, seconds: float, concurrency: int, headers: dict[str, str] | None = None
) -> float:
    """Requests/s over `seconds` with `concurrency` keep-alive clients (all must be 200)."""
    stop = time.monotonic() + seconds
    counts = [0] * concurrency
    errors: list[str] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"{path}: HTTP {response.status}")
                return
            counts[i] += 1
        conn.close()

    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    if errors:
        raise SystemExit(errors[0])
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--replies", type=int, default=1000)
    args = parser.parse_args()

    with own_forum("bench-pages-", settings_module="bench.pages_settings") as tmp:
        thread_id, slug = populate(args.replies)
        with daphne_server(tmp) as port:
            wait_ready(port)  # and the bare view answers: the settings' own URLs are loaded
            pages = {
                "thread": f"/t/{thread_id}/",
                "board": f"/b/{slug}/",
                "home": "/",
                "search": "/search?q=text",
                "hot": "/hot/",
            }
            for path in [*pages.values(), "/bench/bare"]:
                hammer(port, path, 1.0, 2)  # warm-up: imports, template and Markdown caches
            cold_header = {"X-Bench-Cold": "1"}
            results: dict[str, float] = {}
            for name, path in pages.items():
                for mode, headers in (("warm", None), ("cold", cold_header)):
                    rate = hammer(port, path, args.seconds, args.concurrency, headers)
                    results[f"{mode} {name}"] = rate
                    print(f"{mode} {name:6} {path}: {rate:.1f} req/s", flush=True)
            results["bare"] = hammer(port, "/bench/bare", args.seconds, args.concurrency)
            print(f"bare   /bench/bare: {results['bare']:.1f} req/s", flush=True)
    bare = results["bare"]

    def figure(key: str) -> str:
        return f"{key.split()[1]} {results[key]:.1f} req/s ({100 * results[key] / bare:.0f}%)"

    warm = ", ".join(figure(f"warm {name}") for name in pages)
    cold = ", ".join(figure(f"cold {name}") for name in pages)
    print(f"pages: warm {warm}; cold {cold}; bare {bare:.1f} req/s")


if __name__ == "__main__":
    main()
