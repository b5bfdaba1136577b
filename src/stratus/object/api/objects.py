"""``/v1/AUTH_<project_id>/<container>/<object>``: PUT (streamed to every replica),
GET (ranges, conditions), HEAD, POST (metadata), DELETE, COPY and ``X-Copy-From``."""

from __future__ import annotations

import hashlib
import mimetypes
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from stratus.common.app import Req, Routes
from stratus.common.errors import ApiError, BadRequest, PayloadTooLarge
from stratus.object import slo
from stratus.object.api.common import (
    account_name,
    container_access,
    container_name,
    object_name,
)
from stratus.object.core import ObjectService
from stratus.object.diskfile import ObjectFile
from stratus.object.listings import ListParams
from stratus.object.ranges import check_conditions, multipart, parse_range
from stratus.object.store import PutSession, iter_file
from stratus.object.views import (
    LIMITS,
    LengthRequired,
    PreconditionFailed,
    RangeNotSatisfiable,
    Unprocessable,
    check_name,
    http_date,
    meta_headers,
    meta_updates,
)

routes = Routes()
BUFFER = 1 << 20  # bytes gathered before one write to the replicas
PASSED_HEADERS = ("content-disposition", "content-encoding", "x-object-manifest")


class ClientGone(ApiError):
    status = 499
    title = "Client Disconnect"


def object_headers(f: ObjectFile) -> dict[str, str]:
    m = f.metadata
    headers = {"Content-Type": m.get("content_type") or "application/octet-stream",
               "ETag": m.get("etag", ""), "Last-Modified": http_date(f.timestamp),
               "X-Timestamp": f.timestamp, "Accept-Ranges": "bytes",
               **meta_headers(m.get("user", {}), "object")}
    for key, value in m.get("headers", {}).items():
        headers[key.title()] = value
    if m.get("delete_at") is not None:
        headers["X-Delete-At"] = str(m["delete_at"])
    if m.get("slo"):
        headers["ETag"] = f'"{m["slo"]["etag"]}"'
        headers["X-Static-Large-Object"] = "True"
    return headers


def delete_at(req: Req) -> int | None:
    at, after = req.header("x-delete-at"), req.header("x-delete-after")
    now = time.time()
    if after:
        if not after.isdigit():
            raise BadRequest("X-Delete-After must be a whole number of seconds.")
        return int(now) + int(after)
    if at:
        if not at.isdigit():
            raise BadRequest("X-Delete-At must be a Unix time in whole seconds.")
        if int(at) <= now:
            raise BadRequest("X-Delete-At is in the past.")
        return int(at)
    return None


def new_metadata(req: Req, name: str) -> dict[str, Any]:
    """The metadata a PUT or POST gives an object (user metadata, type, headers)."""
    # an empty X-Object-Meta-* is kept (as Swift does); X-Remove-Object-Meta-* drops one
    removed = {"meta-" + k.lower()[len("x-remove-object-meta-"):]
               for k in req.request.headers if k.lower().startswith("x-remove-object-meta-")}
    user = {k: v or "" for k, v in meta_updates(req.request.headers, "object").items()
            if k not in removed}
    ctype = req.header("content-type").strip()
    if not ctype or req.header("x-detect-content-type").lower() == "true":
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    passed = {k: req.header(k) for k in PASSED_HEADERS if req.header(k)}
    return {"content_type": ctype, "user": user, "headers": passed,
            "delete_at": delete_at(req)}


async def _quota_check(svc: ObjectService, account: str, container: str,
                       info: dict[str, Any], size: int) -> None:
    """413 when ``size`` more bytes (one more object) would pass a quota (the counts are
    only read when there is a quota)."""
    meta = info["meta"]
    if "meta-quota-bytes" in meta or "meta-quota-count" in meta:
        used = await run_in_threadpool(svc.listings.stats, account, container)
        if "meta-quota-bytes" in meta and used.bytes + size > int(meta["meta-quota-bytes"]):
            raise PayloadTooLarge("Upload exceeds the container's quota (X-Container-Meta-"
                                  "Quota-Bytes); nothing was stored.")
        if "meta-quota-count" in meta and used.count + 1 > int(meta["meta-quota-count"]):
            raise PayloadTooLarge("Upload exceeds the container's object count quota "
                                  "(X-Container-Meta-Quota-Count); nothing was stored.")
    quota = (await run_in_threadpool(svc.listings.account_meta, account)).get(
        "meta-quota-bytes")
    if quota is not None:
        used = await run_in_threadpool(svc.listings.stats, account)
        if used.bytes + size > int(quota):
            raise PayloadTooLarge("Upload exceeds the account's quota (X-Account-Meta-"
                                  "Quota-Bytes); nothing was stored.")


