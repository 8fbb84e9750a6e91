"""Full-text search over public threads and replies: one selector, two engines.

- PostgreSQL: the stored `search_vector` columns with their GIN indexes (migration
  0009_search_index), `websearch_to_tsquery('english', q)`, `ts_rank_cd` and `ts_headline`.
- SQLite (the embedded default): the FTS5 table `forum_search_fts` that triggers keep in step
  with the thread and post tables, `bm25()` and `snippet()`.

A document is a thread (title and opening post) or a reply. It matches when its text matches
the query, or when its author's moderator-set alias does. Only what the public pages show is
searched: published threads and replies on listed, public, live boards, never a hidden post, a
reply in a hidden thread or anything in a private room.

`search()` costs a fixed number of queries whatever it finds: the authors whose alias matches,
a count, one page of (kind, id, rank) rows over both tables, then the page's threads and the
page's replies with their authors, boards and snippets (pinned in
tests/forum/web/test_search.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.postgres.search import (
    SearchHeadline,
    SearchQuery,
    SearchRank,
    SearchVectorField,
)
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import BooleanField, F, FloatField, Q, QuerySet, Value
from django.db.models.expressions import Expression, RawSQL
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from forum import nostr
from forum.models import Author, Board, Post, Thread
from forum.selectors.pages import PUBLIC_BOARD

RESULTS_PER_PAGE = 20
# Of each kind, the newest this many matches are ranked (and counted): beyond it a query is a
# word in most posts, and newer posts are the better answer anyway.
MAX_RANKED = 2000
MAX_QUERY_LENGTH = 200
SEARCH_CONFIG = "english"
KINDS = ("thread", "reply")

# Snippet markers the engines put around matched words. Private-use characters, so the
# snippet can be HTML-escaped as plain text first and the marks turned into <mark> after.
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKED = re.compile(f"{_OPEN}(.*?){_CLOSE}", re.DOTALL)


@dataclass(frozen=True)
class SearchFilters:
    """What the search form asks for; every field optional except the words."""

    q: str = ""
    board: str = ""  # slug
    author: str = ""  # npub, hex pubkey or alias
    kind: str = ""  # "thread", "reply" or "" for both
    since: date | None = None  # inclusive, UTC days
    until: date | None = None  # inclusive

    @property
    def is_empty(self) -> bool:
        return not self.q.strip()


@dataclass(frozen=True)
class SearchResult:
    """One hit: a thread (post is None) or a reply, with a highlighted snippet."""

    thread: Thread
    post: Post | None
    snippet: SafeString
    rank: float = 0.0

    @property
    def kind(self) -> str:
        return "thread" if self.post is None else "reply"

    @property
    def event_id(self) -> str:
        row = self.post if self.post is not None else self.thread
        return row.event.event_id

    @property
    def author(self) -> Author:
        return self.post.author if self.post is not None else self.thread.author

    @property
    def board(self) -> Board:
        return self.thread.board

    @property
    def settled_at(self) -> datetime:
        return self.post.settled_at if self.post is not None else self.thread.settled_at

    @property
    def sats_msat(self) -> int:
        return self.post.sats_msat if self.post is not None else self.thread.sats_msat


@dataclass
class SearchPage:
    """A page of results; `page` is Django's Page over the (kind, id, rank) rows."""

    results: list[SearchResult]
    page: Page | None
    filters: SearchFilters
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.page.paginator.count if self.page is not None else 0

    @property
    def capped(self) -> bool:
        """True when at least one kind had more matches than are ranked (show "N+")."""
        return self.total >= MAX_RANKED


def _engine() -> str:
    return connection.vendor if connection.vendor in ("postgresql", "sqlite") else "basic"


# --- the user's words ------------------------------------------------------------------------

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


