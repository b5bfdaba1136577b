"""The ASGI app every Stratus service is built from.

``create_app`` gives a Starlette app with: request IDs (``x-openstack-request-id``,
taken from the caller when it sent a well-formed one), one access-log line per
request, OpenStack-shaped error bodies for every failure (including unknown
routes, wrong methods and database outages, which become 503), and a
``/healthcheck`` that pings the database. ``Router`` lets a service write plain
synchronous handlers; they run in a thread pool with the parsed JSON body.
``serve`` runs an app under uvicorn with a graceful shutdown on SIGTERM: the listening
socket closes, every long-poll answers at once ("nothing changed",
:func:`stratus.common.longpoll.drain`), the requests in flight finish (at most
:data:`GRACEFUL_SHUTDOWN` seconds), and the process exits (docs/operations.md,
"Restarts").

Over 500 lines because it is the one place every service's request path, error shapes,
start-up and shutdown are defined; split, each service would import several halves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import inspect
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.common import handover, logs, longpoll, policy
from stratus.common.auth import AuthContext
from stratus.common.config import Config, ConfigError
from stratus.common.db import Database, is_unavailable
from stratus.common.errors import (
    ApiError,
    BadRequest,
    ErrorFormatter,
    PayloadTooLarge,
    ServiceUnavailable,
)
from stratus.common.tls import Tls, use_ca_file

LOG = logging.getLogger("stratus")
ACCESS_LOG = logging.getLogger("stratus.access")
REQUEST_ID_RE = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_JSON_BODY = 1024 * 1024
# Seconds a stopping process gives its requests in flight (the long-polls answer at once);
# the process managers wait longer before they kill (roles/common: stopwaitsecs and
# TimeoutStopSec are 20 s).
GRACEFUL_SHUTDOWN = 15
# Seconds an idle keep-alive connection stays open (uvicorn's default is 5). openstackclient's
# --wait polls every 5 s on one connection: at 5 s the server closed it while the next poll
# was on its way, and the client failed with "Remote end closed connection without response"
# (an e2e reboot --wait, 2026-12-07). Longer than any client's poll interval; a stopping
# process still closes its idle connections at once.
KEEP_ALIVE_TIMEOUT = 75
_DRAINING = (longpoll.DRAINING_HEADER.lower().encode(), b"true")

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def setup_logging(debug: bool = False) -> None:
    """A service's logging (:func:`stratus.common.logs.setup_service_logging`)."""
    logs.setup_service_logging(debug)


