"""Fuzzing in CI: a few hundred generated inputs per parser (bench/fuzz.py runs 100,000+).

Each property lives in `tests/fuzz/properties.py`: no exception but the documented rejection
escapes, and every rejection carries a reason code. Inputs that once broke a parser are kept
below as plain regression tests.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from forum.models import Rejection
from tests.fuzz import properties as p

# Few enough to keep the whole file well under 30 s on a shared 2-core machine.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_reason_codes_are_rejection_reasons():
    """A code the parsers use is one a rejection row can carry (not the `malformed` fallback)."""
    assert set(Rejection.Reason.values) >= p.PROTOCOL_CODES | p.EVENT_CODES


@FUZZ
@given(p.records())
def test_keysend_records(records):
    p.check_records(records)


@FUZZ
@given(p.part_sets())
def test_multipart_sets(parts):
    p.check_parts(parts)


@FUZZ
@given(p.event_inputs)
def test_event_json(data):
    p.check_event_json(data)


@settings(FUZZ, max_examples=100)
@given(p.bech32_inputs)
def test_npub(text):
    p.check_bech32(text)


@FUZZ
@given(p.filter_objects)
def test_relay_filters(obj):
    p.check_filter(obj)


@pytest.fixture
def relay(transactional_db):
    harness = p.RelayHarness()
    yield harness
    harness.close()


@settings(FUZZ, max_examples=150)
@given(message=p.client_messages())
def test_relay_messages(relay, message):
    relay.check(message)


@pytest.mark.parametrize("message", p.NASTY_STRINGS)
def test_relay_nasty_strings(relay, message):
    relay.check(message)


@pytest.mark.parametrize("text", p.NASTY_STRINGS)
def test_event_nasty_strings(text):
    p.check_event_json(text)


# --- what the fuzzer found --------------------------------------------------------------------


def test_relay_echoes_a_subscription_id_with_a_lone_surrogate(relay):
    """Found by fuzzing: the id arrived as the JSON escape "\\ud800"; the relay's answer could
    not be encoded for the socket and the connection dropped without an answer."""
    assert relay.answers(text='["REQ","\\ud800",{}]') == [["EOSE", "\ud800"]]
    assert relay.answers(text='["REQ","\\ud800"]') == [
        ["CLOSED", "\ud800", "invalid: REQ needs at least one filter"]
    ]


def test_relay_answers_an_event_id_with_a_lone_surrogate(relay):
    (answer,) = relay.answers(text='["EVENT",{"id":"\\udfff"}]')
    assert answer[:3] == ["OK", "\udfff", False]
    assert answer[3].startswith("invalid: missing field(s)")
