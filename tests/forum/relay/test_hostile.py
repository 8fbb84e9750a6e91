"""A hostile stream on one socket: huge events, forged signatures, replays and 1,000 EVENTs a
second. Each gets an OK with a NIP-01 reason, nothing is charged, and the relay keeps
answering another client meanwhile."""

from __future__ import annotations

import json
import threading

import pytest
from websockets.sync.client import connect

from forum import nostr
from forum.ingest.balance import balance_of
from forum.models import LedgerEntry
from forum.relay.info import RelayLimits
from tests.forum.relay.factories import make_board, store, thread

pytestmark = pytest.mark.django_db(transaction=True)

PREFIXES = ("invalid:", "blocked:", "duplicate:", "pow:", "rate-limited:", "error:")
SECRET = "0b" * 32


def oks(ws, count: int) -> list[list]:
    answers = []
    while len(answers) < count:
        message = json.loads(ws.recv(timeout=30))
        if message[0] == "OK":
            answers.append(message)
    return answers


def test_a_hostile_socket_is_refused_with_reasons_and_others_are_still_served(live_relay):
    board = make_board()
    published = thread(created_at=1_000)
    store(published, board)
    limits = RelayLimits()

    huge = nostr.thread_event(SECRET, board="general", title="big", content="x" * 70_000)
    forged = nostr.thread_event(SECRET, board="general", title="f", content="c").to_dict()
    forged["sig"] = "00" * 64
    flood = [
        nostr.sign_event(SECRET, kind=11, tags=[["h", "general"], ["title", "t"]], content=str(i))
        for i in range(40)
    ]
    # 1,000 EVENTs: the signed ones again and again (each its own id, so no in-flight dedupe).
    stream = [flood[i % len(flood)].to_dict() for i in range(1_000)]

    seen_by_other: list[list[str]] = []

    def other_client() -> None:
        with connect(live_relay.ws_url) as other:
            for round_ in range(5):
                other.send(json.dumps(["REQ", f"r{round_}", {"kinds": [11]}]))
                ids = []
                while True:
                    message = json.loads(other.recv(timeout=30))
                    if message[0] == "EVENT":
                        ids.append(message[2]["id"])
                    elif message[0] == "EOSE":
                        break
                seen_by_other.append(ids)

    with connect(live_relay.ws_url, max_size=None) as ws:
        ws.send(json.dumps(["EVENT", huge.to_dict()]))
        [answer] = oks(ws, 1)
        assert answer[1:3] == [huge.id, False]
        assert answer[3].startswith("invalid: event message is ")
        assert f"the limit is {limits.max_message_length}" in answer[3]

        ws.send(json.dumps(["EVENT", forged]))
        [answer] = oks(ws, 1)
        assert answer[2] is False and answer[3].startswith("invalid: ")

        ws.send(json.dumps(["EVENT", published.to_dict()]))  # a replay of a published event
        [answer] = oks(ws, 1)
        assert answer[2:] == [True, "duplicate: already have this event"]

        other = threading.Thread(target=other_client)
        other.start()
        for event in stream:  # as fast as the socket takes them
            ws.send(json.dumps(["EVENT", event]))
        answers = oks(ws, len(stream))
        other.join(60)

    assert [a[1] for a in answers] == [e["id"] for e in stream]  # one OK each, in order
    assert all(a[2] is False and a[3].startswith(PREFIXES) for a in answers)
    limited = [a for a in answers if a[3].startswith("rate-limited:")]
    assert len(limited) >= 900
    assert "EVENTs a second on this connection" in limited[0][3]
    # The rest were judged, and refused for want of a balance: nothing charged or recorded.
    assert all(a[3].startswith("blocked: ") for a in answers if a not in limited)
    assert balance_of(nostr.public_key(SECRET)).balance_msat == 0
    assert not LedgerEntry.objects.filter(purpose="spend").exists()
    # The other client was answered every time, with the stored thread.
    assert seen_by_other == [[published.id]] * 5