def new_request_id() -> str:
    """``req-`` and a random (version 4) UUID, as ``f"req-{uuid.uuid4()}"`` gives, in a
    third of its time."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"req-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RequestIdMiddleware:
    """Gives every request an id, echoes it back, and writes the access log line."""

    def __init__(self, app: ASGIApp, header: str = "x-openstack-request-id") -> None:
        self.app = app
        self.header = header.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(self.header, b"").decode("latin-1")
        request_id = incoming if REQUEST_ID_RE.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((self.header, request_id.encode()))
                if longpoll.draining():  # a long-poll's client polls the next process
                    headers.append(_DRAINING)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            client = scope.get("client") or ("-", 0)
            ACCESS_LOG.info(
                '%s "%s %s" %d %.1fms %s',
                client[0],
                scope["method"],
                scope["path"],
                status[0],
                (time.perf_counter() - started) * 1000,
                request_id,
            )


@dataclass
class Req:
    """What a synchronous handler gets: the request, its JSON body, and the caller."""

    request: Request
    body: Any
    authenticate: Callable[[str], AuthContext] | None = None
    _ctx: AuthContext | None = field(default=None, repr=False)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.path_params)

    @property
    def query(self) -> Any:
        return self.request.query_params

    def header(self, name: str, default: str = "") -> str:
        return self.request.headers.get(name, default)

    @property
    def base_url(self) -> str:
        configured = getattr(self.request.app.state, "public_url", "")
        if configured:
            return str(configured).rstrip("/")
        return f"{self.request.url.scheme}://{self.request.headers.get('host', 'localhost')}"

    @property
    def ctx(self) -> AuthContext:
        """The authenticated caller; 401 if the token is missing or not valid."""
        if self._ctx is None:
            if self.authenticate is None:
                raise RuntimeError("this router has no authenticator")
            self._ctx = self.authenticate(self.header("x-auth-token"))
        return self._ctx


Handler = Callable[[Req], Any]


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_JSON_BODY:
        raise PayloadTooLarge(f"The request body is larger than {MAX_JSON_BODY} bytes.")
    if not raw.strip():
        raise BadRequest("The request body is empty; a JSON object was expected.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None


class Router:
    """Collects routes whose handlers are plain functions of ``Req``.

    A handler returns a dict (sent as JSON with the route's status), a
    ``Response``, or None (204). It runs in a worker thread, so it may use the
    database and other blocking calls directly.
    """

    def __init__(self, authenticate: Callable[[str], AuthContext] | None = None) -> None:
        self.authenticate = authenticate
        self.routes: list[BaseRoute] = []

    def add(
        self, method: str | tuple[str, ...], path: str, status: int = 200,
        body: bool | None = None,
    ) -> Callable[[Handler], Handler]:
        """Route ``method`` (or several methods) on ``path`` to ``fn(req)``; the JSON body
        is read for POST, PUT and PATCH unless ``body`` says otherwise."""
        methods = _methods(method)

        def decorator(fn: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                wants_body = request.method in _BODY_METHODS if body is None else body
                payload = await read_json(request) if wants_body else None
                req = Req(request, payload, self.authenticate)
                result = await run_in_threadpool(fn, req)
                if isinstance(result, Response):
                    return result
                if result is None:
                    return Response(status_code=204)
                return JSONResponse(result, status_code=status)

            endpoint.__name__ = getattr(fn, "__name__", getattr(fn, "func", fn).__name__)
            self.routes.append(Route(path, endpoint, methods=methods))
            return fn

        return decorator

    def include(self, table: Routes, service: Any) -> None:
        """Add every route of ``table`` with its handlers bound to ``service``."""
        for method, path, status, body, fn in table.entries:
            if inspect.iscoroutinefunction(fn):
                self.routes.append(Route(path, self._async_endpoint(fn, service, status),
                                         methods=_methods(method)))
            else:
                self.add(method, path, status, body)(functools.partial(fn, svc=service))

    def _async_endpoint(
        self, fn: Callable[..., Awaitable[Any]], service: Any, status: int
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            result = await fn(Req(request, None, self.authenticate), svc=service)
            if isinstance(result, Response):
                return result
            if result is None:
                return Response(status_code=204)
            return JSONResponse(result, status_code=status)

        endpoint.__name__ = fn.__name__
        return endpoint


_BODY_METHODS = ("POST", "PUT", "PATCH")


def _methods(method: str | tuple[str, ...]) -> list[str]:
    return [method] if isinstance(method, str) else list(method)


class Routes:
    """A resource module's route table.

    Each API module (``stratus/<service>/api/<resource>.py``) declares one
    ``routes = Routes()`` and decorates top-level handler functions with it::

        @routes.add("GET", "/v2.0/ports/{port_id}")
        def show_port(req: Req, svc: NetworkService) -> dict[str, Any]:
            ...

    A handler is a plain function of the request and the service layer, so a
    unit test can import it and call it with a fake of either. A synchronous
    handler gets the parsed JSON body in ``req.body`` and runs in a worker
    thread; an ``async def`` handler gets ``req.body = None``, runs on the
    event loop and reads (or streams) the body itself from ``req.request``.
    The app binds the tables to its service layer with :meth:`Router.include`.
    """

    def __init__(self) -> None:
        self.entries: list[
            tuple[str | tuple[str, ...], str, int, bool | None, Callable[..., Any]]
        ] = []

    def add(
        self, method: str | tuple[str, ...], path: str, status: int = 200,
        body: bool | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated handler for ``method`` (or a tuple of methods, which
        share one route, so a 405 there names them all) on ``path``."""
        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.entries.append((method, path, status, body, fn))
            return fn

        return decorator


def create_app(
    service: str,
    routes: list[BaseRoute],
    error_formatter: ErrorFormatter,
    db: Database | None = None,
    public_url: str = "",
    on_shutdown: list[Callable[[], Any]] | None = None,
    request_id_header: str = "x-openstack-request-id",
) -> Starlette:
    """Build a service's ASGI app around its routes."""

    def error_response(
        status: int, message: str, headers: dict[str, str] | None = None, title: str = ""
    ) -> Response:
        title = title or _TITLES.get(status, "Error")
        return JSONResponse(
            error_formatter(status, title, message), status_code=status, headers=headers
        )

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        # An error may name its own kind (Neutron's "NetworkNotFound"); the stock
        # classes keep the standard title of their status.
        return error_response(exc.status, exc.message, exc.headers, exc.title)

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = "The resource could not be found."
        elif exc.status_code == 405:
            message = "The method is not allowed for this resource."
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> Response:
        if isinstance(exc, sa.exc.SQLAlchemyError) and is_unavailable(exc):
            LOG.error("%s database unavailable: %s", service, exc)
            return error_response(503, f"The {service} database is unavailable; try again later.")
        LOG.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "An unexpected error prevented the server from answering.")

    async def healthcheck(_request: Request) -> Response:
        if db is not None:
            try:
                await run_in_threadpool(_ping, db)
            except Exception as exc:
                LOG.error("healthcheck: %s database unavailable: %s", service, exc)
                return PlainTextResponse("database unavailable", status_code=503)
        return PlainTextResponse("OK")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        drain_on_sigterm()
        if db is not None and handover.under_parent():
            # A reload's new worker opens its database connection before it reports
            # ready, so its first request does not pay for it while the old one drains.
            try:
                await run_in_threadpool(_ping, db)
            except Exception as exc:  # its requests answer 503 as they would anyway
                LOG.warning("%s: the database did not answer at startup: %s", service, exc)
        if handover.under_parent():
            freeze_startup_objects()
        handover.notify_ready()  # under a hand-over parent: this process serves now
        yield
        for fn in on_shutdown or []:
            result = fn()
            if isinstance(result, Awaitable):
                await result
        if db is not None:
            db.dispose()

    app = Starlette(
        routes=[Route("/healthcheck", healthcheck, methods=["GET"]), *routes],
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
        lifespan=lifespan,
    )
    app.state.public_url = public_url
    app.state.service = service
    app.add_middleware(RequestIdMiddleware, header=request_id_header)
    return app


