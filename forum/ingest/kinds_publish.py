"""Publishing the side kinds inside a reconcile batch: profiles (0), deletions (5), edits (1010).

The verdict has already accepted the event (readable, same author, paid at the site price);
here its effects go onto the batch's rows in memory, and `BatchState.flush` writes them with
a few set-based statements (no query per row: targets and authors were primed with the batch).

- A profile replaces the author's shown profile when it is newer (created_at, ties by the
  lowest id, as NIP-01 orders replaceable events), whatever order payments settle in.
- A deletion hides the author's named threads and replies (with the visible counters moved as
  `moderation.hide` moves them) and marks each event deleted by it.
- An edit puts its text (and a thread's new title) in place of the post's when it is newer than
  the edit shown now; the original and every edit stay as signed events.

Each published side event is also offered to the relay's live subscribers (`relay.event` on the
public feed group; the relay re-reads visibility before sending).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from forum import nostr, realtime
from forum.ingest import kinds
from forum.ingest.batch import BatchState
from forum.ingest.outcome import Message
from forum.models import Author, Board, Event, Post, Thread
from forum.selectors.pages import board_in_feed


@dataclass
class KindsOutcome:
    """What the batch's side-kind events changed, for its report."""

    messages: list[Message] = field(default_factory=list)
    boards: set[str] = field(default_factory=set)
    threads: set[str] = field(default_factory=set)
    all_pages: bool = False  # a shown name changed: every page may show it
    nip05: list[str] = field(default_factory=list)  # pubkeys whose NIP-05 needs a check


def kind_publish(
    event: Event, parsed: nostr.Event, *, state: BatchState, at: datetime, out: KindsOutcome
) -> None:
    event.state, event.waiting_for = Event.State.PUBLISHED, ""
    state.event_changed(event)
    state.tags_add(event, parsed.tags)  # relay filters by #e (what a deletion or edit names)
    if parsed.kind == nostr.KIND_PROFILE:
        _profile(parsed, state=state, at=at, out=out)
    elif parsed.kind == nostr.KIND_DELETION:
        _deletion(parsed, state=state, at=at, out=out)
    else:
        _edit(event, parsed, state=state, at=at, out=out)
    message = {
        "type": "relay.event",
        "payload": {"event_id": event.event_id, "raw": event.raw_json},
    }
    out.messages.append((realtime.PUBLIC_FEED_GROUP, message))


def _profile(parsed: nostr.Event, *, state: BatchState, at: datetime, out: KindsOutcome) -> None:
    author = state.author(parsed.pubkey, seen_at=at)
    if not kinds.newer(
        parsed.created_at, parsed.id, (author.profile_created_at, author.profile_ref)
    ):
        return  # an older profile paid late: kept and verifiable, not shown
    profile = kinds.profile_read(parsed)
    if profile.nip05 != author.profile_nip05 or not profile.nip05:
        author.nip05_verified, author.nip05_error, author.nip05_checked_at = "", "", None
        if profile.nip05:
            out.nip05.append(author.pubkey)
    author.profile_ref, author.profile_created_at = parsed.id, parsed.created_at
    author.profile_name, author.profile_about = profile.name, profile.about
    author.profile_picture, author.profile_nip05 = profile.picture, profile.nip05
    author.profile_lud16 = profile.lud16
    state.profiles_changed[author.pubkey] = author
    out.all_pages = True


def _deletion(parsed: nostr.Event, *, state: BatchState, at: datetime, out: KindsOutcome) -> None:
    for target_id in kinds.deletion_targets(parsed):
        target = state.event(target_id)
        if target is None or target.pubkey != parsed.pubkey:
            continue  # the verdict refuses these; never touch someone else's post
        if target.deleted_at is None:
            target.deleted_at, target.deleted_by_ref = at, parsed.id
            state.event_changed(target)
        # Rows as the batch primed them; board and author come from the batch's own maps, so
        # no deletion reads a related row on its own.
        board = _board(state, target.board_id)
        author = state.author(target.pubkey, seen_at=at)
        if target.kind == nostr.KIND_THREAD:
            thread = state.thread(target_id)
            if thread is not None:
                _thread_hide(thread, board=board, author=author, state=state, out=out)
        else:
            post = state.post(target_id)
            if post is not None:
                _post_hide(post, board=board, author=author, state=state, out=out)


