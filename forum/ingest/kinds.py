"""The forum's side kinds, read from a signed event: profiles (0), deletions (5), edits (1010).

Pure functions over `nostr.Event`, no database: what a kind 0 profile says, which events a
kind 5 deletion (NIP-09) names, which post a kind 1010 edit replaces and with what. Each raises
`KindError` with a sentence when the event cannot be read as its kind; `rules` turns that into
a `malformed` finding and `kinds_publish` applies what was accepted. See docs/protocol.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from forum import nostr

SIDE_KINDS = frozenset({nostr.KIND_PROFILE, nostr.KIND_DELETION, nostr.KIND_EDIT})
# The kinds a deletion or an edit may name: the forum's posts.
POST_KINDS = frozenset({nostr.KIND_THREAD, nostr.KIND_REPLY})

MAX_PROFILE_BYTES = 4_000  # the whole kind 0 content (JSON)
MAX_NAME = 64
MAX_ABOUT = 1_000
MAX_URL = 500
MAX_IDENTIFIER = 200
MAX_DELETION_TARGETS = 50
_HEX64 = re.compile(r"[0-9a-f]{64}")
# NIP-05 / LUD-16 identifiers: local part and domain, as NIP-05 allows (a-z0-9-_.).
_IDENTIFIER = re.compile(r"^([a-z0-9._-]+)@([a-z0-9.-]+\.[a-z0-9-]+|localhost)(:[0-9]{1,5})?$")


class KindError(ValueError):
    """The event is not a readable instance of its kind; `str()` says why."""


@dataclass(frozen=True)
class Profile:
    name: str = ""
    about: str = ""
    picture: str = ""
    nip05: str = ""
    lud16: str = ""


@dataclass(frozen=True)
class Edit:
    target: str
    content: str
    title: str | None  # a thread's new title (None: keep it)


def _text(data: dict, key: str, limit: int) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KindError(f"the profile's {key!r} must be a string")
    value = value.strip()
    if len(value) > limit:
        raise KindError(f"the profile's {key!r} is {len(value)} characters, over {limit}")
    return value


def identifier_split(value: str) -> tuple[str, str] | None:
    """("name", "domain[:port]") of a NIP-05 identifier, or None when it is not one."""
    match = _IDENTIFIER.match(value.lower())
    if match is None:
        return None
    return match.group(1), match.group(2) + (match.group(3) or "")


def profile_read(parsed: nostr.Event) -> Profile:
    """The fields of a kind 0 event the forum shows (others are kept in the signed event)."""
    if len(parsed.content.encode("utf-8", "surrogatepass")) > MAX_PROFILE_BYTES:
        raise KindError(f"the profile is over {MAX_PROFILE_BYTES} bytes")
    try:
        data = json.loads(parsed.content)
    except ValueError:
        raise KindError("a kind 0 profile's content must be a JSON object") from None
    if not isinstance(data, dict):
        raise KindError("a kind 0 profile's content must be a JSON object")
    # NIP-24's display_name is the friendlier name when a client sets both.
    name = _text(data, "display_name", MAX_NAME) or _text(data, "name", MAX_NAME)
    picture = _text(data, "picture", MAX_URL)
    if picture and not picture.lower().startswith(("https://", "http://")):
        raise KindError("the profile's 'picture' must be an http(s) URL")
    nip05 = _text(data, "nip05", MAX_IDENTIFIER).lower()
    if nip05 and identifier_split(nip05) is None:
        raise KindError(f"the profile's 'nip05' {nip05[:80]!r} is not name@domain")
    lud16 = _text(data, "lud16", MAX_IDENTIFIER).lower()
    if lud16 and identifier_split(lud16) is None:
        raise KindError(f"the profile's 'lud16' {lud16[:80]!r} is not name@domain")
    name = " ".join(name.split())  # one line: no newlines or runs of spaces in a byline
    return Profile(name, _text(data, "about", MAX_ABOUT), picture, nip05, lud16)


def deletion_targets(parsed: nostr.Event) -> list[str]:
    """The event ids a kind 5 deletion names (its `e` tags), in order, without repeats."""
    targets: list[str] = []
    for tag in parsed.tags:
        if len(tag) >= 2 and tag[0] == "e":
            if not isinstance(tag[1], str) or not _HEX64.fullmatch(tag[1]):
                raise KindError("a deletion's e tags must hold 64-hex event ids")
            if tag[1] not in targets:
                targets.append(tag[1])
    if not targets:
        raise KindError("a kind 5 deletion needs e tags naming the events to delete")
    if len(targets) > MAX_DELETION_TARGETS:
        raise KindError(f"a deletion names at most {MAX_DELETION_TARGETS} events here")
    return targets


def edit_read(parsed: nostr.Event) -> Edit:
    """The post a kind 1010 edit replaces (its one `e` tag) and the new text."""
    refs = [tag[1] for tag in parsed.tags if len(tag) >= 2 and tag[0] == "e"]
    if len(refs) != 1 or not isinstance(refs[0], str) or not _HEX64.fullmatch(refs[0]):
        raise KindError("an edit needs exactly one e tag: the id of the post it replaces")
    if not parsed.content.strip():
        raise KindError("an edit needs the new text as its content (delete with kind 5)")
    return Edit(refs[0], parsed.content, parsed.tag_value("title"))


def side_refs(parsed: nostr.Event) -> list[str]:
    """The events a side-kind event names (for a batch to read them ahead); [] when unreadable."""
    try:
        if parsed.kind == nostr.KIND_DELETION:
            return deletion_targets(parsed)
        if parsed.kind == nostr.KIND_EDIT:
            return [edit_read(parsed).target]
    except KindError:
        pass
    return []


def newer(created_at: int, event_id: str, than: tuple[int | None, str]) -> bool:
    """Replaceable-event order (NIP-01): later `created_at` wins; a tie goes to the lowest id."""
    current_at, current_id = than
    if current_at is None or not current_id:
        return True
    return (created_at, _neg(event_id)) > (current_at, _neg(current_id))


def _neg(event_id: str) -> str:
    # The lowest id wins a tie: compare complemented hex digits.
    return event_id.translate(str.maketrans("0123456789abcdef", "fedcba9876543210"))
