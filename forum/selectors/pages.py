"""Reads behind the public pages: home, board, thread, author, raw events, live fragments.

Every function here returns plain objects the templates can render without touching the
database again: related rows come through `select_related`, so a page costs a fixed number of
queries however many posts it shows (pinned in tests/forum/web/test_selectors.py). Hidden
threads and posts, and events that were never published, are never returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from forum import nostr
from forum.models import Author, Board, Event, Post, Thread
from forum.ranking import TOP_PERIODS

THREADS_PER_PAGE = 30
POSTS_PER_PAGE = 50
AUTHOR_ITEMS = 20

BOARD_SORTS: dict[str, tuple[str, ...]] = {
    # Pinned threads stay on top of the default view only; the other sorts are rankings.
    "latest": ("-is_pinned", "-last_activity_at", "-id"),
    "newest": ("-settled_at", "-id"),
    "sats": ("-sats_msat", "-last_activity_at", "-id"),
    # Rankings (forum.ranking): the stored Hot score; Top is most sats within `period`.
    "hot": ("-hot", "-id"),
    "top": ("-sats_msat", "-id"),
}


@lru_cache(maxsize=16384)
def npub(pubkey: str) -> str:
    """NIP-19 npub of a hex pubkey (memoised: the same authors recur on every page)."""
    try:
        return nostr.npub_encode(pubkey)
    except ValueError:
        return pubkey


def short_npub(pubkey: str) -> str:
    """`npub1abcdef…uvwxyz`: enough to tell authors apart in a list."""
    full = npub(pubkey)
    return f"{full[:11]}…{full[-6:]}" if len(full) > 20 else full


# Private rooms (boards with a password) are only shown by forum.views.rooms, to a session that
# unlocked them: never on these public pages, their permalinks, raw events or author pages.
PUBLIC_BOARD = {"board__password_verifier": ""}
_PUBLIC = {"password_verifier": ""}


def visible_threads() -> QuerySet[Thread]:
    return Thread.objects.filter(is_hidden=False, board__destroyed_at__isnull=True, **PUBLIC_BOARD)


def visible_posts() -> QuerySet[Post]:
    return Post.objects.filter(is_hidden=False, thread__is_hidden=False, **PUBLIC_BOARD)


# --- home ----------------------------------------------------------------------------------


def boards_for_home() -> list[Board]:
    """Listed boards in display order, with their counters (one query)."""
    return list(Board.objects.listed())


# --- latest across the forum (home page feed) -----------------------------------------------

FEED_PER_PAGE = 20


@dataclass(frozen=True)
class FeedItem:
    """A new thread, or a reply with its thread, on a listed public board."""

    event_id: str
    board: Board
    thread: Thread
    post: Post | None

    @property
    def author(self) -> Author:
        return self.post.author if self.post is not None else self.thread.author

    @property
    def settled_at(self):
        return self.post.settled_at if self.post is not None else self.thread.settled_at

    @property
    def content(self) -> str:
        return self.post.content if self.post is not None else self.thread.content


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def board_in_feed(board: Board) -> bool:
    """Does "Latest across the forum" show this board's posts? (The same rule as below.)"""
    return board.is_listed and board.destroyed_at is None and board.password_verifier == ""


def _feed_events() -> QuerySet[Event]:
    # Listed, public, live boards only: never a private room (it has a password) and never an
    # unlisted board (the home page would advertise it). Hidden threads take their replies.
    return (
        Event.objects.filter(
            state=Event.State.PUBLISHED,
            kind__in=(nostr.KIND_THREAD, nostr.KIND_REPLY),
            board__is_listed=True,
            board__destroyed_at__isnull=True,
            **PUBLIC_BOARD,
        )
        .filter(
            Q(thread__is_hidden=False) | Q(post__is_hidden=False, post__thread__is_hidden=False)
        )
        .select_related(
            "board",
            "thread",
            "thread__author",
            "post",
            "post__author",
            "post__thread",
            "post__thread__event",
        )
    )


def _feed_item(event: Event) -> FeedItem:
    post = getattr(event, "post", None) if event.kind == nostr.KIND_REPLY else None
    thread = post.thread if post is not None else event.thread
    return FeedItem(event.event_id, event.board, thread, post)


def latest_feed(*, page: int | str = 1) -> FeedPage:
    """The newest threads and replies across the public boards, newest first (one query:
    rows in arrival order by primary key, one more than a page to know if there is a next)."""
    try:
        number = max(1, int(page))
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * FEED_PER_PAGE
    rows = list(_feed_events().order_by("-id")[start : start + FEED_PER_PAGE + 1])
    items = [_feed_item(event) for event in rows[:FEED_PER_PAGE]]
    return FeedPage(items, number, has_next=len(rows) > FEED_PER_PAGE)


def feed_item_get(event_id: str) -> FeedItem | None:
    """One event as a feed item, or None if the feed must not show it (private, hidden...)."""
    event = _feed_events().filter(event_id=event_id).first()
    return _feed_item(event) if event is not None else None


