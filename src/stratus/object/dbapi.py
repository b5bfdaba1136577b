"""The container and account databases over the object server's internal API (both
sides: the routes ``stratus-object-server`` adds, and :func:`db_call` that reaches a ring
device's database, locally or on its server).

``POST /dev/<id>/db/<kind>/<part>/<hash>``  body ``{"op": ..., "args": {...}}``: one
    :func:`stratus.object.dbs.call` (200 with its JSON result; 404: no such database
    here; 400 naming the bad field)
``GET /dev/<id>/db/<kind>``                 the databases of a kind on the device
    (``[[part, hash], ...]``: what the replicator walks on a peer)
``GET /dev/<id>/expired?now=&limit=``       expired objects of every container database
    on the device (the expirer)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.object import dbs
from stratus.object.diskfile import Device
from stratus.object.remote import RemoteDevice

HASH_CHARS = frozenset("0123456789abcdef")


def db_call(dev: Device | RemoteDevice, kind: str, part: int, db_hash: str, op: str,
            args: dict[str, Any] | None = None) -> Any:
    """One database operation on a ring device: DbMissing when the database is not
    there, OSError when the device or its server is down (or failed)."""
    args = args or {}
    if isinstance(dev, Device):
        if not dev.available():
            raise OSError(f"device {dev.id} is not mounted")
        try:
            return dbs.call(dev.path, kind, part, db_hash, op, args)
        except sqlite3.Error as exc:
            raise OSError(f"device {dev.id}: {exc}") from exc
    try:
        resp = dev.client.post(f"{dev.url}/db/{kind}/{part}/{db_hash}",
                               headers=dev.headers, json={"op": op, "args": args})
    except httpx.HTTPError as exc:
        raise OSError(f"object server {dev.base}: {exc}") from exc
    if resp.status_code == 404 and resp.headers.get("x-db-missing"):
        raise dbs.DbMissing(f"{dev.url} {kind} {part}/{db_hash}")
    if resp.status_code == 400:
        raise dbs.DbError(resp.text.strip())
    if resp.status_code != 200:
        raise OSError(f"object server {dev.base} answered {resp.status_code}")
    return resp.json()


def device_expired(dev: Device | RemoteDevice, now: int, limit: int) -> list[dict[str, Any]]:
    """Expired objects in the container databases of one device (OSError when down)."""
    if isinstance(dev, Device):
        if not dev.available():
            raise OSError(f"device {dev.id} is not mounted")
        return dbs.device_expired(dev.path, now, limit)
    try:
        resp = dev.client.get(f"{dev.url}/expired", headers=dev.headers,
                              params={"now": now, "limit": limit})
    except httpx.HTTPError as exc:
        raise OSError(f"object server {dev.base}: {exc}") from exc
    if resp.status_code != 200:
        raise OSError(f"object server {dev.base} answered {resp.status_code}")
    result: list[dict[str, Any]] = resp.json()
    return result


def db_routes(device: Callable[[Request], Device],
              wrap: Callable[[Callable[[Request], Any]], Any], prefix: str) -> list[Route]:
    """The object server's database routes; ``device`` checks the secret and finds the
    device (its exceptions are mapped by ``wrap``)."""

    def mounted(req: Request) -> Device:
        dev = device(req)
        if not dev.available():
            raise FileNotFoundError
        return dev

    async def call(req: Request) -> Response:
        dev = mounted(req)
        kind, h = req.path_params["kind"], req.path_params["hash"]
        if kind not in dbs.KINDS:
            return Response(f"kind: one of {', '.join(dbs.KINDS)}\n", 400)
        if len(h) != 32 or not HASH_CHARS.issuperset(h):
            return Response("the database hash is 32 lower-case hex digits\n", 400)
        try:
            body = json.loads(await req.body())
            op, args = body["op"], body.get("args") or {}
            if not isinstance(op, str) or not isinstance(args, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return Response('the body is {"op": <name>, "args": {...}}\n', 400)
        try:
            result = await run_in_threadpool(dbs.call, dev.path, kind,
                                             int(req.path_params["part"]), h, op, args)
        except dbs.DbMissing:
            return Response("no such database here\n", 404, headers={"X-Db-Missing": "1"})
        except dbs.DbError as exc:
            return Response(f"{exc}\n", 400)
        return JSONResponse(result)

    async def listing(req: Request) -> Response:
        dev = mounted(req)
        kind = req.path_params["kind"]
        if kind not in dbs.KINDS:
            return Response(f"kind: one of {', '.join(dbs.KINDS)}\n", 400)
        return JSONResponse(await run_in_threadpool(
            lambda: [[p, h] for p, h, _db in dbs.local_dbs(dev.path, kind)]))

    async def expired(req: Request) -> Response:
        dev = mounted(req)
        try:
            now = int(req.query_params["now"])
            limit = int(req.query_params.get("limit", "100"))
        except (KeyError, ValueError):
            return Response("now (epoch seconds) and limit are whole numbers\n", 400)
        return JSONResponse(await run_in_threadpool(dbs.device_expired, dev.path, now,
                                                    max(1, min(limit, 1000))))

    return [
        Route(prefix + "/db/{kind}/{part:int}/{hash}", wrap(call), methods=["POST"]),
        Route(prefix + "/db/{kind}", wrap(listing), methods=["GET"]),
        Route(prefix + "/expired", wrap(expired), methods=["GET"]),
    ]


def remote_db_list(dev: Device | RemoteDevice, kind: str) -> list[tuple[int, str]]:
    """(partition, hash) of the databases of a kind on a device."""
    if isinstance(dev, Device):
        return [(p, h) for p, h, _db in dbs.local_dbs(dev.path, kind)]
    try:
        resp = dev.client.get(f"{dev.url}/db/{kind}", headers=dev.headers)
    except httpx.HTTPError as exc:
        raise OSError(f"object server {dev.base}: {exc}") from exc
    if resp.status_code != 200:
        raise OSError(f"object server {dev.base} answered {resp.status_code}")
    return [(int(p), str(h)) for p, h in resp.json()]
