"""Reads of the side kinds for public pages: a post's versions (kind 1010 edits)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from forum import nostr
from forum.models import Event, Post, Thread
from forum.selectors.pages import event_locate


@dataclass(frozen=True)
class Version:
    event_id: str
    created_at: int
    content: str
    title: str | None
    current: bool
    original: bool

    @property
    def signed_at(self) -> datetime:
        """The date its author signed it (`created_at`), for people."""
        return datetime.fromtimestamp(self.created_at, UTC)


@dataclass(frozen=True)
class History:
    thread: Thread
    post: Post | None
    versions: list[Version]  # newest first (the order edits are applied in)

    @property
    def subject(self) -> Thread | Post:
        return self.post if self.post is not None else self.thread


def edit_history(event_id: str) -> History:
    """The signed original of a visible thread or reply and its published edits (two queries;
    404 for what the public pages do not show)."""
    located = event_locate(event_id)
    subject = located.post if located.post is not None else located.thread
    edits = Event.objects.filter(
        kind=nostr.KIND_EDIT,
        target_ref=event_id,
        state=Event.State.PUBLISHED,
        pubkey=subject.event.pubkey,
    ).order_by("-created_at", "event_id")
    versions = []
    for edit in edits:
        parsed = nostr.parse_event(edit.raw_json)
        versions.append(
            Version(
                edit.event_id,
                edit.created_at,
                parsed.content,
                parsed.tag_value("title"),
                edit.event_id == subject.edited_ref,
                False,
            )
        )
    original = nostr.parse_event(subject.event.raw_json)
    versions.append(
        Version(
            event_id,
            original.created_at,
            original.content,
            original.tag_value("title"),
            not subject.edited_ref,
            True,
        )
    )
    return History(located.thread, located.post, versions)