def feed_items_get(event_ids: Iterable[str]) -> dict[str, FeedItem]:
    """The events of these ids that the feed shows, as feed items (one query)."""
    events = _feed_events().filter(event_id__in=list(event_ids))
    return {event.event_id: _feed_item(event) for event in events}


def follow_is_public(*, scope: str, key: str) -> bool:
    """Is this board (slug) or thread (event id) known and public? (Live sockets skip the
    per-session room check for these, and may remember the answer: it never changes.)"""
    if scope == "board":
        return Board.objects.filter(slug=key, expires_at__isnull=True, **_PUBLIC).exists()
    if scope == "thread":
        return Thread.objects.filter(
            event__event_id=key, board__expires_at__isnull=True, **PUBLIC_BOARD
        ).exists()
    return scope == "feed"


# --- board ---------------------------------------------------------------------------------


def board_get(slug: str) -> Board:
    """A board that can be browsed: listed or not (private rooms live under /r/, locked)."""
    try:
        return Board.objects.get(slug=slug, destroyed_at__isnull=True, password_verifier="")
    except Board.DoesNotExist:
        raise Http404("no such board") from None


def board_threads_page(
    board: Board | None, *, sort: str = "latest", period: str = "all", page: int | str = 1
) -> Page:
    """One page of a board's visible threads with their authors (two queries: count, rows);
    with no board, of every listed board's. `period` (forum.ranking.TOP_PERIODS) bounds "top"
    to threads published within it."""
    ordering = BOARD_SORTS.get(sort, BOARD_SORTS["latest"])
    rows = visible_threads()
    rows = rows.filter(board=board) if board is not None else rows.filter(board__is_listed=True)
    window = TOP_PERIODS.get(period) if sort == "top" else None
    if window is not None:
        rows = rows.filter(settled_at__gte=timezone.now() - window)
    threads = (
        rows.select_related("author", "event", "board")
        .only(
            "id",
            "title",
            "settled_at",
            "published_at",
            "last_activity_at",
            "reply_count",
            "sats_msat",
            "is_locked",
            "is_pinned",
            "author__pubkey",
            "author__alias",
            "author__profile_name",
            "author__nip05_verified",
            "event__event_id",
            "board_id",
            "board__slug",
            "board__title",
        )
        .order_by(*ordering)
    )
    return Paginator(threads, THREADS_PER_PAGE).get_page(page)


# --- thread --------------------------------------------------------------------------------


def thread_get(event_id: str) -> Thread:
    """A visible thread by its kind-11 event id, with board, author and event (one query)."""
    try:
        return (
            visible_threads()
            .select_related("board", "author", "event")
            .get(event__event_id=event_id)
        )
    except Thread.DoesNotExist:
        raise Http404("no such thread") from None


def _posts_with_relations(qs: QuerySet[Post]) -> QuerySet[Post]:
    # The parent and its author come in the same query so "in reply to #12 by npub…" costs
    # nothing per post.
    return qs.select_related("author", "event", "parent", "parent__author", "parent__event")


def thread_posts_page(thread: Thread, *, page: int | str = 1) -> Page:
    """One page of a thread's visible replies in order (two queries: count, rows)."""
    posts = _posts_with_relations(visible_posts().filter(thread=thread)).order_by("number")
    return Paginator(posts, POSTS_PER_PAGE).get_page(page)


class CardKey(NamedTuple):
    """What a reply's card shows that its signed event does not fix (tips, a hidden parent,
    the number, names, an edit): the cache key of the card (`forum.views.page_cache`)."""

    pk: int
    event_id: str
    sats_msat: int
    number: int
    parent_hidden: bool
    alias: str
    profile_name: str
    nip05_verified: str
    parent_alias: str
    parent_profile_name: str
    edited_ref: str


_CARD_KEY_FIELDS = (
    "pk",
    "event__event_id",
    "sats_msat",
    "number",
    "parent__is_hidden",
    "author__alias",
    "author__profile_name",
    "author__nip05_verified",
    "parent__author__alias",
    "parent__author__profile_name",
    "edited_ref",
)


def card_key_of(post: Post) -> CardKey:
    """The card key of a reply loaded with its relations."""
    parent = post.parent if post.parent_id else None
    return CardKey(
        post.pk,
        post.event.event_id,
        post.sats_msat,
        post.number,
        bool(parent and parent.is_hidden),
        post.author.alias,
        post.author.profile_name,
        post.author.nip05_verified,
        parent.author.alias if parent else "",
        parent.author.profile_name if parent else "",
        post.edited_ref,
    )


def _card_key_row(row: tuple) -> CardKey:
    pk, event_id, sats, number, parent_hidden, alias, name, nip05, p_alias, p_name, edit = row
    return CardKey(
        pk, event_id, sats, number, bool(parent_hidden), alias, name, nip05,
        p_alias or "", p_name or "", edit,
    )  # fmt: skip