async def _body(req: Req) -> AsyncIterator[bytes]:
    buf = bytearray()
    try:
        async for chunk in req.request.stream():
            buf += chunk
            if len(buf) >= BUFFER:
                yield bytes(buf)
                buf.clear()
    except ClientDisconnect:
        raise ClientGone("The client went away before sending the whole body; nothing "
                         "was stored.") from None
    if buf:
        yield bytes(buf)


async def _source(svc: ObjectService, req: Req, account: str, spec: str
                  ) -> tuple[ObjectFile, str]:
    """The object ``/<container>/<object>`` named by X-Copy-From (readable by the caller)."""
    path = unquote(spec).lstrip("/")
    if "/" not in path:
        raise PreconditionFailed("X-Copy-From header must be of the form "
                                 "<container name>/<object name>.")
    cont, obj = path.split("/", 1)
    check_name("object", obj, LIMITS["max_object_name_length"])
    await container_access(req, svc, account, cont, write=False)
    f = await run_in_threadpool(svc.read, account, cont, obj)
    return f, obj


async def put_object(req: Req, svc: ObjectService, account: str, container: str, name: str,
                     copy_from: str = "") -> Response:
    _ctx, info = await container_access(req, svc, account, container, write=True)
    length_header = req.header("content-length")
    chunked = "chunked" in req.header("transfer-encoding").lower()
    copy_from = copy_from or req.header("x-copy-from")
    if copy_from and length_header not in ("", "0"):
        raise BadRequest("A copy (X-Copy-From) must have no body.")
    if not copy_from and not chunked:
        if not length_header:
            raise LengthRequired("Missing Content-Length header (or use chunked transfer).")
        if not length_header.isdigit():
            raise BadRequest("Invalid Content-Length header.")
    expected = int(length_header) if length_header.isdigit() and not copy_from else None
    if expected is not None and expected > svc.settings.max_file_size:
        raise PayloadTooLarge(f"Your request is too large: objects are at most "
                              f"{svc.settings.max_file_size} bytes.")
    meta = new_metadata(req, name)
    manifest_body: bytes | None = None
    if req.query.get("multipart-manifest") == "put" and not copy_from:
        raw = b"".join([chunk async for chunk in _body(req)])
        built, meta["slo"] = await run_in_threadpool(slo.build_manifest, svc, account, raw)
        manifest_body, expected = built, len(built)
    if req.header("if-none-match").strip() == "*":
        try:
            await run_in_threadpool(svc.read, account, container, name)
            raise PreconditionFailed("The object exists and If-None-Match is *.")
        except ApiError as exc:
            if exc.status != 404:
                raise
    source: ObjectFile | None = None
    if copy_from:
        source, _ = await _source(svc, req, account, copy_from)
        base = dict(source.metadata)
        if req.header("x-fresh-metadata").lower() != "true":
            meta["user"] = {**base.get("user", {}), **meta["user"]}
            meta["headers"] = {**base.get("headers", {}), **meta["headers"]}
            if not req.header("content-type"):
                meta["content_type"] = base.get("content_type", meta["content_type"])
        expected = int(base.get("size", 0))
    await _quota_check(svc, account, container, info,
                       meta["slo"]["size"] if manifest_body is not None else expected or 0)
    session: PutSession = await run_in_threadpool(svc.begin_put, account, container, name)
    try:
        if manifest_body is not None:
            await run_in_threadpool(session.write, manifest_body)
        elif source is not None and source.kind == "data":
            fh = await run_in_threadpool(source.open)
            for chunk in iter_file(fh, 0, expected or 0, chunk=BUFFER):
                await run_in_threadpool(session.write, chunk)
        else:
            async for chunk in _body(req):
                if session.size + len(chunk) > svc.settings.max_file_size:
                    raise PayloadTooLarge("Your request is too large.")
                await run_in_threadpool(session.write, chunk)
        if expected is not None and session.size != expected:
            raise ClientGone(f"The body had {session.size} bytes, not the "
                             f"{expected} of its Content-Length; nothing was stored.")
        etag = req.header("etag").strip().strip('"').lower()
        wanted = meta["slo"]["etag"] if manifest_body is not None else session.etag
        if etag and etag != wanted:
            raise Unprocessable("The ETag header does not match the md5 of the body; "
                                "nothing was stored.")
        if expected is None:  # chunked: the quotas now that the size is known
            await _quota_check(svc, account, container, info, session.size)
        ts = await run_in_threadpool(svc.finish_put, session, account, container, name,
                                     meta)
    except BaseException:
        session.abort()
        raise
    # an SLO manifest's ETag (the md5 of its segments' etags) is quoted, as Swift's
    headers = {"ETag": f'"{meta["slo"]["etag"]}"' if manifest_body is not None
               else session.etag,
               "Last-Modified": http_date(ts), "X-Timestamp": ts,
               "Content-Type": "text/html; charset=UTF-8"}
    if copy_from:
        headers["X-Copied-From"] = unquote(copy_from).lstrip("/")
        if source is not None:
            headers["X-Copied-From-Last-Modified"] = http_date(source.timestamp)
        headers.update(meta_headers(meta["user"], "object"))
    return Response(status_code=201, headers=headers)


