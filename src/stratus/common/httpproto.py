"""uvicorn's HTTP protocol (httptools) with a response's head and body sent together.

uvicorn writes a response's status line and headers to the socket when the app sends
``http.response.start`` and the body in a second write. On loopback (the metadata proxies,
the services calling identity) each write wakes the reader, and on a busy machine the
woken client runs before the server gets to its second write: two wake-ups and two context
switches per answer, where most of a small answer's wall-clock time went under load
(issue 17: in a profile of stratus-metadata at 100 clients, ``socket.send`` held two
thirds of the server's wall-clock time). :class:`CoalescingTransport` holds back one
small write until the event loop's next turn, so the body that follows in the same turn
goes out with it in one ``send``; a large write or a second one goes out at once (never
more than :data:`HOLD_MAX` bytes held, so a streamed download is not buffered).

An app may also answer a request at once, while uvicorn parses it (:data:`AnswerNow`: the
app object's ``answer_now`` attribute, stratus-metadata's cached answers): a GET or HEAD of
HTTP/1.1 with keep-alive, no request in progress on the connection and the transport not
paused is offered to it first, and when it gives an answer the response (uvicorn's default
headers, the app's headers, the body unless HEAD) is written in one send without an ASGI
task, request-response cycle or ``send`` (a quarter of the server's CPU time for such an
answer, issue 17). Anything it declines -- and every other request -- goes the ASGI way.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

HOLD_MAX = 16 * 1024  # bytes: a response head is well below; a chunk of a stream is not
Headers = list[tuple[bytes, bytes]]
# answer_now(method, path, request headers (lower-case names), client address):
# (response headers, body) of a 200, or None for the ASGI way. It must not block.
AnswerNow = Callable[[str, str, Headers, "tuple[str, int] | None"], "tuple[Headers, bytes] | None"]


class _Answered:
    """The request-response cycle of a request answered at once: complete, so the parser's
    remaining callbacks for that request (body, message complete) do nothing."""

    response_complete = True
    disconnected = False
    keep_alive = True

    def __init__(self) -> None:
        self.message_event = asyncio.Event()


class CoalescingTransport:
    """A transport that sends a small write together with the next one made in the same
    turn of the event loop (or alone at the end of that turn). Everything else is the
    wrapped transport's."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            if 0 < len(data) <= HOLD_MAX:
                self._held = bytes(data)
                self._loop.call_soon(self._flush)
            elif data:
                self._transport.write(data)
            return
        self._held = None
        if len(data) <= HOLD_MAX:
            self._transport.write(held + bytes(data))
        else:  # no copy of a large body: two writes, as without this class
            self._transport.write(held)
            self._transport.write(data)

    def write_now(self, data: bytes) -> None:
        """Send ``data`` (after anything held) without holding it."""
        held, self._held = self._held, None
        self._transport.write(held + data if held else data)

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`
    (``serve`` gives it to uvicorn as its ``http`` protocol)."""

    answer_now: AnswerNow | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self.answer_now = getattr(self.app, "answer_now", None)

    def on_headers_complete(self) -> None:
        if self.answer_now is None or not self._answered_now():
            super().on_headers_complete()

    def _answered_now(self) -> bool:
        """Offer the request to the app's ``answer_now``; True when it was answered."""
        parser = self.parser
        if (self.pipeline or (self.cycle is not None and not self.cycle.response_complete)
                or self.flow.write_paused or self.expect_100_continue
                or parser.get_http_version() != "1.1" or not parser.should_keep_alive()
                or parser.should_upgrade()):
            return False
        method = parser.get_method()
        if method not in (b"GET", b"HEAD"):
            return False
        path = httptools.parse_url(self.url).path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        assert self.answer_now is not None
        found = self.answer_now(method.decode("ascii"), self.root_path + path, self.headers,
                                self.client)
        if found is None:
            return False
        headers, body = found
        content = [STATUS_LINE[200]]
        for name, value in (*self.server_state.default_headers, *headers):
            content += (name, b": ", value, b"\r\n")
        content.append(b"\r\n")
        if method == b"GET":
            content.append(body)
        transport = self.transport
        if isinstance(transport, CoalescingTransport):
            transport.write_now(b"".join(content))
        else:
            transport.write(b"".join(content))
        self.cycle = _Answered()  # type: ignore[assignment]
        self.on_response_complete()  # counts it, arms the keep-alive timeout
        return True
