"""Search latency on a large forum: p50/p95 of `forum.selectors.search.search()`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lnforum_search_bench \\
        .venv/bin/python bench/search.py [--posts 100000] [--rounds 20]

Fills the database named by DATABASE_URL (migrated here; it must be a database of its own,
its forum tables are emptied first) with `--posts` posts: a thread for every 20 posts, over 5
boards and 500 authors, content drawn from a 5,000-word vocabulary with a Zipf-like
distribution (a few words are in most posts, most words in few), 5% hidden. Rows are written
with bulk inserts, so PostgreSQL's generated search columns (or SQLite's triggers) index them
exactly as they would index published posts.

Then runs a fixed mix of queries (a very common word, a rare word, two words, a phrase, an
exclusion, with board, kind, author and date filters, and page 3) `--rounds` times each,
through the selector as the /search view calls it (count, page, threads, replies with
snippets), and prints each query's median and the overall p50/p95. The last line is
`search: <engine> <posts> posts, p50 X ms, p95 Y ms over N queries`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def vocabulary(size: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    return sorted(words)


def populate(posts: int, rng: random.Random) -> None:
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from forum.models import Author, Board, Event, Post, Thread

    call_command("migrate", verbosity=0, interactive=False)
    with transaction.atomic():
        Post.objects.all().delete()
        Thread.objects.all().delete()
        Event.objects.all().delete()
        Author.objects.all().delete()
        Board.objects.all().delete()
    words = vocabulary(5000, random.Random(1))  # the same words queries() asks for
    weights = [1 / (rank + 1) for rank in range(len(words))]
    boards = [Board.objects.create(slug=f"board{i}", title=f"Board {i}") for i in range(5)]
    authors = Author.objects.bulk_create(
        Author(pubkey=f"{i:064x}", alias=f"user{i}" if i % 10 == 0 else "") for i in range(500)
    )
    by_pubkey = {author.pubkey: author for author in authors}
    start = timezone.now() - timedelta(days=365)
    step = timedelta(days=365) / posts
    per_thread = 20
    event_seq = 0

    def text(n: int) -> str:
        return " ".join(rng.choices(words, weights, k=n))

    def event(board, author, kind: int, at) -> Event:
        nonlocal event_seq
        event_seq += 1
        return Event(
            event_id=f"{event_seq:064x}",
            pubkey=author.pubkey,
            kind=kind,
            created_at=int(at.timestamp()),
            raw_json="{}",
            board=board,
            state="published",
            settled_at=at,
        )

    made = 0
    batch = 2000
    while made < posts:
        with transaction.atomic():
            n_threads = max(1, batch // per_thread)
            at0 = start + step * made
            thread_events, threads = [], []
            for i in range(n_threads):
                board, author = rng.choice(boards), rng.choice(authors)
                at = at0 + step * i
                thread_events.append(event(board, author, 11, at))
            Event.objects.bulk_create(thread_events)
            for ev in thread_events:
                threads.append(
                    Thread(
                        event=ev,
                        board=ev.board,
                        author=by_pubkey[ev.pubkey],
                        title=text(rng.randint(3, 8)),
                        content=text(rng.randint(10, 60)),
                        settled_at=ev.settled_at,
                        last_activity_at=ev.settled_at,
                        is_hidden=rng.random() < 0.05,
                    )
                )
            Thread.objects.bulk_create(threads)
            reply_events, replies = [], []
            for thread in threads:
                for _ in range(1, per_thread):
                    author = rng.choice(authors)
                    reply_events.append(event(thread.board, author, 1111, thread.settled_at))
            Event.objects.bulk_create(reply_events)
            it = iter(reply_events)
            for thread in threads:
                for number in range(1, per_thread):
                    ev = next(it)
                    replies.append(
                        Post(
                            event=ev,
                            thread=thread,
                            author=by_pubkey[ev.pubkey],
                            board=thread.board,
                            content=text(rng.randint(10, 80)),
                            number=number,
                            settled_at=ev.settled_at,
                            is_hidden=rng.random() < 0.05,
                        )
                    )
            Post.objects.bulk_create(replies)
            made += len(threads) + len(replies)
        print(f"  {made} posts", end="\r", flush=True)
    print()
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "ANALYZE forum_event, forum_thread, forum_post, forum_author, forum_board"
            )


def queries():
    from datetime import date

    from forum import nostr
    from forum.models import Author
    from forum.selectors.search import SearchFilters

    words = vocabulary(5000, random.Random(1))
    common, second, mid, rare = words[0], words[1], words[200], words[4000]
    npub_author = Author.objects.order_by("id").first()
    npub = nostr.npub_encode(npub_author.pubkey) if npub_author else ""
    return [
        ("common word", SearchFilters(q=common), 1),
        ("rare word", SearchFilters(q=rare), 1),
        ("two words", SearchFilters(q=f"{mid} {second}"), 1),
        ("phrase", SearchFilters(q=f'"{common} {second}"'), 1),
        ("exclusion", SearchFilters(q=f"{mid} -{common}"), 1),
        ("board filter", SearchFilters(q=mid, board="board2"), 1),
        ("threads only", SearchFilters(q=common, kind="thread"), 1),
        ("author filter", SearchFilters(q=second, author=npub), 1),
        ("date range", SearchFilters(q=mid, since=date.today() - timedelta(days=30)), 1),
        ("page 3", SearchFilters(q=mid), 3),
        ("alias", SearchFilters(q="user10"), 1),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--skip-populate", action="store_true", help="reuse the database")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    from forum.selectors.search import search

    rng = random.Random(42)
    if not args.skip_populate:
        began = time.perf_counter()
        populate(args.posts, rng)
        print(f"populated in {time.perf_counter() - began:.0f} s")
    mix = queries()
    for _, filters, page in mix:  # warm the caches once
        search(filters, page=page)
    timings: list[float] = []
    for name, filters, page in mix:
        mine = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            found = search(filters, page=page)
            [hit.snippet for hit in found.results]
            mine.append((time.perf_counter() - began) * 1000)
        timings.extend(mine)
        print(f"  {name:14} {found.total:7} hits  median {statistics.median(mine):6.1f} ms")
    cuts = statistics.quantiles(timings, n=100)
    print(
        f"search: {connection.vendor} {args.posts} posts, p50 {cuts[49]:.1f} ms, "
        f"p95 {cuts[94]:.1f} ms over {len(timings)} queries"
    )


if __name__ == "__main__":
    main()
