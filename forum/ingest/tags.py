"""The relay's tag index keys of an event (see `forum.relay.index`): written by the batch that
publishes it, so the pipeline owns the key function and the relay reads it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from forum.models import Event, EventTag


def tag_key(letter: str, value: str) -> str:
    """The index key of a tag: a digest, because values are unbounded client text."""
    # surrogatepass: JSON may carry a lone surrogate ("\ud800"), which strict UTF-8 refuses.
    text = f"{letter}\x00{value}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:32]


def indexed_keys(tags: Iterable[Sequence[Any]]) -> frozenset[str]:
    """The keys of an event's tags that filters can ask for (single ASCII letter names)."""
    return frozenset(
        tag_key(tag[0], tag[1])
        for tag in tags
        if len(tag) >= 2
        and isinstance(tag[0], str)
        and len(tag[0]) == 1
        and tag[0].isascii()
        and tag[0].isalpha()
        and isinstance(tag[1], str)
    )


def event_tag_rows(event: Event, tags: Iterable[Sequence[Any]]) -> list[EventTag]:
    """`event`'s index rows, unsaved: a batch publisher bulk-creates them with its others
    (`ignore_conflicts=True`, so a replay that finds them there is harmless)."""
    return [EventTag(event=event, key=key) for key in indexed_keys(tags)]