def fts5_query(text: str) -> str:
    """The user's words as an FTS5 query that cannot be a syntax error.

    Like PostgreSQL's websearch syntax: words are all required, `"a phrase"` is a phrase,
    `-word` excludes, `or` between two terms is either. Each term is a quoted FTS5 string of
    the term's words (punctuation dropped), so no input reaches FTS5's operators.
    """
    positive: list[str] = []
    negative: list[str] = []
    pending_or = False
    for match in _TOKEN.finditer(text):
        minus = match.group(1) or match.group(3)
        raw = match.group(2) if match.group(2) is not None else match.group(4)
        if match.group(4) is not None and raw.lower() == "or" and not minus:
            pending_or = bool(positive)
            continue
        words = _WORD.findall(raw)
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        if minus:
            negative.append(term)
        elif pending_or:
            positive[-1] = f"({positive[-1]} OR {term})"
        else:
            positive.append(term)
        pending_or = False
    if not positive:
        return ""
    query = " AND ".join(positive)
    for term in negative:
        query += f" NOT {term}"
    return query


def _author_pubkey(text: str) -> str | None:
    try:
        return nostr.pubkey_parse(text)
    except nostr.EventError:
        return None


# --- which rows may be found -----------------------------------------------------------------


def _searchable_threads() -> QuerySet[Thread]:
    return Thread.objects.filter(
        is_hidden=False,
        board__destroyed_at__isnull=True,
        **PUBLIC_BOARD,
    )


def _searchable_posts() -> QuerySet[Post]:
    # "Not in a hidden thread" as NOT IN the few hidden threads (a partial index holds them):
    # joining the thread table to read its flag scanned every thread on each search.
    hidden_threads = Thread.objects.filter(is_hidden=True).values("id")
    return Post.objects.filter(
        is_hidden=False,
        board__destroyed_at__isnull=True,
        **PUBLIC_BOARD,
    ).exclude(thread_id__in=hidden_threads)


def _filtered(qs: QuerySet, filters: SearchFilters) -> QuerySet:
    # Forum-wide search covers listed boards (as the home page); a board named in the filter
    # is searched if it is public, listed or not (its page is reachable by its address).
    where = {"board__slug": filters.board} if filters.board else {"board__is_listed": True}
    qs = qs.filter(**where)
    if filters.author:
        pubkey = _author_pubkey(filters.author)
        if pubkey is not None:
            qs = qs.filter(author__pubkey=pubkey)
        else:
            qs = qs.filter(author__alias__iexact=filters.author.strip())
    if filters.since:
        qs = qs.filter(settled_at__gte=_day_start(filters.since))
    if filters.until:
        qs = qs.filter(settled_at__lt=_day_start(filters.until + timedelta(days=1)))
    return qs


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# --- engines: which documents match, and how well ---------------------------------------------


def _pg_query(q: str) -> SearchQuery:
    return SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)


# Authors found by name: at most this many (a name is a handful of people, not a crowd).
MAX_NAMED_AUTHORS = 100


def authors_named(q: str) -> list[int]:
    """Ids of authors whose moderator-set alias matches the query (one query).

    Fetched first so each table's match is "text matches OR author_id IN (a short list)",
    which PostgreSQL answers with one bitmap OR of the GIN index and the author index.
    """
    named = Author.objects.exclude(alias="")
    if _engine() == "postgresql":
        # The same expression as the GIN index on forum_author (migration 0009).
        named = named.filter(
            RawSQL(
                "to_tsvector('english', alias) @@ websearch_to_tsquery('english', %s)",
                [q],
                output_field=BooleanField(),
            )
        )
    else:
        words = [w for w in _WORD.findall(q) if w.lower() != "or"]
        if not words:
            return []
        any_word = Q(pk__in=[])
        for word in words:
            any_word |= Q(alias__icontains=word)
        named = named.filter(any_word)
    return list(named.values_list("id", flat=True)[:MAX_NAMED_AUTHORS])


