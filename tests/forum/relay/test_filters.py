"""forum.relay.filters: parsing and matching as pure functions (no database)."""

from __future__ import annotations

import pytest

from forum.relay.filters import (
    Filter,
    FilterError,
    effective_limit,
    matches,
    matches_any,
    newest_first_key,
    parse_filter,
)

ID_A = "a" * 64
ID_B = "b" * 64
PK_A = "c" * 64
PK_B = "d" * 64

EVENT = {
    "id": ID_A,
    "pubkey": PK_A,
    "created_at": 1_000,
    "kind": 1111,
    "tags": [
        ["E", ID_B, "", PK_B],
        ["K", "11"],
        ["e", ID_B, "", PK_B],
        ["p", PK_B],
        ["h", "general"],
        ["t", "bitcoin"],
        ["t", "nostr"],
        ["x", "not", "first"],
    ],
    "content": "hi",
    "sig": "0" * 128,
}


def check(obj: dict) -> bool:
    return matches(parse_filter(obj), EVENT)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({}, True),
        ({"ids": [ID_A]}, True),
        ({"ids": [ID_B]}, False),
        ({"authors": [PK_A, PK_B]}, True),
        ({"authors": [PK_B]}, False),
        ({"kinds": [11, 1111]}, True),
        ({"kinds": [11]}, False),
        ({"since": 1_000}, True),
        ({"since": 1_001}, False),
        ({"until": 1_000}, True),
        ({"until": 999}, False),
        ({"#E": [ID_B]}, True),
        ({"#e": [ID_B]}, True),
        ({"#e": [ID_A]}, False),
        ({"#p": [PK_B]}, True),
        ({"#h": ["general"]}, True),
        ({"#h": ["other"]}, False),
        ({"#t": ["nostr"]}, True),  # every tag of that name counts, not just the first one
        ({"#t": ["Nostr"]}, False),  # values are exact, case included
        ({"#x": ["not"]}, True),
        ({"#x": ["first"]}, False),  # only a tag's first value is indexed (NIP-01)
        ({"#k": ["11"]}, False),
        ({"#K": ["11"]}, True),
        ({"kinds": [1111], "#h": ["general"], "since": 900, "until": 1_100}, True),
        ({"kinds": [1111], "#h": ["other"], "since": 900}, False),  # AND within a filter
        ({"ids": []}, False),  # an empty list matches nothing
        ({"limit": 0}, True),  # limit is for stored queries, not matching
    ],
)
def test_matching(obj, expected):
    assert check(obj) is expected


def test_filters_of_one_req_are_ored():
    filters = [parse_filter({"kinds": [11]}), parse_filter({"authors": [PK_A]})]
    assert matches_any(filters, EVENT)
    assert not matches_any([parse_filter({"kinds": [11]})], EVENT)


@pytest.mark.parametrize(
    ("obj", "prefix", "fragment"),
    [
        ([], "invalid", "JSON object"),
        ({"ids": "abc"}, "invalid", "must be a list"),
        ({"ids": ["ABC" * 21 + "A"]}, "invalid", "lowercase hex"),
        ({"authors": ["ab"]}, "invalid", "lowercase hex"),  # prefixes are no longer NIP-01
        ({"#e": ["nothex"]}, "invalid", "lowercase hex"),
        ({"#P": [1]}, "invalid", "lowercase hex"),
        ({"#t": [1]}, "invalid", "strings"),
        ({"kinds": ["1"]}, "invalid", "kinds"),
        ({"kinds": [True]}, "invalid", "kinds"),
        ({"kinds": [70_000]}, "invalid", "kinds"),
        ({"since": -1}, "invalid", "since"),
        ({"until": 1.5}, "invalid", "until"),
        ({"limit": False}, "invalid", "limit"),
        ({"search": 7}, "invalid", "search must be a string"),
        ({"search": "include:spam"}, "invalid", "at least one word"),
        ({"search": "x" * 201}, "invalid", "at most 200"),
        ({"fulltext": "x"}, "unsupported", "fulltext"),
        ({"#tt": ["x"]}, "unsupported", "#tt"),
        ({"#1": ["x"]}, "unsupported", "#1"),
    ],
)
def test_invalid_filters_are_refused_with_a_prefix(obj, prefix, fragment):
    with pytest.raises(FilterError) as caught:
        parse_filter(obj)
    assert caught.value.prefix == prefix
    assert str(caught.value).startswith(f"{prefix}: ")
    assert fragment in str(caught.value)


def test_value_count_is_bounded():
    parse_filter({"ids": [ID_A, ID_B], "kinds": [1]}, max_values=3)
    with pytest.raises(FilterError, match="at most 3 values"):
        parse_filter({"ids": [ID_A, ID_B], "#t": ["a", "b"]}, max_values=3)


def test_can_match():
    assert parse_filter({"kinds": [1]}).can_match
    assert not parse_filter({"#t": []}).can_match
    assert not parse_filter({"since": 10, "until": 9}).can_match


def test_limit_is_clamped_and_defaulted():
    assert effective_limit(Filter(limit=10_000), default_limit=100, max_limit=500) == 500
    assert effective_limit(Filter(limit=3), default_limit=100, max_limit=500) == 3
    assert effective_limit(Filter(), default_limit=100, max_limit=500) == 100
    assert effective_limit(Filter(limit=0), default_limit=100, max_limit=500) == 0


def test_order_is_newest_first_then_lowest_id():
    events = [
        {"id": ID_B, "created_at": 5},
        {"id": ID_A, "created_at": 5},
        {"id": "0" * 64, "created_at": 4},
        {"id": "f" * 64, "created_at": 6},
    ]
    ordered = [event["id"] for event in sorted(events, key=newest_first_key)]
    assert ordered == ["f" * 64, ID_A, ID_B, "0" * 64]
