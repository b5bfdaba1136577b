"""A response's head and body in one send (common/httpproto.py, issue 17): a small write is
held until the next write of the same turn of the event loop or the end of that turn;
large writes, closing and aborting behave as without it; and a real uvicorn server
answers through it (keep-alive, several requests, a streamed body)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from stratus.common.httpproto import HOLD_MAX, CoalescingHttpToolsProtocol, CoalescingTransport

pytestmark = pytest.mark.unit


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = self.eof = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def write_eof(self) -> None:
        self.eof = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return f"s8h-{name}"


def _pair() -> tuple[asyncio.AbstractEventLoop, FakeTransport, CoalescingTransport]:
    loop = asyncio.new_event_loop()
    fake = FakeTransport()
    return loop, fake, CoalescingTransport(fake, loop)


def _turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_head_and_body_of_one_turn_go_out_in_one_write() -> None:
    loop, fake, transport = _pair()
    try:
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert fake.writes == []  # held
        transport.write(b"body")
        assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        _turn(loop)
        assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]  # nothing sent twice
    finally:
        loop.close()


def test_a_lone_small_write_goes_out_at_the_end_of_the_turn() -> None:
    loop, fake, transport = _pair()
    try:
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        _turn(loop)
        assert fake.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        transport.write(b"")
        _turn(loop)
        assert fake.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    finally:
        loop.close()


def test_large_writes_are_not_held_nor_copied_together() -> None:
    loop, fake, transport = _pair()
    try:
        big = b"x" * (HOLD_MAX + 1)
        transport.write(big)
        assert fake.writes == [big]
        transport.write(b"head")
        transport.write(big)  # the held head first, then the large body as it is
        assert fake.writes == [big, b"head", big]
        for _ in range(3):  # a stream: after the first, every chunk goes out at once
            transport.write(b"chunk")
            transport.write(b"chunk")
        _turn(loop)
        assert b"".join(fake.writes[3:]) == b"chunk" * 6
    finally:
        loop.close()


def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    loop, fake, transport = _pair()
    try:
        transport.write(b"last words")
        transport.close()
        assert fake.writes == [b"last words"] and fake.closed
        _turn(loop)
        assert fake.writes == [b"last words"]
        loop2, fake2, transport2 = _pair()
        transport2.write(b"dropped")
        transport2.abort()
        _turn(loop2)
        assert fake2.writes == [] and fake2.aborted
        loop2.close()
        loop3, fake3, transport3 = _pair()
        transport3.write(b"before eof")
        transport3.write_eof()
        assert fake3.writes == [b"before eof"] and fake3.eof
        loop3.close()
    finally:
        loop.close()


def test_everything_else_is_the_wrapped_transports() -> None:
    loop, _fake, transport = _pair()
    try:
        assert transport.get_extra_info("peername") == "s8h-peername"
        assert not transport.is_closing()
    finally:
        loop.close()


async def _home(_request: Request) -> Response:
    return PlainTextResponse("s8h " * 10)


async def _stream(_request: Request) -> Response:
    async def chunks() -> Any:
        for n in range(5):
            yield f"part{n};".encode()
            await asyncio.sleep(0)
        yield b"y" * (HOLD_MAX * 2)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


def _read_answer(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, the rest) of one answer with Content-Length or chunked encoding."""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, rest = buf.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body, rest = body + rest[:size], rest[size + 2:]
            if size == 0:
                return head, body, rest
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest[:length], rest[length:]


def test_a_real_server_answers_through_it() -> None:
    app = Starlette(routes=[Route("/", _home), Route("/stream", _stream)])
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, http=CoalescingHttpToolsProtocol,
                                           log_level="warning", lifespan="off"))

    def client() -> list[tuple[bytes, bytes]]:
        got = []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            buf = b""
            for path in ("/", "/stream", "/", "/"):  # one keep-alive connection
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: s8h\r\n\r\n".encode())
                head, body, buf = _read_answer(sock, buf)
                got.append((head.split(b"\r\n")[0], body))
        return got

    async def main() -> list[tuple[bytes, bytes]]:
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            return await asyncio.to_thread(client)
        finally:
            server.should_exit = True
            await serving

    answers = asyncio.run(main())
    listening.close()
    small = (b"HTTP/1.1 200 OK", b"s8h " * 10)
    assert answers[0] == small and answers[2] == small and answers[3] == small
    assert answers[1] == (b"HTTP/1.1 200 OK",
                          b"".join(f"part{n};".encode() for n in range(5)) + b"y" * HOLD_MAX * 2)