class _SearchVectorColumn(Expression):
    """The `search_vector` column (migration 0009, unknown to the model) of the query's own
    table, under whatever alias it has (`U0` once the queryset is a subquery)."""

    output_field = SearchVectorField()

    def __init__(self, alias: str | None = None) -> None:
        super().__init__()
        self.alias = alias

    def resolve_expression(self, query=None, *args, **kwargs):
        clone = self.copy()
        clone.alias = query.get_initial_alias()
        return clone

    def relabeled_clone(self, change_map):
        clone = self.copy()
        clone.alias = change_map.get(self.alias, self.alias)
        return clone

    def get_group_by_cols(self):
        return [self]

    def as_sql(self, compiler, connection):
        return f"{compiler.quote_name_unless_alias(self.alias)}.search_vector", []


def _pg_matching(
    qs: QuerySet, table: str, q: str, named: list[int], *, match: bool = True
) -> QuerySet:
    query = _pg_query(q)
    qs = qs.annotate(document=_SearchVectorColumn())
    if match:
        matches = Q(document=query)
        if named:
            matches |= Q(author_id__in=named)
        qs = qs.filter(matches)
    return qs.annotate(rank=SearchRank(F("document"), query, cover_density=True))


# On SQLite the FTS5 query runs once per statement: `_ranked_rows` puts its hits, with their
# bm25 rank, in a materialized CTE that each kind's rows are matched and ranked against (a
# correlated MATCH per row cost one FTS query per match).
_SQLITE_HITS = "search_hits"


def _sqlite_matching(
    qs: QuerySet, table: str, q: str, named: list[int], *, match: bool = True
) -> QuerySet:
    if not fts5_query(q):
        return qs.none().annotate(rank=Value(0.0, output_field=FloatField()))
    # Thread rows are id*2 in the FTS table, posts id*2+1 (migration 0009).
    odd = 0 if table == "forum_thread" else 1
    in_text = RawSQL(f"SELECT (id - {odd}) / 2 FROM {_SQLITE_HITS} WHERE (id & 1) = {odd}", ())
    # bm25 is lower-is-better (the CTE negates it); title counts 4x content. Authors found by
    # name rank last.
    rank = RawSQL(
        f'COALESCE((SELECT r FROM {_SQLITE_HITS} WHERE id = "{table}"."id" * 2 + {odd}), 0.0)',
        (),
        output_field=FloatField(),
    )
    if match:
        qs = qs.filter(Q(id__in=in_text) | Q(author_id__in=named))
    return qs.annotate(rank=rank)


def _sqlite_hits(q: str) -> tuple[str, list]:
    """The WITH clause `_sqlite_matching` refers to."""
    return (
        f"WITH {_SQLITE_HITS} AS MATERIALIZED (SELECT rowid AS id, "
        "-bm25(forum_search_fts, 4.0, 1.0) AS r FROM forum_search_fts "
        "WHERE forum_search_fts MATCH %s) ",
        [fts5_query(q)],
    )


def _basic_matching(
    qs: QuerySet, table: str, q: str, named: list[int], *, match: bool = True
) -> QuerySet:
    words = [w for w in _WORD.findall(q) if w.lower() != "or"]
    if not match:
        return qs.annotate(rank=Value(0.0, output_field=FloatField()))
    if not words:
        return qs.none().annotate(rank=Value(0.0, output_field=FloatField()))
    for word in words:
        text = Q(content__icontains=word)
        if table == "forum_thread":
            text |= Q(title__icontains=word)
        qs = qs.filter(text | Q(author_id__in=named))
    return qs.annotate(rank=Value(0.0, output_field=FloatField()))


_MATCHERS = {"postgresql": _pg_matching, "sqlite": _sqlite_matching, "basic": _basic_matching}


# --- snippets --------------------------------------------------------------------------------


def _marked(text: str) -> SafeString:
    """Engine output with markers -> escaped HTML with <mark> (stray markers dropped)."""
    html = _MARKED.sub(lambda m: f"<mark>{m.group(1)}</mark>", escape(text))
    return mark_safe(html.replace(_OPEN, "").replace(_CLOSE, ""))  # noqa: S308 - escaped above


def _plain_excerpt(text: str, length: int = 240) -> SafeString:
    flat = " ".join((text or "").split())
    flat = flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"
    return escape(flat)


