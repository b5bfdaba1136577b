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

Over plain http (not TLS) the protocol also offers ASGI's zero-copy send extension
(:data:`ZERO_COPY`, ``scope["extensions"]``): an app that has started a response with a
Content-Length may send a ``{"type": "http.response.zerocopysend", "file": <a binary file
with a descriptor>, "offset": int, "count": int, "more_body": bool}`` message, and that much
of the file goes to the socket with sendfile(2) (the event loop's ``sendfile``), inside the
kernel: no read into the process, no copy into the transport's buffer (issue 17: a 1 GiB
image download spent 0.4-0.8 CPU seconds doing that in stratus-image). ``offset`` absent
means the file's position, ``count`` absent means up to its end. A client that goes away
during the send ends it as with any other send (nothing more is sent); a file shorter than
what was promised closes the connection, so the client sees a short body, never a wrong one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import urllib.parse
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

LOG = logging.getLogger(__name__)

HOLD_MAX = 16 * 1024  # bytes: a response head is well below; a chunk of a stream is not
Headers = list[tuple[bytes, bytes]]
# answer_now(method, path, request headers (lower-case names), client address):
# (response headers, body) of a 200, or None for the ASGI way. It must not block.
AnswerNow = Callable[[str, str, Headers, "tuple[str, int] | None"], "tuple[Headers, bytes] | None"]
ZERO_COPY = "http.response.zerocopysend"  # the ASGI extension's name and message type


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

    @property
    def wrapped(self) -> asyncio.Transport:
        """The transport this one writes to (after :meth:`flush`, for a sendfile)."""
        return self._transport

    def flush(self) -> None:
        """Write what is held now."""
        self._flush()

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


def offers_zero_copy(transport: asyncio.BaseTransport) -> bool:
    """Whether :data:`ZERO_COPY` can be offered on ``transport``: a plain socket's (with
    TLS the data is encrypted in this process, so there is no file to hand the kernel)."""
    return (transport.get_extra_info("sslcontext") is None
            and transport.get_extra_info("socket") is not None)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`
    (``serve`` gives it to uvicorn as its ``http`` protocol)."""

    answer_now: AnswerNow | None = None
    zero_copy = False  # plain http: ZERO_COPY is offered

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self.answer_now = getattr(self.app, "answer_now", None)
        self.zero_copy = offers_zero_copy(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.zero_copy:
            self.scope["extensions"] = {ZERO_COPY: {}}

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if self.zero_copy and isinstance(self.transport, CoalescingTransport):
            app = _ZeroCopyApp(app, cycle, self.transport, self.loop)
        super()._start_asgi_task(cycle, app)

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


class _ZeroCopyApp:
    """The app of one request-response cycle, given a ``send`` that also takes
    :data:`ZERO_COPY` messages (every other message goes to the cycle's own ``send``)."""

    __slots__ = ("_app", "_cycle", "_loop", "_transport")

    def __init__(self, app: Any, cycle: RequestResponseCycle, transport: CoalescingTransport,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._app, self._cycle, self._transport, self._loop = app, cycle, transport, loop

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, self.send)

    async def send(self, message: Any) -> None:
        if message["type"] == ZERO_COPY:
            await self._send_file(message)
        else:
            await self._cycle.send(message)

    async def _send_file(self, message: Any) -> None:
        cycle = self._cycle
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()
        if cycle.disconnected:
            return
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(f"ASGI message {ZERO_COPY!r} sent outside a response's body.")
        if cycle.chunked_encoding:
            raise RuntimeError(f"ASGI message {ZERO_COPY!r} needs a Content-Length response.")
        file = message["file"]
        more_body = message.get("more_body", False)
        if cycle.scope["method"] == "HEAD":
            cycle.expected_content_length = 0
        else:
            offset = message.get("offset")
            if offset is None:
                offset = file.tell()
            count = message.get("count")
            if count is None:
                count = max(os.fstat(file.fileno()).st_size - offset, 0)
            if count > cycle.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            sent = await self._sendfile(file, offset, count)
            if sent is None:  # the client went away
                return
            cycle.expected_content_length -= sent
            if sent < count:
                LOG.error("the file ended %d bytes short of the response's Content-Length; "
                          "closing the connection", count - sent)
                cycle.disconnected = True
                self._transport.close()
                return
        if not more_body:
            if cycle.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            cycle.response_complete = True
            cycle.message_event.set()
            if not cycle.keep_alive:
                self._transport.close()
            cycle.on_response()

    async def _sendfile(self, file: Any, offset: int, count: int) -> int | None:
        """Bytes sent, None when the connection broke (then it is closed)."""
        transport = self._transport
        transport.flush()
        if count == 0:
            return 0
        try:
            return await self._loop.sendfile(transport.wrapped, file, offset, count)
        except (ConnectionError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not transport.is_closing():
                raise  # not a closed transport ("Transport is closing"): a real fault
            self._cycle.disconnected = True
            transport.abort()
            return None