def _board(state: BatchState, board_id: int | None) -> Board:
    """The batch's own row of a board (every board is read once per batch)."""
    for board in state.boards.values():
        if board.pk == board_id:
            return board
    raise LookupError(f"board {board_id} is not in this batch's boards")


def _thread_hide(
    thread: Thread, *, board: Board, author: Author, state: BatchState, out: KindsOutcome
) -> None:
    thread_id = thread.event.event_id
    out.boards.add(board.slug)
    out.threads.add(thread_id)
    if thread.is_hidden:
        return
    thread.is_hidden = True
    if thread.pk is not None:
        state.hidden_threads[thread.pk] = thread
    # As `moderation.hide`: the opening post and its visible replies leave the board's count.
    replies = state.counter_value(thread, "reply_count")
    state.add(board, thread_count=-1, post_count=-(1 + replies))
    state.add(author, thread_count=-1)
    state.touched_threads.discard(thread.pk)
    payload = {"event_id": thread_id, "thread": thread_id, "number": 0}
    out.messages.extend(_hidden_messages(thread_id, board, payload))


def _post_hide(
    post: Post, *, board: Board, author: Author, state: BatchState, out: KindsOutcome
) -> None:
    thread = post.thread
    thread_id = thread.event.event_id
    out.boards.add(board.slug)
    out.threads.add(thread_id)
    if post.is_hidden:
        return
    post.is_hidden = True
    if post.pk is not None:
        state.hidden_posts[post.pk] = post
    state.add(thread, reply_count=-1)
    state.add(author, reply_count=-1)
    if not thread.is_hidden:
        state.add(board, post_count=-1)
    payload = {"event_id": post.event.event_id, "thread": thread_id, "number": post.number}
    out.messages.extend(_hidden_messages(thread_id, board, payload))


def _hidden_messages(thread_id: str, board: Board, payload: dict) -> list[Message]:
    """The same `post.hidden` messages a moderator's hide sends: open thread, board and home
    pages remove the post (a thread, its replies)."""
    message = {"type": "post.hidden", "payload": payload}
    groups = [realtime.thread_group(thread_id), realtime.board_group(board.slug)]
    if board_in_feed(board):
        groups.append(realtime.PUBLIC_FEED_GROUP)
    return [(group, message) for group in groups]


def _edit(
    event: Event, parsed: nostr.Event, *, state: BatchState, at: datetime, out: KindsOutcome
) -> None:
    edit = kinds.edit_read(parsed)
    event.target_ref = edit.target
    target = state.event(edit.target)
    if target is None or target.pubkey != parsed.pubkey:
        return
    row: Thread | Post | None
    if target.kind == nostr.KIND_THREAD:
        row = state.thread(edit.target)
        thread = row
    else:
        row = state.post(edit.target)
        thread = row.thread if row is not None else None
    if row is None or thread is None:
        return
    out.boards.add(_board(state, target.board_id).slug)
    out.threads.add(thread.event.event_id)
    if not kinds.newer(parsed.created_at, parsed.id, (row.edited_created_at, row.edited_ref)):
        return  # an older edit paid late: in the history, not shown
    row.content = edit.content
    if isinstance(row, Thread) and edit.title is not None:
        row.title = edit.title
    row.edited_ref, row.edited_created_at, row.edited_at = parsed.id, parsed.created_at, at
    if row.pk is not None:
        (state.edited_threads if isinstance(row, Thread) else state.edited_posts)[row.pk] = row
    if isinstance(row, Thread) and row.pk is not None:
        state.touched_threads.add(row.pk)  # its board row (title) is sent again, re-rendered
    # Open thread pages swap the card for the new version (or say the opening post changed).
    number = row.number if isinstance(row, Post) else 0
    payload = {"event_id": edit.target, "thread": thread.event.event_id, "number": number}
    out.messages.append(
        (realtime.thread_group(thread.event.event_id), {"type": "post.edited", "payload": payload})
    )