def _with_snippets(qs: QuerySet, table: str, q: str) -> QuerySet:
    engine = _engine()
    if engine == "postgresql":
        return qs.annotate(
            snippet=SearchHeadline(
                "content",
                _pg_query(q),
                config=SEARCH_CONFIG,
                start_sel=_OPEN,
                stop_sel=_CLOSE,
                max_words=40,
                min_words=15,
                max_fragments=2,
                fragment_delimiter=" … ",
            )
        )
    if engine == "sqlite":
        match = fts5_query(q)
        odd = 0 if table == "forum_thread" else 1
        return qs.annotate(
            snippet=RawSQL(
                f"SELECT snippet(forum_search_fts, 1, %s, %s, '…', 32) FROM forum_search_fts "
                f'WHERE forum_search_fts MATCH %s AND rowid = "{table}"."id" * 2 + {odd}',
                (_OPEN, _CLOSE, match),
            )
        )
    return qs


def _snippet(row, q: str) -> SafeString:
    text = getattr(row, "snippet", None)
    if text and (_OPEN in text):
        flat = " ".join(text.split())
        return _marked(flat)
    return _plain_excerpt(row.content)


# --- the selector ----------------------------------------------------------------------------


class _RankedHits:
    """The ranked (kind, id, rank) rows of a query, for Django's Paginator: `count()` and the
    slice of the page asked for come from one SQL statement (the total is a window count over
    the same rows), so a page costs one query; another slice (past the end) runs another."""

    def __init__(self, parts: list[QuerySet], q: str, *, first: tuple[int, int]) -> None:
        self.parts = parts
        self.q = q
        self.first = first  # (offset, limit) of the page asked for: fetched with the count
        self.total: int | None = None
        self.fetched: dict[tuple[int, int], list[dict]] = {}

    def fetch(self, offset: int, limit: int) -> list[dict]:
        key = (offset, limit)
        if key not in self.fetched:
            rows, total = _ranked_rows(self.parts, self.q, offset=offset, limit=limit)
            self.fetched[key] = rows
            if rows or offset == 0:
                self.total = total
            elif self.total is None:  # past the end: the window saw no row to count
                self.total = _ranked_rows(self.parts, self.q, offset=0, limit=1)[1]
        return self.fetched[key]

    def count(self) -> int:
        if self.total is None:
            self.fetch(*self.first)
        return self.total or 0

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[dict]:
        start = index.start or 0
        return self.fetch(start, (index.stop or start) - start)


