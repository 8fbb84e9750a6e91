"""NIP-01 subscription filters as pure functions: parse what a client sent, match an event.

No Django and no I/O, so the same code decides what a stored query returns (as a re-check
after the database prefilter) and which live events an open subscription receives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAG_KEY = re.compile(r"#([A-Za-z])")
# NIP-01 requires exact 64-char lowercase hex for ids, authors, #e and #p. NIP-22 gives the
# uppercase E/P the same meaning (root event / root author), so they get the same check.
_HEX_TAGS = frozenset("eEpP")
_MAX_KIND = 65535
# Larger than any unix time a filter can sensibly hold; keeps SQL integers in range.
_MAX_TIMESTAMP = 2**53


class FilterError(ValueError):
    """A filter the relay will not run. ``str()`` is a NIP-01 ``prefix: text`` message."""

    def __init__(self, prefix: str, text: str) -> None:
        super().__init__(f"{prefix}: {text}")
        self.prefix = prefix
        self.text = text


@dataclass(frozen=True)
class Filter:
    """One parsed filter. ``None`` means "no condition"; an empty set matches nothing."""

    ids: frozenset[str] | None = None
    authors: frozenset[str] | None = None
    kinds: frozenset[int] | None = None
    # (letter, accepted first values), sorted by letter so equal filters compare equal.
    tags: tuple[tuple[str, frozenset[str]], ...] = ()
    since: int | None = None
    until: int | None = None
    limit: int | None = None
    # NIP-50: the words to search for (the forum's search, forum.selectors.search).
    search: str | None = None

    @property
    def can_match(self) -> bool:
        """False when some condition can never hold (an empty list, since after until)."""
        sets: list[frozenset[Any] | None] = [self.ids, self.authors, self.kinds]
        sets.extend(values for _, values in self.tags)
        if any(values is not None and not values for values in sets):
            return False
        return not (self.since is not None and self.until is not None and self.since > self.until)


def _invalid(text: str) -> FilterError:
    return FilterError("invalid", text)


def _int_field(obj: Mapping[str, Any], key: str, maximum: int) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    # bool is an int subclass in Python, but `true` is not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _invalid(f"{key} must be an integer between 0 and {maximum}")
    return value


def _list_field(obj: Mapping[str, Any], key: str) -> list[Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _invalid(f"{key} must be a list")
    return value


def _hex_values(values: list[Any], key: str) -> frozenset[str]:
    for value in values:
        if not isinstance(value, str) or _HEX64.fullmatch(value) is None:
            raise _invalid(f"{key} values must be 64-character lowercase hex")
    return frozenset(values)


def parse_filter(obj: object, *, max_values: int = 1000) -> Filter:
    """Validate one filter object from a ``REQ``; raises :class:`FilterError`.

    Unknown fields are refused rather than ignored: a client that sends a field this relay
    does not know and silently gets every event back would show its user wrong results.
    ``search`` (NIP-50) is answered by the forum's own full-text search.
    """
    if not isinstance(obj, dict):
        raise _invalid("each filter must be a JSON object")
    tags: dict[str, frozenset[str]] = {}
    for key in obj:
        if key in ("ids", "authors", "kinds", "since", "until", "limit", "search"):
            continue
        match = _TAG_KEY.fullmatch(key) if isinstance(key, str) else None
        if match is None:
            raise FilterError("unsupported", f"filter field {key!r} is not supported")
        values = _list_field(obj, key) or []
        letter = match.group(1)
        if letter in _HEX_TAGS:
            tags[letter] = _hex_values(values, key)
        else:
            if not all(isinstance(value, str) for value in values):
                raise _invalid(f"{key} values must be strings")
            tags[letter] = frozenset(values)

    ids = _list_field(obj, "ids")
    authors = _list_field(obj, "authors")
    kinds = _list_field(obj, "kinds")
    if kinds is not None and any(
        isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= _MAX_KIND
        for kind in kinds
    ):
        raise _invalid(f"kinds must be integers between 0 and {_MAX_KIND}")
    count = sum(len(values) for values in (ids or [], authors or [], kinds or []))
    count += sum(len(values) for values in tags.values())
    if count > max_values:
        raise _invalid(f"a filter may hold at most {max_values} values, this one has {count}")

    return Filter(
        ids=None if ids is None else _hex_values(ids, "ids"),
        authors=None if authors is None else _hex_values(authors, "authors"),
        kinds=None if kinds is None else frozenset(kinds),
        tags=tuple(sorted(tags.items())),
        since=_int_field(obj, "since", _MAX_TIMESTAMP),
        until=_int_field(obj, "until", _MAX_TIMESTAMP),
        limit=_int_field(obj, "limit", _MAX_TIMESTAMP),
        search=_search_field(obj),
    )


# NIP-50 extensions (`include:spam`, `language:en`...): this relay has no use for them, and
# they are not words to look for.
_SEARCH_EXTENSION = re.compile(r"(?<!\S)(?:include|domain|language|sentiment|nsfw):\S*")
MAX_SEARCH_LENGTH = 200


def _search_field(obj: Mapping[str, Any]) -> str | None:
    value = obj.get("search")
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid("search must be a string")
    if len(value) > MAX_SEARCH_LENGTH:
        raise _invalid(f"search may be at most {MAX_SEARCH_LENGTH} characters")
    words = " ".join(_SEARCH_EXTENSION.sub(" ", value).split())
    if not words:
        raise _invalid("search needs at least one word to look for")
    return words


def first_tag_values(tags: Iterable[Sequence[str]], letter: str) -> set[str]:
    """The values a relay indexes for ``letter``: the first value of each such tag (NIP-01)."""
    return {tag[1] for tag in tags if len(tag) >= 2 and tag[0] == letter}


def matches(flt: Filter, event: Mapping[str, Any]) -> bool:
    """Whether ``event`` (a NIP-01 event object) satisfies every condition of ``flt``."""
    if flt.search is not None:
        # Full-text relevance is the database's (stemming, ranking): a NIP-50 subscription
        # gets the stored matches, best first, and no live events after EOSE.
        return False
    if flt.ids is not None and event["id"] not in flt.ids:
        return False
    if flt.authors is not None and event["pubkey"] not in flt.authors:
        return False
    if flt.kinds is not None and event["kind"] not in flt.kinds:
        return False
    created_at = event["created_at"]
    if flt.since is not None and created_at < flt.since:
        return False
    if flt.until is not None and created_at > flt.until:
        return False
    for letter, values in flt.tags:
        if values.isdisjoint(first_tag_values(event["tags"], letter)):
            return False
    return True


def matches_any(filters: Iterable[Filter], event: Mapping[str, Any]) -> bool:
    """Filters of one ``REQ`` are OR-ed."""
    return any(matches(flt, event) for flt in filters)


def effective_limit(flt: Filter, *, default_limit: int, max_limit: int) -> int:
    """NIP-11 ``max_limit``: the relay clamps a filter's limit rather than refusing it."""
    requested = default_limit if flt.limit is None else flt.limit
    return min(requested, max_limit)


def newest_first_key(event: Mapping[str, Any]) -> tuple[int, str]:
    """NIP-01 order for stored results: newest first, ties broken by the lowest id."""
    return (-event["created_at"], event["id"])
