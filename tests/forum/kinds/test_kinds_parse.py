"""Reading kinds 0/5/1010 (pure): the fields the forum shows, what a deletion or edit names,
and the replaceable-event order (later created_at wins, a tie goes to the lowest id)."""

from __future__ import annotations

import json

import pytest

from forum import nostr
from forum.ingest import kinds

KEY = "01" * 32


def event(kind: int, content: str = "", tags: list | None = None) -> nostr.Event:
    return nostr.sign_event(KEY, kind=kind, tags=tags or [], content=content)


def test_newer_prefers_later_then_lowest_id():
    assert kinds.newer(10, "b" * 64, (None, ""))  # nothing shown yet
    assert kinds.newer(11, "f" * 64, (10, "0" * 64))
    assert not kinds.newer(9, "0" * 64, (10, "f" * 64))
    assert kinds.newer(10, "a" * 64, (10, "b" * 64))  # a tie: the lower id wins
    assert not kinds.newer(10, "c" * 64, (10, "b" * 64))
    assert not kinds.newer(10, "b" * 64, (10, "b" * 64))  # the same event is not newer


def test_profile_fields():
    content = {"name": "n", "display_name": "  Shown   Name ", "about": "a", "nip05": "Me@Ex.com"}
    profile = kinds.profile_read(event(0, json.dumps(content)))
    assert profile.name == "Shown Name" and profile.nip05 == "me@ex.com"


@pytest.mark.parametrize(
    "content, why",
    [
        ("[]", "JSON object"),
        (json.dumps({"name": 5}), "must be a string"),
        (json.dumps({"name": "x" * 65}), "over 64"),
        (json.dumps({"picture": "data:image/png;base64,AAAA"}), "http(s) URL"),
        (json.dumps({"nip05": "nobody"}), "name@domain"),
        (json.dumps({"about": "x" * 5000}), "over 4000 bytes"),
    ],
)
def test_unreadable_profiles_say_why(content, why):
    with pytest.raises(kinds.KindError, match=why.replace("(", r"\(").replace(")", r"\)")):
        kinds.profile_read(event(0, content))


def test_deletion_and_edit_targets():
    a, b = "a" * 64, "b" * 64
    assert kinds.deletion_targets(event(5, tags=[["e", a], ["e", b], ["e", a], ["k", "1"]])) == [
        a,
        b,
    ]
    with pytest.raises(kinds.KindError, match="needs e tags"):
        kinds.deletion_targets(event(5))
    with pytest.raises(kinds.KindError, match="64-hex"):
        kinds.deletion_targets(event(5, tags=[["e", "nope"]]))
    edit = kinds.edit_read(event(1010, "new", [["e", a], ["title", "T"]]))
    assert (edit.target, edit.content, edit.title) == (a, "new", "T")
    with pytest.raises(kinds.KindError, match="exactly one e tag"):
        kinds.edit_read(event(1010, "new", [["e", a], ["e", b]]))
    with pytest.raises(kinds.KindError, match="new text"):
        kinds.edit_read(event(1010, "  ", [["e", a]]))