def _ranked_rows(
    parts: list[QuerySet], q: str, *, offset: int, limit: int
) -> tuple[list[dict], int]:
    """One statement: the union of each kind's newest MAX_RANKED matches with their rank,
    best first, one page of it and (a window count) how many there are in all."""
    prefix, params = _sqlite_hits(q) if _engine() == "sqlite" else ("", [])
    selects = []
    for part in parts:
        try:
            sql, part_params = part.query.sql_with_params()
        except EmptyResultSet:  # nothing can match (no searchable word): no SQL for it
            continue
        selects.append(f"SELECT * FROM ({sql}) AS k{len(selects)}")
        params.extend(part_params)
    if not selects:
        return [], 0
    sql = (
        prefix
        + "SELECT doc_kind, id, rank, COUNT(*) OVER () FROM ("
        + " UNION ALL ".join(selects)
        + ") AS hits ORDER BY rank DESC, id DESC LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit, offset])
        found = cursor.fetchall()
    rows = [{"doc_kind": kind, "id": pk, "rank": rank} for kind, pk, rank, _ in found]
    return rows, (found[0][3] if found else 0)


def _ranked_parts(filters: SearchFilters, q: str) -> list[QuerySet]:
    """Each kind's newest MAX_RANKED matches as (doc_kind, id, rank) querysets.

    Only the newest are ranked: ranking reads every match's vector, which for a word in most
    posts costs more than everything else together. On PostgreSQL a word in most posts is read
    backwards along the primary key until MAX_RANKED match, so the rank is computed for those
    rows only; a rarer word comes from the GIN index.
    """
    matching = _MATCHERS[_engine()]
    named = authors_named(q)
    parts = []
    for kind, rows, table in (
        ("thread", _searchable_threads(), "forum_thread"),
        ("reply", _searchable_posts(), "forum_post"),
    ):
        if filters.kind not in ("", kind):
            continue
        tag = "t" if kind == "thread" else "p"
        ranked = matching(_filtered(rows, filters), table, q, named)
        parts.append(
            ranked.annotate(doc_kind=Value(tag))
            .values("doc_kind", "id", "rank")
            .order_by("-id")[:MAX_RANKED]
        )
    return parts


def search_event_ids(q: str, *, limit: int = MAX_RANKED) -> list[str]:
    """Event ids of the public threads and replies matching `q`, best first (at most
    `limit`): the relay's NIP-50 `search` (three queries: named authors, hits, their ids)."""
    q = q.strip()[:MAX_QUERY_LENGTH]
    if not q:
        return []
    rows, _ = _ranked_rows(_ranked_parts(SearchFilters(q=q), q), q, offset=0, limit=limit)
    threads = [row["id"] for row in rows if row["doc_kind"] == "t"]
    posts = [row["id"] for row in rows if row["doc_kind"] == "p"]
    ids: dict[tuple[str, int], str] = {}
    union = (
        Thread.objects.filter(id__in=threads)
        .annotate(k=Value("t"))
        .values_list("k", "id", "event__event_id")
        .order_by()
    )
    union = union.union(
        Post.objects.filter(id__in=posts)
        .annotate(k=Value("p"))
        .values_list("k", "id", "event__event_id")
        .order_by(),
        all=True,
    )
    for kind, pk, event_id in union:
        ids[(kind, pk)] = event_id
    return [ids[key] for key in ((r["doc_kind"], r["id"]) for r in rows) if key in ids]


def search(filters: SearchFilters, *, page: int | str = 1) -> SearchPage:
    """One page of public threads and replies matching `filters.q`, best first.

    Ties (and author-name matches, which have no text rank) go newest first.
    """
    q = filters.q.strip()[:MAX_QUERY_LENGTH]
    if not q:
        return SearchPage([], None, filters)
    try:
        number = max(1, int(page))
    except (TypeError, ValueError):
        number = 1
    first = ((number - 1) * RESULTS_PER_PAGE, RESULTS_PER_PAGE)
    hits = _RankedHits(_ranked_parts(filters, q), q, first=first)
    result_page = Paginator(hits, RESULTS_PER_PAGE).get_page(page)
    rows = list(result_page.object_list)
    thread_ids = [row["id"] for row in rows if row["doc_kind"] == "t"]
    post_ids = [row["id"] for row in rows if row["doc_kind"] == "p"]
    threads_by_id: dict[int, Thread] = {}
    posts_by_id: dict[int, Post] = {}
    if thread_ids:
        found = _with_snippets(
            Thread.objects.filter(id__in=thread_ids).select_related("board", "author", "event"),
            "forum_thread",
            q,
        )
        threads_by_id = {thread.id: thread for thread in found}
    if post_ids:
        found = _with_snippets(
            Post.objects.filter(id__in=post_ids).select_related(
                "board", "author", "event", "thread", "thread__event", "thread__board"
            ),
            "forum_post",
            q,
        )
        posts_by_id = {post.id: post for post in found}
    results = []
    for row in rows:
        if row["doc_kind"] == "t" and row["id"] in threads_by_id:
            thread = threads_by_id[row["id"]]
            results.append(SearchResult(thread, None, _snippet(thread, q), row["rank"] or 0.0))
        elif row["doc_kind"] == "p" and row["id"] in posts_by_id:
            post = posts_by_id[row["id"]]
            results.append(SearchResult(post.thread, post, _snippet(post, q), row["rank"] or 0.0))
    return SearchPage(results, result_page, filters)