def freeze_startup_objects() -> None:
    """Move every object alive after start-up (modules, classes, configuration: about
    130,000 in a service) out of the garbage collector's reach (``gc.freeze``). They live
    as long as the process; without this each full collection walked them all, a pause of
    20-30 ms in which no request is answered (the p99 of a busy API). Only in a service's
    own worker process (:func:`run_service`): a test process making many apps would keep
    their garbage."""
    gc.collect()
    gc.freeze()


def _ping(db: Database) -> None:
    with db.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def serve(factory: str, host: str, port: int, workers: int = 1, debug: bool = False,
          sock: socket.socket | None = None, tls: Tls | None = None) -> None:
    """Run ``module:factory`` under uvicorn (``workers`` processes sharing one socket);
    SIGTERM stops accepting, answers the long-polls, finishes the requests in flight
    (at most :data:`GRACEFUL_SHUTDOWN` seconds) and exits. A listening socket handed
    over by the process manager (systemd socket activation, :func:`inherited_socket`)
    is served instead of binding ``host:port``: it stays open across a restart, so
    the connections made meanwhile wait in its backlog for the new process instead of
    being refused. ``sock``: serve this listening socket (a hand-over parent's);
    ``tls``: serve https with its certificate (plain http without)."""
    import uvicorn

    from stratus.common.httpproto import CoalescingHttpToolsProtocol

    options: dict[str, Any] = {
        "factory": True,
        # a response's head and body in one send (common/httpproto.py)
        "http": CoalescingHttpToolsProtocol,
        "workers": workers,
        "log_level": "debug" if debug else "info",
        "access_log": False,  # RequestIdMiddleware writes the access log with the id
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
        "proxy_headers": False,
        **(tls or Tls()).uvicorn_options(),
    }
    if sock is None:
        sock = inherited_socket()
        if sock is None:
            uvicorn.run(factory, host=host, port=port, **options)
            return
        LOG.info("serving the socket handed over by the process manager (%s)",
                 sock.getsockname())
    config = uvicorn.Config(factory, **options)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


