"""A response's head and body in one send (common/httpproto.py, issue 17): a small write is
held until the next write of the same turn of the event loop or the end of that turn;
large writes, closing and aborting behave as without it; and a real uvicorn server
answers through it (keep-alive, several requests, a streamed body). Over plain sockets it
offers the zero-copy send: parts of a file, kept-alive connections, a file shorter than the
Content-Length, a client that goes away."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from stratus.common.httpproto import (
    HOLD_MAX,
    ZERO_COPY,
    CoalescingHttpToolsProtocol,
    CoalescingTransport,
    offers_zero_copy,
)

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


class _SendsFiles:
    """An ASGI app answering ``GET /<first>/<count>[/<declared>]`` with that part of
    ``path`` through the zero-copy send when offered (``declared``: the Content-Length
    promised, default ``count``); ``/head-first`` sends 3 bytes as a body message and
    the rest of the file through the zero-copy send. It records the extensions seen."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self.offered: list[bool] = []
        self.errors: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        offered = ZERO_COPY in scope.get("extensions", {})
        self.offered.append(offered)
        parts = scope["path"].strip("/").split("/")
        with open(self.path, "rb") as fh:
            if parts == ["head-first"]:
                size = fh.seek(0, 2)
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(size).encode())]})
                fh.seek(0)
                await send({"type": "http.response.body", "body": fh.read(3),
                            "more_body": True})
                await send({"type": ZERO_COPY, "file": fh})  # from the position to the end
                return
            first, count = int(parts[0]), int(parts[1])
            declared = int(parts[2]) if len(parts) > 2 else count
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(declared).encode())]})
            try:
                await send({"type": ZERO_COPY, "file": fh, "offset": first, "count": count})
            except RuntimeError as exc:
                self.errors.append(str(exc))
                raise


def test_zero_copy_send_sends_parts_of_a_file_on_a_kept_alive_connection(tmp_path: Any) -> None:
    data = bytes(range(256)) * 4096 + b"tail s8h"  # 1 MiB and a bit: several sendfile calls
    path = tmp_path / "blob"
    path.write_bytes(data)
    app = _SendsFiles(path)

    def client(port: int) -> list[bytes]:
        got = []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            buf = b""
            for target in (f"/0/{len(data)}", "/5/100", "/7/0", "/head-first", "/3/4"):
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: s8h\r\n\r\n".encode())
                head, body, buf = _read_answer(sock, buf)
                assert head.startswith(b"HTTP/1.1 200")
                got.append(body)
        return got

    assert _serve(app, client) == [data, data[5:105], b"", data, data[3:7]]
    assert app.offered == [True] * 5


def test_zero_copy_send_of_a_file_shorter_than_promised_closes_the_connection(
        tmp_path: Any) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"0123456789")
    app = _SendsFiles(path)

    def client(port: int) -> tuple[bytes, bytes]:
        answers = []
        for target in ("/4/20", "/0/20/10"):  # the file ends early; more than promised
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: s8h\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(65536):  # the server closes the connection
                    data += chunk
                answers.append(data.partition(b"\r\n\r\n")[2])
        return answers[0], answers[1]

    short, refused = _serve(app, client)
    assert short == b"456789"  # a short body and a closed connection, never a wrong one
    assert refused == b""
    assert app.errors == ["Response content longer than Content-Length"]


def test_zero_copy_send_to_a_client_that_went_away_ends_quietly(tmp_path: Any) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"s" * (64 << 20))  # more than the socket buffers hold
    app = _SendsFiles(path)

    def client(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /0/{64 << 20} HTTP/1.1\r\nHost: s8h\r\n\r\n".encode())
            sock.recv(65536)
        # the server is still serving: a new connection gets a whole answer
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /0/5 HTTP/1.1\r\nHost: s8h\r\n\r\n")
            return _read_answer(sock, b"")[1]

    assert _serve(app, client) == b"sssss"
    assert app.errors == []


class _Extras(FakeTransport):
    def __init__(self, **extra: Any) -> None:
        super().__init__()
        self.extra = extra

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)


def test_zero_copy_is_offered_on_plain_sockets_only() -> None:
    with socket.socket() as sock:
        tls = ssl.create_default_context()
        for transport, offered in ((_Extras(socket=sock), True),
                                   (_Extras(socket=sock, sslcontext=tls), False),
                                   (_Extras(), False)):
            assert offers_zero_copy(transport) is offered  # type: ignore[arg-type]
