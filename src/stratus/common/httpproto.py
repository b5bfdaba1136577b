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
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HOLD_MAX = 16 * 1024  # bytes: a response head is well below; a chunk of a stream is not


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

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