def inherited_socket() -> socket.socket | None:
    """The listening socket the process manager passed (systemd's socket activation
    protocol: ``LISTEN_PID`` is this process, ``LISTEN_FDS`` at least 1, the socket is
    fd 3), or None; the variables are removed so that no child takes them as its own."""
    pid, count = os.environ.pop("LISTEN_PID", ""), os.environ.pop("LISTEN_FDS", "")
    os.environ.pop("LISTEN_FDNAMES", None)
    if not pid.isdigit() or int(pid) != os.getpid() or not count.isdigit() \
            or int(count) < 1:
        return None
    sock = socket.socket(fileno=3)  # the family and type are read from the socket
    os.set_inheritable(3, False)
    return sock


def drain_on_sigterm() -> bool:
    """Make SIGTERM (and SIGINT) also drain the long-polls of this process
    (:func:`stratus.common.longpoll.drain`) next to what the handler in place does
    (uvicorn's: stop accepting, finish the connections in flight). Called by the app's
    lifespan at startup, in each worker process, once uvicorn's handlers are in place;
    False (nothing done) outside the main thread (an app under a test client)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous) or getattr(previous, "_stratus_drains", False):
            continue

        def handler(signum: int, frame: FrameType | None,
                    previous: Callable[[int, FrameType | None], Any] = previous) -> None:
            previous(signum, frame)
            loop.call_soon_threadsafe(longpoll.drain)

        handler._stratus_drains = True  # type: ignore[attr-defined]
        signal.signal(sig, handler)
    return True


__all__ = ["GRACEFUL_SHUTDOWN", "Req", "Router", "Routes", "ServiceUnavailable", "create_app",
           "drain_on_sigterm", "serve", "setup_logging"]


def run_service(prog: str, description: str | None, section: str, factory: str,
                check: Callable[[Config], object], argv: list[str] | None = None) -> int:
    """The body of every API service's console script: ``--config-file``, the strict
    :meth:`Config.load` (a missing file or an unknown section or key), logging,
    ``check(config)`` to fail fast on a bad setting -- each of these a one-line
    message and exit status 1, no traceback, before uvicorn starts -- then
    the section's ``bind_host``, ``bind_port`` and ``workers`` served through a
    hand-over parent (:mod:`stratus.common.handover`): this process keeps the listening
    socket and the pid, a worker process serves it, and SIGHUP replaces the worker
    without closing the socket (a reload; docs/operations.md). A worker (started by
    the parent with the socket) serves it with :func:`serve`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--config-file", help="default: $STRATUS_CONFIG_FILE or /etc/stratus/stratus.conf"
    )
    args = parser.parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    try:
        config = Config.load()
        debug = config.get_bool("DEFAULT", "debug")
        setup_logging(debug)
        check(config)
        policy.use_file(config.get(section, "policy_file"))  # overrides; ValueError if bad
        bind = (config.get(section, "bind_host"), config.get_int(section, "bind_port"))
        workers = config.get_int(section, "workers", minimum=1)
        tls = Tls.from_config(config, section)
        use_ca_file(config.get(section, "tls_ca_file"))  # the services this one calls
    except (ConfigError, ValueError) as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return 1
    inherited = handover.worker_socket()
    if inherited is not None:  # a worker: serve the parent's socket
        serve(factory, *bind, workers=workers, debug=debug, sock=inherited, tls=tls)
        return 0
    listening = inherited_socket()
    if listening is not None:
        LOG.info("serving the socket handed over by the process manager (%s)",
                 listening.getsockname())
    else:
        listening = handover.bind_socket(*bind)

    def serve_here(sock: socket.socket) -> int:
        serve(factory, *bind, workers=workers, debug=debug, sock=sock, tls=tls)
        return 0

    return handover.run_parent(listening, serve_here, expected=workers)