async def get_object(req: Req, svc: ObjectService, account: str, container: str,
                     name: str) -> Response:
    await container_access(req, svc, account, container, write=False)
    f = await run_in_threadpool(svc.read, account, container, name)
    headers = object_headers(f)
    if "temp_url_sig" in req.query:  # TempURL's inline / filename (as Swift's tempurl)
        filename = "".join(c for c in req.query.get("filename", "") if c.isprintable()
                           and c != '"') or None
        if "inline" in req.query:
            headers["Content-Disposition"] = (f'inline; filename="{filename}"' if filename
                                              else "inline")
        elif filename:
            headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    method = req.request.method
    lowered = {k.lower(): v for k, v in req.request.headers.items()}
    if check_conditions(lowered, f.metadata.get("etag", ""), float(f.timestamp), method):
        return Response(status_code=304, headers={
            k: v for k, v in headers.items() if k != "Content-Type"})
    if f.metadata.get("slo") and req.query.get("multipart-manifest") != "get":
        segments = await run_in_threadpool(slo.manifest, svc, f)
        return _get_segments(req, svc, account, segments, headers)
    dlo = f.metadata.get("headers", {}).get("x-object-manifest")
    if dlo and req.query.get("multipart-manifest") != "get":
        segments = await run_in_threadpool(_dlo_segments, svc, account, dlo)
        headers["ETag"] = '"{}"'.format(hashlib.md5(
            "".join(s["hash"] for s in segments).encode(), usedforsecurity=False).hexdigest())
        return _get_segments(req, svc, account, segments, headers)
    if f.metadata.get("slo"):
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers.pop("X-Static-Large-Object", None)
        headers["ETag"] = f.metadata.get("etag", "")
    size = int(f.metadata.get("size", 0))
    if method == "HEAD":
        headers["Content-Length"] = str(size)
        return Response(status_code=200, headers=headers)
    fh = await run_in_threadpool(f.open)
    ranges = parse_range(req.header("range"), size) if req.header("range") else None
    if ranges is not None and not ranges:
        fh.close()
        raise RangeNotSatisfiable("The Range header matches no byte of the object.",
                                  headers={"Content-Range": f"bytes */{size}"})
    if ranges is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(iter_file(fh, 0, size), status_code=200, headers=headers)
    if len(ranges) == 1:
        a, b = ranges[0]
        headers["Content-Length"] = str(b - a + 1)
        headers["Content-Range"] = f"bytes {a}-{b}/{size}"
        return StreamingResponse(iter_file(fh, a, b - a + 1), status_code=206,
                                 headers=headers)
    boundary, length, chunks = multipart(fh, ranges, size, headers["Content-Type"])
    headers["Content-Type"] = f"multipart/byteranges;boundary={boundary}"
    headers["Content-Length"] = str(length)
    return StreamingResponse(chunks, status_code=206, headers=headers)


