"""Live messages written as pre-encoded frames to daphne's sockets (`forum/wsframes.py`) reach
every reader whole and in order: small and large messages, and a reader too slow to take them
as fast as they come (the socket's buffer full, so the server must queue behind what it holds).

A real daphne serves the app (`live_relay`, in this process); the readers are plain TCP
sockets speaking the websocket protocol through `websockets`' sans-I/O parser, so a test can
stop reading and let the kernel's buffers fill.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.uri import parse_uri

from forum import realtime, wsframes
from tests.forum.relay import conftest as relay_conftest
from tests.forum.relay.conftest import LiveRelay

pytestmark = pytest.mark.django_db(transaction=True)

live_relay = relay_conftest.live_relay  # a real daphne, in this process


class Reader:
    """One websocket on a thread page, read only when asked."""

    def __init__(self, relay: LiveRelay, path: str, *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connect: a small window the server fills at once
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", relay.port))
        self.sock.settimeout(10)
        self.ws = ClientProtocol(
            parse_uri(f"ws://127.0.0.1:{relay.port}{path}"),
            origin=f"http://127.0.0.1:{relay.port}",
            max_size=None,
        )
        self.ws.send_request(self.ws.connect())
        self.sock.sendall(b"".join(self.ws.data_to_send()))
        assert self.messages(1)[0]["type"] == "hello"  # the hub has joined the group

    def messages(self, count: int, timeout: float = 20) -> list[dict]:
        """The next `count` messages told to the browser (batches unpacked), in order."""
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            for event in self.ws.events_received():
                if getattr(event, "opcode", None) != Opcode.TEXT:
                    continue
                frame = json.loads(event.data)
                out += frame["messages"] if frame["type"] == "batch" else [frame]
            if len(out) >= count:
                break
            assert self.ws.parser_exc is None, self.ws.parser_exc  # a garbled stream
            assert time.monotonic() < deadline, f"{len(out)} of {count} messages"
            data = self.sock.recv(1 << 20)
            assert data, "the server closed the socket"
            self.ws.receive_data(data)
        return out

    def read_some(self, size: int) -> None:
        """Take at most `size` bytes off the socket (and parse them), without waiting."""
        self.sock.settimeout(0.05)
        try:
            self.ws.receive_data(self.sock.recv(size))
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(10)

    def close(self) -> None:
        self.sock.close()


def _hidden(number: int, size: int) -> dict:
    # `post.hidden` needs no rendering: what arrives is exactly what was sent.
    return {"event_id": f"{number:064x}", "number": number, "thread": "t", "pad": "é" * size}


def test_small_and_large_messages_reach_every_reader_whole(live_relay, monkeypatch):
    written = []
    monkeypatch.setattr(wsframes.FrameWriter, "write", _spy(wsframes.FrameWriter.write, written))
    readers = [Reader(live_relay, "/ws/thread/frames/") for _ in range(3)]
    # Payload lengths on both sides of the 7-bit, 16-bit and 64-bit length encodings.
    sizes = [0, 40, 200, 40_000, 70_000]
    for number, size in enumerate(sizes, start=1):
        live_relay.group_send(realtime.thread_group("frames"), "post.hidden", _hidden(number, size))
    for reader in readers:
        got = reader.messages(len(sizes))
        assert [m["number"] for m in got] == [1, 2, 3, 4, 5]
        assert [len(m["pad"]) for m in got] == sizes
        reader.close()
    assert written, "daphne's sockets were written the pre-encoded way"


def test_a_slow_reader_gets_everything_in_order_behind_what_the_server_holds(live_relay):
    slow = Reader(live_relay, "/ws/thread/slow/", rcvbuf=4096)
    fast = Reader(live_relay, "/ws/thread/slow/")
    group = realtime.thread_group("slow")
    # Far more than the slow socket's buffers take: the server keeps the rest and must send
    # later frames after it, not into the middle of it.
    for number in range(1, 41):
        live_relay.group_send(group, "post.hidden", _hidden(number, 30_000 if number % 2 else 10))
        time.sleep(0.02)  # the server sends what it can, keeps the rest
        slow.read_some(2048)  # room for a little more, while the server still holds a lot
    assert [m["number"] for m in fast.messages(40)] == list(range(1, 41))
    got = slow.messages(40)
    assert [m["number"] for m in got] == list(range(1, 41))
    assert all(len(m["pad"]) == (30_000 if m["number"] % 2 else 10) for m in got)
    slow.close()
    fast.close()


def _spy(method, calls: list):
    def write(self, frame: bytes) -> bool:
        calls.append(len(frame))
        return method(self, frame)

    return write
