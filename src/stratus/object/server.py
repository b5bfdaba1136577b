"""stratus-object-server: one storage host's devices over an internal HTTP API.

It serves the ring devices whose ``host:port`` is its own ``[object_server] bind_host``
and ``bind_port`` (the management address) to the proxy (``stratus-object``) and to the
replicators of the other storage hosts (:mod:`stratus.object.remote` is the client).
Every request carries ``X-Object-Secret``, the shared ``[object_server] secret``: one
secret on the management network rather than identity tokens, because every replica of
every request would otherwise cost a token validation against identity, and a storage
host should keep serving its peers' replication while identity is down. TLS as every API
(``tls_cert_file``).

``/healthcheck``                       GET: 200 (no secret: the deploy's health check)
``/dev/<id>``                          GET: 200 when the device is mounted (507 if not)
``/dev/<id>/objects/<part>/<hash>``    GET: the newest state (JSON; 404: nothing here);
                                       PUT: install files (``X-Object-Files``), or
                                       a proxy's streamed PUT (``X-Object-Stream``,
                                       frames: data, then the metadata); POST
                                       ``?ts=``: metadata (202; 404 without data)
``/dev/<id>/objects/<part>/<hash>/<ts>.data``  GET: the bytes (``Range``: one range)
``/dev/<id>/partitions[/<part>[/digest]]``    GET: partitions, object states, digest
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from stratus.common import handover
from stratus.common.app import drain_on_sigterm, run_service, setup_logging
from stratus.common.config import Config, ConfigError
from stratus.common.crashpoints import arm, crash_point
from stratus.object import ring as ringfile
from stratus.object.dbapi import db_routes
from stratus.object.diskfile import Device
from stratus.object.remote import FILES_HEADER, SECRET_HEADER, STREAM_HEADER, FrameReader
from stratus.object.store import iter_file

SECTION = "object_server"
LOG = logging.getLogger("stratus.object.server")
HASH = re.compile(r"^[0-9a-f]{32}$")
TS = re.compile(r"^\d{10}\.\d{5}$")
FILE = re.compile(r"^\d{10}\.\d{5}\.(data|json|meta|ts)$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
STREAM_BATCH = 1 << 20  # bytes of a streamed PUT gathered before one write to disk


class BadRequest(Exception):
    """A malformed internal request (400 naming what is wrong)."""


def local_devices(ring_file: str, host: str, port: int) -> dict[int, Device]:
    """The ring's devices this server serves (``host:port`` is its own)."""
    ring = ringfile.load(ring_file)
    return {d.id: Device(d.id, d.path) for d in ring.devices
            if d.host == host and d.port == port}


