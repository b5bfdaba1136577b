"""Image API: uploading and downloading an image's data (``/v2/images/{id}/file``).

Both handlers are ``async``, so image data streams through in bounded chunks
(never whole in memory): an upload is written to the store's temporary file
chunk by chunk from a worker thread, a download is read from the blob the
same way, with single-range requests (206) and ``Content-MD5`` on full
downloads. Over plain http a download of a blob in a local file goes from the file to
the socket with sendfile(2) instead (the server's zero-copy send, common/httpproto.py).
What an upload may do and what it leaves behind is decided in ``stratus.image.transfer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
from collections.abc import AsyncIterator, Callable
from typing import IO

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from stratus.common.app import Req, Routes
from stratus.common.errors import ApiError, BadRequest, PayloadTooLarge
from stratus.common.httpproto import ZERO_COPY
from stratus.image import transfer
from stratus.image.core import ImageService

routes = Routes()

CHUNK = 1024 * 1024
# After refusing an upload, read (and drop) at most this much of the rest of the
# body, so the client sees the answer (a 413...) instead of a broken connection.
DRAIN_LIMIT = 64 * 1024 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ApiError):
    status = 416
    title = "Requested Range Not Satisfiable"


def _declared_size(req: Req) -> int | None:
    """The size the client announced (X-OpenStack-Image-Size, else Content-Length)."""
    for header in ("x-openstack-image-size", "content-length"):
        raw = req.header(header)
        if raw == "":
            continue
        if not raw.isdigit():
            raise BadRequest(f"The {header} header must be a number of bytes, not {raw!r}.")
        return int(raw)
    return None


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``bytes=`` range, None to send everything.

    Malformed or multi-range headers are ignored (the whole image is sent), as
    HTTP allows; a range that starts beyond the data is a 416.
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None
    first_raw, last_raw = match.groups()
    if first_raw == "" and last_raw == "":
        return None
    if first_raw == "":
        length = int(last_raw)
        if length == 0:
            raise RangeNotSatisfiable(f"Range {header} selects no bytes of {size}.")
        return max(size - length, 0), size - 1
    first = int(first_raw)
    last = int(last_raw) if last_raw else size - 1
    if first >= size or last < first:
        raise RangeNotSatisfiable(
            f"Range {header} is outside the image data of {size} bytes.",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return first, min(last, size - 1)


async def _send_file(fh: IO[bytes], first: int, length: int) -> AsyncIterator[bytes]:
    try:
        await anyio.to_thread.run_sync(fh.seek, first)
        left = length
        while left > 0:
            data = await anyio.to_thread.run_sync(fh.read, min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        fh.close()


def _is_regular_file(fh: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False


class FileResponse(Response):
    """``length`` bytes of ``fh`` from ``first``: with the server's zero-copy send when it
    offers one and ``fh`` is a regular file, else streamed in chunks read on a worker
    thread. ``fh`` is closed at the end either way."""

    def __init__(self, fh: IO[bytes], first: int, length: int, status_code: int,
                 headers: dict[str, str]) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self.fh, self.first, self.length = fh, first, length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if ZERO_COPY not in scope.get("extensions", {}) or not _is_regular_file(self.fh):
            streaming = StreamingResponse(_send_file(self.fh, self.first, self.length),
                                          status_code=self.status_code)
            streaming.raw_headers = self.raw_headers
            await streaming(scope, receive, send)
            return
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await send({"type": ZERO_COPY, "file": self.fh, "offset": self.first,
                        "count": self.length, "more_body": False})
        finally:
            self.fh.close()


@routes.add("PUT", "/v2/images/{image_id}/file")
async def upload(req: Req, svc: ImageService) -> Response:
    request = req.request
    image_id = req.params["image_id"]
    chunks = request.stream().__aiter__()
    try:
        transfer.check_media_type(req.header("content-type"))
        ctx = await run_in_threadpool(lambda: req.ctx)
        declared = _declared_size(req)
        ticket = await run_in_threadpool(transfer.begin_upload, svc, ctx, image_id, declared)
    except ApiError:
        # Refused before reading the body: read (a bounded part of) it anyway, so
        # a client still sending sees this answer rather than a reset connection.
        await _drain(chunks)
        raise
    writer = _Pipeline(ticket.write)
    try:
        batch: list[bytes] = []  # the received chunks, handed over as they are (no copy)
        batched = 0
        async for chunk in chunks:
            if chunk:
                batch.append(chunk)
                batched += len(chunk)
            if batched >= CHUNK:
                await writer.write(batch)
                batch, batched = [], 0
        if batch:
            await writer.write(batch)
        await writer.flush()
        await run_in_threadpool(transfer.finish_upload, svc, ticket)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await writer.settle()
            await run_in_threadpool(transfer.abort_upload, svc, ticket, exc)
        if isinstance(exc, ClientDisconnect):
            return Response(status_code=400)  # nobody is left to read it
        if isinstance(exc, PayloadTooLarge):
            await _drain(chunks)
        if isinstance(exc, OSError):
            raise transfer.store_error(exc) from exc
        raise
    return Response(status_code=204)


@routes.add("GET", "/v2/images/{image_id}/file")
async def download(req: Req, svc: ImageService) -> Response:
    image_id = req.params["image_id"]
    ctx = await run_in_threadpool(lambda: req.ctx)
    found = await run_in_threadpool(transfer.open_download, svc, ctx, image_id)
    if found is None:
        return Response(status_code=204)
    try:
        wanted = parse_range(req.header("range"), found.size)
    except ApiError:
        found.file.close()
        raise
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    if wanted is None:
        first, length, status = 0, found.size, 200
        if found.checksum:
            headers["Content-MD5"] = found.checksum
    else:
        first, length, status = wanted[0], wanted[1] - wanted[0] + 1, 206
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{found.size}"
    headers["Content-Length"] = str(length)
    return FileResponse(found.file, first, length, status, headers)


class _Pipeline:
    """Writes batches of chunks on a worker thread while the next batch is being received.

    At most one write is in flight (so at most two batches, and the hashes' bounded
    queues, are in memory); its error surfaces at the next ``write`` or at ``flush``.
    """

    def __init__(self, write: Callable[[list[bytes]], None]) -> None:
        self._write = write
        self._pending: asyncio.Future[None] | None = None

    async def write(self, data: list[bytes]) -> None:
        await self.flush()
        self._pending = asyncio.get_running_loop().run_in_executor(None, self._write, data)

    async def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def settle(self) -> None:
        """Wait for a write still in flight, ignoring its outcome (before cleaning up)."""
        with contextlib.suppress(BaseException):
            await self.flush()


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    drained = 0
    try:
        async for chunk in chunks:
            drained += len(chunk)
            if drained > DRAIN_LIMIT:
                break
    except (ClientDisconnect, OSError, RuntimeError):
        pass