def _dlo_segments(svc: ObjectService, account: str, manifest: str) -> list[dict[str, Any]]:
    """A dynamic large object's segments: the objects under ``<container>/<prefix>``."""
    cont, _, prefix = unquote(manifest).lstrip("/").partition("/")
    rows = svc.listings.list_objects(account, cont, ListParams(
        limit=svc.settings.listing_limit, prefix=prefix))
    return [{"name": f"/{cont}/{r['name']}", "hash": r["hash"], "bytes": r["bytes"]}
            for r in rows if "name" in r]


def _get_segments(req: Req, svc: ObjectService, account: str,
                  segments: list[dict[str, Any]], headers: dict[str, str]) -> Response:
    """A large object: its segments in order (one range across them at most)."""
    size = sum(int(s["bytes"]) for s in segments)
    if req.request.method == "HEAD":
        headers["Content-Length"] = str(size)
        return Response(status_code=200, headers=headers)
    ranges = parse_range(req.header("range"), size) if req.header("range") else None
    if ranges is not None and not ranges:
        raise RangeNotSatisfiable("The Range header matches no byte of the object.",
                                  headers={"Content-Range": f"bytes */{size}"})
    if ranges is not None and len(ranges) == 1:
        a, b = ranges[0]
        headers["Content-Length"] = str(b - a + 1)
        headers["Content-Range"] = f"bytes {a}-{b}/{size}"
        return StreamingResponse(slo.iter_segments(svc, account, segments, a, b - a + 1),
                                 status_code=206, headers=headers)
    headers["Content-Length"] = str(size)
    return StreamingResponse(slo.iter_segments(svc, account, segments, 0, size),
                             status_code=200, headers=headers)


@routes.add(("GET", "HEAD", "PUT", "POST", "DELETE", "COPY"),
            "/v1/{account}/{container}/{object:path}")
async def object_resource(req: Req, svc: ObjectService) -> Response:
    account = account_name(req)
    container = container_name(req)
    name = object_name(req)
    method = req.request.method
    if method in ("GET", "HEAD"):
        return await get_object(req, svc, account, container, name)
    if method == "PUT":
        return await put_object(req, svc, account, container, name)
    if method == "COPY":
        dest = unquote(req.header("destination")).lstrip("/")
        if "/" not in dest:
            raise PreconditionFailed("Destination header must be of the form "
                                     "<container name>/<object name>.")
        dest_cont, dest_obj = dest.split("/", 1)
        check_name("container", dest_cont, LIMITS["max_container_name_length"])
        check_name("object", dest_obj, LIMITS["max_object_name_length"])
        return await put_object(req, svc, account, dest_cont, dest_obj,
                                copy_from=f"{container}/{name}")
    await container_access(req, svc, account, container, write=True)
    if method == "DELETE" and req.query.get("multipart-manifest") == "delete":
        f = await run_in_threadpool(svc.read, account, container, name)
        if f.metadata.get("slo"):
            segments = await run_in_threadpool(slo.manifest, svc, f)
            await run_in_threadpool(slo.delete_all, svc, account, container, name, segments)
            return Response(f"Number Deleted: {len(segments) + 1}\nResponse Status: 200 OK\n",
                            media_type="text/plain")
    if method == "DELETE":
        await run_in_threadpool(svc.delete, account, container, name)
        return Response(status_code=204, headers={"Content-Type": "text/html; charset=UTF-8"})
    meta = new_metadata(req, name)
    if not req.header("content-type"):
        meta.pop("content_type")
    await run_in_threadpool(svc.post, account, container, name, meta)
    return Response(status_code=202, headers={"Content-Type": "text/html; charset=UTF-8"})