def create_app(devices: Callable[[], dict[int, Device]], secret: str) -> Starlette:
    """The internal API over ``devices()`` (re-read per request: the ring may change)."""
    expected = secret.encode()

    def device(req: Request) -> Device:
        given = req.headers.get(SECRET_HEADER, "").encode()
        if not expected or not hmac.compare_digest(given, expected):
            raise PermissionError
        try:
            dev = devices()[int(req.path_params["dev"])]
        except (KeyError, ValueError):
            raise LookupError from None
        return dev

    def obj(req: Request) -> tuple[Device, int, str]:
        dev = device(req)
        if not dev.available():
            raise FileNotFoundError
        h = req.path_params["hash"]
        if not HASH.match(h):
            raise BadRequest("the object hash is 32 lower-case hex digits")
        return dev, int(req.path_params["part"]), h

    def wrap(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(req: Request) -> Response:
            try:
                result: Response = await handler(req)
                return result
            except PermissionError:
                return Response("X-Object-Secret is missing or wrong\n", 401)
            except LookupError:
                return Response("no such device on this server\n", 404)
            except FileNotFoundError:
                return Response("the device is not mounted\n", 507)
            except BadRequest as exc:
                return Response(f"{exc}\n", 400)
        return endpoint

    async def status(req: Request) -> Response:
        dev = device(req)
        if not dev.available():
            raise FileNotFoundError
        return JSONResponse({"id": dev.id})

    async def state(req: Request) -> Response:
        dev, part, h = obj(req)
        f = await run_in_threadpool(dev.read, part, h)
        if f is None:
            return Response(status_code=404)
        return JSONResponse({"kind": f.kind, "timestamp": f.timestamp,
                             "metadata": f.metadata, "meta_timestamp": f.meta_timestamp})

    async def put(req: Request) -> Response:
        dev, part, h = obj(req)
        if req.headers.get(STREAM_HEADER):
            return await put_stream(req, dev, part, h)
        try:
            files = [(str(n), int(s)) for n, s in json.loads(req.headers[FILES_HEADER])]
        except (KeyError, ValueError, TypeError) as exc:
            raise BadRequest(f"{FILES_HEADER}: a JSON list of [name, size]") from exc
        if not files or any(not FILE.match(n) or s < 0 for n, s in files):
            raise BadRequest(f"{FILES_HEADER}: names <ts>.data|json|meta|ts, sizes >= 0")
        stream = req.stream().__aiter__()
        buf = bytearray()

        async def fill(n: int) -> bytes:
            while len(buf) < n:
                try:
                    buf.extend(await stream.__anext__())
                except StopAsyncIteration:
                    break
            out = bytes(buf[:n])
            del buf[:n]
            return out

        # the body is read here in the event loop and written in a thread, chunk by chunk
        from anyio.from_thread import run as from_thread

        def read(n: int) -> bytes:
            return from_thread(fill, n)

        try:
            await run_in_threadpool(dev.install, part, h, files, read)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(status_code=201)

    async def put_stream(req: Request, dev: Device, part: int, h: str) -> Response:
        """A proxy's streamed PUT (:class:`stratus.object.remote.FrameReader`): the bytes
        to a temporary file as they arrive; renamed into place only when the stream is
        complete and its metadata names this size and md5."""
        writer = await run_in_threadpool(dev.writer, part, h)
        frames = FrameReader()
        pending: list[bytes] = []
        held = 0
        committed = False

        def write(chunks: list[bytes]) -> None:
            for chunk in chunks:
                writer.write(chunk)
                crash_point("object.server.put.partial")

        try:
            try:
                async for chunk in req.stream():
                    for data in frames.feed(chunk):
                        pending.append(data)
                        held += len(data)
                    if held >= STREAM_BATCH:
                        await run_in_threadpool(write, pending)
                        pending, held = [], 0
            except ValueError as exc:
                raise BadRequest(f"streamed PUT: {exc}") from exc
            except ClientDisconnect:
                return Response("the stream was cut; nothing was stored\n", 400)
            if pending:
                await run_in_threadpool(write, pending)
            meta = frames.metadata
            if meta is None:
                raise BadRequest("streamed PUT: the body ended before the object's "
                                 "metadata; nothing was stored")
            ts = str(meta.get("timestamp", ""))
            if not TS.match(ts):
                raise BadRequest("streamed PUT: metadata timestamp: an X-Timestamp")
            if meta.get("size") != writer.size or meta.get("etag") != writer.md5.hexdigest():
                return Response("the bytes received do not match the metadata's size and "
                                "etag; nothing was stored\n", 422)
            await run_in_threadpool(writer.commit, ts, meta)
            committed = True
        finally:
            if not committed:
                writer.abort()
        return Response(status_code=201)

    async def post(req: Request) -> Response:
        dev, part, h = obj(req)
        ts = req.query_params.get("ts", "")
        if not TS.match(ts):
            raise BadRequest("ts: an X-Timestamp (%016.5f)")
        try:
            update = json.loads(await req.body())
        except ValueError as exc:
            raise BadRequest("the body is a JSON object") from exc
        if not isinstance(update, dict):
            raise BadRequest("the body is a JSON object")
        done = await run_in_threadpool(dev.write_meta, part, h, ts, update)
        return Response(status_code=202 if done else 404)

    async def data(req: Request) -> Response:
        dev, part, h = obj(req)
        name = req.path_params["name"]
        if not FILE.match(name) or not name.endswith(".data"):
            raise BadRequest("a <ts>.data file")
        path = dev.object_dir(part, h) / name
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by iter_file
        except FileNotFoundError:
            return Response(status_code=404)
        size = os.fstat(fh.fileno()).st_size
        start, end = 0, size - 1
        m = RANGE.match(req.headers.get("range", ""))
        if m:
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size:
                fh.close()
                return Response(status_code=416)
        length = max(0, end - start + 1)
        return StreamingResponse(iter_file(fh, start, length), status_code=206 if m else 200,
                                 headers={"Content-Length": str(length)},
                                 media_type="application/octet-stream")

    async def partitions(req: Request) -> Response:
        dev = device(req)
        if not dev.available():
            raise FileNotFoundError
        return JSONResponse(await run_in_threadpool(dev.partitions))

    async def hashes(req: Request) -> Response:
        dev = device(req)
        if not dev.available():
            raise FileNotFoundError
        return JSONResponse(await run_in_threadpool(dev.hashes, int(req.path_params["part"])))

    async def digest(req: Request) -> Response:
        dev = device(req)
        if not dev.available():
            raise FileNotFoundError
        return JSONResponse({"digest": await run_in_threadpool(
            dev.partition_digest, int(req.path_params["part"]))})

    async def healthcheck(_req: Request) -> Response:
        return Response("OK\n", media_type="text/plain")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        drain_on_sigterm()
        handover.notify_ready()  # under a hand-over parent: this process serves now
        yield

    prefix = "/dev/{dev:int}"
    obj_path = prefix + "/objects/{part:int}/{hash}"
    return Starlette(lifespan=lifespan, routes=[
        Route("/healthcheck", healthcheck, methods=["GET", "HEAD"]),
        Route(prefix, wrap(status), methods=["GET"]),
        Route(obj_path, wrap(state), methods=["GET"]),
        Route(obj_path, wrap(put), methods=["PUT"]),
        Route(obj_path, wrap(post), methods=["POST"]),
        Route(obj_path + "/{name}", wrap(data), methods=["GET"]),
        Route(prefix + "/partitions", wrap(partitions), methods=["GET"]),
        Route(prefix + "/partitions/{part:int}", wrap(hashes), methods=["GET"]),
        Route(prefix + "/partitions/{part:int}/digest", wrap(digest), methods=["GET"]),
        *db_routes(device, wrap, prefix),  # container and account databases (dbapi.py)
    ])


def _settings(config: Config) -> tuple[str, str, int, str]:
    secret = config.get(SECTION, "secret")
    if not secret:
        raise ConfigError(f"setting [{SECTION}] secret is empty: the proxy and the "
                          "replicators authenticate with it")
    return (config.get("object", "ring_file"), config.get(SECTION, "bind_host"),
            config.get_int(SECTION, "bind_port"), secret)


def create_app_from_config() -> Starlette:
    """uvicorn factory: reads the configuration named by STRATUS_CONFIG_FILE."""
    config = Config.load()
    setup_logging(config.get_bool("DEFAULT", "debug"))
    arm(config)  # [debug] crash_at: test only, inert when empty
    ring_file, host, port, secret = _settings(config)
    cache: dict[str, Any] = {"mtime": None, "devices": {}}

    def devices() -> dict[int, Device]:
        try:
            mtime = os.stat(ring_file).st_mtime
        except FileNotFoundError:
            return {}
        if mtime != cache["mtime"]:
            cache["devices"] = local_devices(ring_file, host, port)
            cache["mtime"] = mtime
        result: dict[int, Device] = cache["devices"]
        return result

    return create_app(devices, secret)


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-object-server", __doc__, SECTION,
                       "stratus.object.server:create_app_from_config", _settings, argv)
