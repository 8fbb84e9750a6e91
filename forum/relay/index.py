"""The relay's tag index: which events carry a single-letter tag with a given first value.

NIP-01 filters match `#<letter>` against the first value of each tag named by one ASCII
letter, and expects relays to index exactly those. Each published event gets one `EventTag`
row per distinct (letter, first value), keyed by a digest of the pair, so any value (a 64 KB
one included) fits an index entry on every database, and a filter's values become one
`key IN (...)` lookup on that index instead of a substring scan of every stored event.

The rows are written when an event is published (in the reconcile batch, with its other
inserts: `forum.ingest.batch.BatchState.tags_add`), deleted with their event, and backfilled
by migration 0008. An event published without them is invisible to `#<letter>` filters (other
than `#h`), so every publishing path must write them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from forum.ingest.tags import (  # noqa: F401 (the index API)
    event_tag_rows,
    indexed_keys,
    tag_key,
)
from forum.models import Event, EventTag


def event_tags_index(event: Event, tags: Iterable[Sequence[Any]]) -> None:
    """Write `event`'s index rows (idempotent: a replay finds them there)."""
    EventTag.objects.bulk_create(event_tag_rows(event, tags), ignore_conflicts=True)
