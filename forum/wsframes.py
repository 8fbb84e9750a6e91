"""One websocket frame, encoded once, written to many of daphne's sockets.

A live message to a thousand readers of one page used to cost, per socket, the channels session
wrapper, daphne's `handle_reply`, autobahn's `sendMessage`/`sendFrame` (UTF-8 encoding, header,
statistics) and then Twisted's write: about 60 µs of Python per socket, most of a fan-out
(docs/benchmarks.md, "fanout"). A server-to-client frame is not masked (RFC 6455 5.1), so
without per-message compression its bytes are the same for every socket: the hub builds them
once (`text_frame`) and hands them to each socket (`FrameWriter`): straight to the socket when
Twisted holds nothing for it (one `send` system call), else behind what it holds.

This reaches below ASGI, so it is used only where it is known to be right: under daphne (the
`send` callable that daphne gives the application is `partial(Server.handle_reply, protocol)`,
recorded in the scope by `ServerSendInScope`), on a socket that is open, not compressed and not
in the middle of a fragmented message. Anywhere else (another ASGI server, the test
communicator, a closing socket) `writer_for` returns None and the caller sends the ordinary
ASGI message.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

SCOPE_KEY = "forum.server_send"


def text_frame(text: str) -> bytes:
    """A final, unmasked text frame carrying `text` (RFC 6455 5.2)."""
    payload = text.encode("utf8")
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


class ServerSendInScope:
    """ASGI middleware: puts the server's own `send` in the scope (as `SCOPE_KEY`), before any
    middleware wraps it, so the hub can find the socket behind a consumer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> Any:
        if scope.get("type") == "websocket":
            scope = {**scope, SCOPE_KEY: send}
        return await self.app(scope, receive, send)


class FrameWriter:
    """Writes pre-encoded frames to one daphne websocket (a `WebSocketProtocol`)."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def write(self, frame: bytes) -> bool:
        """Queue `frame` on the socket; False if it cannot take one now (send it the ASGI way:
        that path knows how to report a closed socket)."""
        # Read with defaults: autobahn and Twisted are not pinned here (daphne is), and an
        # attribute that moved must mean "the ordinary way", never a lost message.
        protocol = self.protocol
        if (
            getattr(protocol, "state", None) != getattr(protocol, "STATE_OPEN", 0)
            or getattr(protocol, "send_state", None) != getattr(protocol, "SEND_STATE_GROUND", 0)
            or getattr(protocol, "_perMessageCompress", True) is not None
        ):
            return False
        transport = getattr(protocol, "transport", None)
        if (
            transport is None
            or not getattr(transport, "connected", False)
            or getattr(transport, "disconnecting", True)
        ):
            return False
        sock = getattr(transport, "socket", None)
        if (
            getattr(transport, "TLS", True)
            or sock is None
            or getattr(transport, "dataBuffer", b"?")
            or getattr(transport, "_tempDataBuffer", [b"?"])
            or getattr(transport, "offset", 1)
        ):
            transport.write(frame)  # behind what Twisted already holds, or through TLS
            return True
        # Nothing queued: write now, as asyncio's transports do, instead of asking the reactor to
        # watch the socket and write on the next turn (two epoll changes and a callback per
        # socket, most of a fan-out's cost). What the socket does not take, Twisted keeps.
        try:
            sent = sock.send(frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # reset or closed under us: Twisted sees it on its next read
            log.debug("live socket gone while writing", exc_info=True)
            return True
        if sent < len(frame):
            transport.write(frame[sent:])
        return True


@functools.cache
def _daphne_types() -> tuple[type, type] | None:
    try:
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # pragma: no cover - daphne is a dependency
        return None
    return Server, WebSocketProtocol


def writer_for(scope: dict) -> FrameWriter | None:
    """A frame writer for the websocket behind this scope, or None (not daphne)."""
    send = scope.get(SCOPE_KEY)
    types = _daphne_types()
    if types is None or not isinstance(send, functools.partial):
        return None
    server_type, protocol_type = types
    bound_to = getattr(send.func, "__self__", None)
    if not isinstance(bound_to, server_type) or getattr(send.func, "__name__", "") != (
        "handle_reply"
    ):
        return None
    if len(send.args) != 1 or not isinstance(send.args[0], protocol_type):
        return None
    return FrameWriter(send.args[0])