def thread_card_keys_page(thread: Thread, *, page: int | str = 1) -> Page:
    """One page of a thread's visible replies as card keys, not rows (two queries: count,
    keys): a page whose cards are cached needs nothing more (`posts_visible_get` for the
    rest), and instantiating fifty replies with five related rows each was most of a render."""
    keys = visible_posts().filter(thread=thread).order_by("number").values_list(*_CARD_KEY_FIELDS)
    found = Paginator(keys, POSTS_PER_PAGE).get_page(page)
    found.object_list = [_card_key_row(row) for row in found.object_list]
    return found


def post_page_number(post: Post) -> int:
    """Which page of its thread a reply is on (one count query)."""
    before = visible_posts().filter(thread_id=post.thread_id, number__lt=post.number).count()
    return before // POSTS_PER_PAGE + 1


@dataclass(frozen=True)
class Located:
    """Where a published, visible event lives: a thread, or a reply in a thread."""

    thread: Thread
    post: Post | None


def event_locate(event_id: str) -> Located:
    """The thread or reply for an event id (for permalinks and live fragments)."""
    thread = (
        visible_threads()
        .select_related("board", "author", "event")
        .filter(event__event_id=event_id)
        .first()
    )
    if thread is not None:
        return Located(thread, None)
    post = (
        _posts_with_relations(visible_posts())
        .select_related("thread", "thread__board", "thread__event", "board")
        .filter(event__event_id=event_id)
        .first()
    )
    if post is None:
        raise Http404("no such post")
    return Located(post.thread, post)


def posts_visible_get(post_ids: Iterable[int]) -> dict[int, Post]:
    """Visible replies on public boards by primary key, with what their cards show (one query;
    live messages name their posts)."""
    posts = _posts_with_relations(visible_posts()).filter(pk__in=list(post_ids))
    return {post.pk: post for post in posts}


def threads_visible_get(event_ids: Iterable[str]) -> dict[str, Thread]:
    """Visible threads on public boards by event id, with what their board rows show (one
    query)."""
    threads = visible_threads().select_related("board", "author", "event")
    return {t.event.event_id: t for t in threads.filter(event__event_id__in=list(event_ids))}


def _side_event_shown(event: Event) -> bool:
    """A profile, deletion or edit (`forum.ingest.kinds`), on the same terms as the relay
    (`forum.relay.selectors.servable_events`): the author's current profile, a deletion of
    posts on listed boards, an edit of a post the pages show."""
    if event.kind == nostr.KIND_PROFILE:
        return Author.objects.filter(profile_ref=event.event_id).exists()
    if event.kind == nostr.KIND_DELETION:
        return Event.objects.filter(
            deleted_by_ref=event.event_id,
            board__is_listed=True,
            board__password_verifier="",
            board__destroyed_at__isnull=True,
        ).exists()
    if event.kind == nostr.KIND_EDIT and event.target_ref:
        try:
            event_locate(event.target_ref)
        except Http404:
            return False
        return True
    return False


def event_raw_json(event_id: str) -> str:
    """The signed JSON exactly as received, for a published event that is not hidden."""
    event = Event.objects.filter(event_id=event_id, state=Event.State.PUBLISHED).first()
    if event is None:
        raise Http404("no such event")
    if event.kind not in (nostr.KIND_THREAD, nostr.KIND_REPLY):
        if not _side_event_shown(event):
            raise Http404("no such event")
        return event.raw_json
    event_locate(event_id)  # hidden threads/posts stay hidden here too
    return event.raw_json


# --- author --------------------------------------------------------------------------------


def author_get(key: str) -> Author:
    """An author by hex pubkey or npub."""
    pubkey = key
    if key.startswith("npub1"):
        try:
            pubkey = nostr.npub_decode(key)
        except ValueError:
            raise Http404("not an npub") from None
    try:
        return Author.objects.get(pubkey=pubkey.lower())
    except Author.DoesNotExist:
        raise Http404("no such author") from None


@dataclass(frozen=True)
class AuthorActivity:
    threads: list[Thread]
    posts: list[Post]


def author_activity(author: Author) -> AuthorActivity:
    """The author's latest visible threads and replies (two queries)."""
    threads = list(
        visible_threads()
        .filter(author=author)
        .select_related("board", "event")
        .order_by("-settled_at", "-id")[:AUTHOR_ITEMS]
    )
    posts = list(
        visible_posts()
        .filter(author=author)
        .select_related("thread", "thread__event", "board", "event")
        .order_by("-settled_at", "-id")[:AUTHOR_ITEMS]
    )
    return AuthorActivity(threads, posts)


# --- how to post -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeContact:
    """What a payer needs to reach the forum's node; `error` when it cannot be asked."""

    pubkey: str = ""
    uri: str = ""  # pubkey@host:port, if the node announces an address
    alias: str = ""
    error: str = ""


NODE_CONTACT_CACHE_SECONDS = 30


def record_types() -> list[tuple[str, int]]:
    """The forum's custom record types, in type order (from forum.protocol)."""
    from forum import protocol

    return sorted(protocol.RECORD_TYPES.items(), key=lambda item: item[1])