class _AnswersNow:
    """An ASGI app that answers GET/HEAD of /now at once (``answer_now``) and everything
    else through ASGI; it records which way each request went."""

    def __init__(self) -> None:
        self.now: list[tuple[str, str, bytes]] = []
        self.asgi: list[tuple[str, str]] = []

    def answer_now(self, method: str, path: str, headers: list[tuple[bytes, bytes]],
                   client: tuple[str, int] | None
                   ) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        if path != "/now":
            return None
        self.now.append((method, path, dict(headers).get(b"x-s8h", b"")))
        return [(b"content-length", b"7"), (b"content-type", b"text/plain")], b"now s8h"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.asgi.append((scope["method"], scope["path"]))
        body = f"asgi {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _serve(app: Any, client: Any) -> Any:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, http=CoalescingHttpToolsProtocol,
                                           log_level="warning", lifespan="off",
                                           proxy_headers=False))

    async def main() -> Any:
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            return await asyncio.to_thread(client, port)
        finally:
            server.should_exit = True
            await serving

    try:
        return asyncio.run(main())
    finally:
        listening.close()


def test_an_app_may_answer_a_get_at_once_and_declines_go_the_asgi_way() -> None:
    app = _AnswersNow()

    def client(port: int) -> list[tuple[bytes, bytes]]:
        got = []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            buf = b""
            for request in (b"GET /now HTTP/1.1\r\nHost: s8h\r\nX-S8h: one\r\n\r\n",
                            b"GET /other HTTP/1.1\r\nHost: s8h\r\n\r\n",
                            b"POST /now HTTP/1.1\r\nHost: s8h\r\nContent-Length: 2\r\n\r\nhi",
                            b"GET /now?x=1 HTTP/1.1\r\nHost: s8h\r\nX-S8h: two\r\n\r\n"):
                sock.sendall(request)
                head, body, buf = _read_answer(sock, buf)
                got.append((head, body))
            # two requests in one send (pipelined): the second arrives while the first is
            # in progress, so it is queued the ASGI way (answered after the first)
            sock.sendall(b"GET /other HTTP/1.1\r\nHost: s8h\r\n\r\n"
                         b"GET /now HTTP/1.1\r\nHost: s8h\r\nX-S8h: three\r\n\r\n")
            for _ in range(2):
                head, body, buf = _read_answer(sock, buf)
                got.append((head, body))
            sock.sendall(b"HEAD /now HTTP/1.1\r\nHost: s8h\r\n\r\n")
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            got.append((buf.partition(b"\r\n\r\n")[0], buf.partition(b"\r\n\r\n")[2]))
        return got

    got = _serve(app, client)
    bodies = [body for _, body in got]
    assert bodies == [b"now s8h", b"asgi /other", b"asgi /now", b"now s8h", b"asgi /other",
                      b"asgi /now", b""]
    for head, _ in got:
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\ndate: " in head and b"\r\nserver: uvicorn" in head
    assert b"content-length: 7" in got[0][0] and b"content-length: 7" in got[-1][0]
    assert [(m, h) for m, _, h in app.now] == [("GET", b"one"), ("GET", b"two"),
                                               ("HEAD", b"")]
    assert all(path == "/now" for _, path, _ in app.now)  # the path without the query
    assert app.asgi == [("GET", "/other"), ("POST", "/now"), ("GET", "/other"),
                        ("GET", "/now")]


def test_no_keep_alive_goes_the_asgi_way() -> None:
    app = _AnswersNow()

    def client(port: int) -> list[bytes]:
        got = []
        for request in (b"GET /now HTTP/1.1\r\nHost: s8h\r\nConnection: close\r\n\r\n",
                        b"GET /now HTTP/1.0\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(65536):  # the server closes the connection
                    data += chunk
                got.append(data.partition(b"\r\n\r\n")[2])
        return got

    assert _serve(app, client) == [b"asgi /now", b"asgi /now"]
    assert app.now == [] and app.asgi == [("GET", "/now"), ("GET", "/now")]
