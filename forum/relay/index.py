"""The relay's tag index: which events carry a single-letter tag with a given first value.

NIP-01 filters match `#<letter>` against the first value of each tag named by one ASCII
letter, and expects relays to index exactly those. Each published event gets one `EventTag`
row per distinct (letter, first value), keyed by a digest of the pair, so any value (a 64 KB
one included) fits an index entry on every database, and a filter's values become one
`key IN (...)` lookup on that index instead of a substring scan of every stored event.

The rows are written when an event is published (in the reconcile batch, with its other
inserts: `forum.ingest.batch.BatchState.tags_add`), deleted with their event, and backfilled
by migration 0008.
"""

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


def indexed_keys(tags: Iterable[Sequence[Any]]) -> set[str]:
    """The keys of an event's tags that filters can ask for (single ASCII letter names)."""
    return {
        tag_key(tag[0], tag[1])
        for tag in tags
        if len(tag) >= 2
        and isinstance(tag[0], str)
        and len(tag[0]) == 1
        and tag[0].isascii()
        and tag[0].isalpha()
        and isinstance(tag[1], str)
    }


def event_tags_index(event: Event, tags: Iterable[Sequence[Any]]) -> None:
    """Write `event`'s index rows (idempotent: a replay finds them there)."""
    rows = [EventTag(event=event, key=key) for key in indexed_keys(tags)]
    EventTag.objects.bulk_create(rows, ignore_conflicts=True)
