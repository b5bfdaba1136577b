"""A ring device on another process: the proxy's and the replicators' client of
``stratus-object-server`` (:mod:`stratus.object.server`).

A ring device with a ``port`` lives on the object server at ``host:port``; a
:class:`RemoteDevice` offers the same calls as a local
:class:`stratus.object.diskfile.Device` (what :mod:`stratus.object.store`, the replicator
and the updater use) over the server's internal API, every request carrying the shared
secret (``X-Object-Secret``). A server that does not answer within ``[object_server]
timeout`` counts as down (its device is not :meth:`RemoteDevice.available`), so the
proxy writes to a handoff instead.

Files travel as one body: the header ``X-Object-Files`` lists ``[name, size]`` pairs and
the body is their bytes one after the other (``.data`` last); the server writes each to
a temporary file, fsyncs and renames them in that order (tombstones, replication).

A proxy's PUT is streamed instead (``X-Object-Stream: 1``, :class:`StreamWriter` and
:class:`FrameReader`): the client's body goes to every replica while it arrives, in
frames, and the object's metadata (size, md5, timestamp) comes last, once the proxy has
checked the whole body; the server writes the bytes to a temporary file, and only a
complete stream whose metadata matches what it received (size and md5) is fsynced and
renamed into place. A stream cut anywhere before that leaves nothing visible.
"""

from __future__ import annotations

import contextlib
import io
import json
import queue
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx

from stratus.object.diskfile import ObjectFile

SECRET_HEADER = "X-Object-Secret"
FILES_HEADER = "X-Object-Files"
STREAM_HEADER = "X-Object-Stream"
CHUNK = 1 << 16
FRAME = struct.Struct(">I")  # a streamed PUT's frame header: the frame's length
MAX_META = 1 << 20  # bytes of an object's metadata frame at most
QUEUE_DEPTH = 8  # queued items per replica (a frame is two: header and bytes)
START_AFTER = 1 << 18  # bytes of a PUT held before its streamed request starts


class FrameReader:
    """The server's side of a streamed PUT's body (:class:`StreamWriter`): frames of a
    4-byte big-endian length and that many bytes; data frames, an empty frame ending
    the data, then one frame with the object's metadata (JSON) and nothing after it.

    :meth:`feed` takes the body's chunks as they come and returns the data bytes in
    them (a frame's bytes are passed on as they arrive, never gathered whole);
    :attr:`metadata` is set once the last frame is complete."""

    def __init__(self, max_meta: int = MAX_META) -> None:
        self.max_meta = max_meta
        self._head = bytearray()
        self._left = -1  # bytes left in the current frame; -1: reading a header
        self._data_done = False
        self._meta = bytearray()
        self.metadata: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        """The data bytes in ``chunk``; ValueError on a malformed stream."""
        out: list[bytes] = []
        view = memoryview(chunk)
        while view:
            if self.metadata is not None:
                raise ValueError("bytes after the object's metadata")
            if self._left < 0:
                take = min(FRAME.size - len(self._head), len(view))
                self._head += view[:take]
                view = view[take:]
                if len(self._head) < FRAME.size:
                    break
                (self._left,) = FRAME.unpack(self._head)
                self._head.clear()
                if self._data_done and self._left > self.max_meta:
                    raise ValueError(f"the metadata frame is over {self.max_meta} bytes")
                if self._left == 0:
                    self._left = -1
                    if self._data_done:
                        raise ValueError("an empty metadata frame")
                    self._data_done = True
                continue
            take = min(self._left, len(view))
            if self._data_done:
                self._meta += view[:take]
            else:
                out.append(bytes(view[:take]))
            view = view[take:]
            self._left -= take
            if self._left == 0:
                self._left = -1
                if self._data_done:
                    self._finish_meta()
        return out

    def _finish_meta(self) -> None:
        try:
            meta = json.loads(bytes(self._meta))
        except ValueError as exc:
            raise ValueError("the metadata frame is not JSON") from exc
        if not isinstance(meta, dict):
            raise ValueError("the metadata frame is not a JSON object")
        self.metadata = meta


class _Aborted(Exception):
    """The proxy gave up this replica (the body is cut, the server keeps nothing)."""


class StreamWriter:
    """One remote replica of a PUT, streamed while the client's body arrives: a thread
    of its own sends one chunked request to the server, fed through a short queue (so
    memory stays flat and the slowest replica sets the pace, up to the client's
    timeout); :meth:`commit` sends the metadata frame, which makes the server rename the
    object into place, and waits for its answer. :meth:`abort` cuts the body: the
    server keeps nothing (see :class:`FrameReader`).

    The request starts once ``start_after`` bytes are waiting: a small object (all of it
    below that) goes at commit as one request with its length, in one write, without a
    thread (small frames sent one by one would wait on delayed ACKs)."""

    def __init__(self, device: RemoteDevice, part: int, obj_hash: str,
                 depth: int = QUEUE_DEPTH, start_after: int = START_AFTER) -> None:
        self.device = device
        self.part = part
        self.obj_hash = obj_hash
        self.queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self.status = 0
        self.error = ""
        self.done = threading.Event()
        self._aborted = False
        self._timeout = float(device.client.timeout.read or 60.0)
        self._start_after = start_after
        self._waiting: list[bytes] = []  # frames held until the request starts
        self._held = 0
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{self.device.url}/objects/{self.part}/{self.obj_hash}"

    def _start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"put-{self.device.base}")
        self.thread.start()
        waiting, self._waiting, self._held = self._waiting, [], 0
        for item in waiting:
            self._put(item)

    def _body(self) -> Iterator[bytes]:
        while True:
            item = self.queue.get()
            if item is None:
                if self._aborted:
                    raise _Aborted
                return
            yield item

    def _run(self) -> None:
        try:
            resp = self.device.client.request(
                "PUT", self.url, headers={**self.device.headers, STREAM_HEADER: "1"},
                content=self._body())
            self.status = resp.status_code
            if resp.status_code != 201:
                self.error = f"{resp.status_code}: {resp.text[:200]}"
        except _Aborted:
            self.error = "aborted"
        except (httpx.HTTPError, OSError) as exc:
            self.error = str(exc) or type(exc).__name__
        finally:
            self.done.set()

    def _put(self, item: bytes | None) -> None:
        deadline = time.monotonic() + self._timeout
        while True:
            if self.done.is_set():
                raise OSError(f"object server {self.device.base}: {self.error}")
            try:
                self.queue.put(item, timeout=min(0.5, self._timeout))
                return
            except queue.Full:
                if time.monotonic() > deadline:
                    raise OSError(f"object server {self.device.base}: no progress in "
                                  f"{self._timeout:.0f} s") from None

    def write(self, chunk: bytes) -> None:
        """Queue one data frame; OSError when this replica failed (the session drops it)."""
        if not chunk:
            return
        if self.thread is None:
            self._waiting.append(FRAME.pack(len(chunk)) + chunk)
            self._held += len(chunk)
            if self._held >= self._start_after:
                self._start()
            return
        self._put(FRAME.pack(len(chunk)))
        self._put(chunk)

    def commit(self, ts: str, metadata: dict[str, Any]) -> None:
        """End the data, send the metadata; OSError unless the server stored the object."""
        meta = json.dumps({**metadata, "timestamp": ts}).encode()
        end = FRAME.pack(0) + FRAME.pack(len(meta)) + meta
        if self.thread is None:  # a small object: one request, all of it at once
            body = b"".join([*self._waiting, end])
            self._waiting = []
            try:
                resp = self.device.client.request("PUT", self.url, content=body, headers={
                    **self.device.headers, STREAM_HEADER: "1"})
            except httpx.HTTPError as exc:
                raise OSError(f"object server {self.device.base}: {exc}") from exc
            finally:
                self.done.set()
            if resp.status_code != 201:
                raise OSError(f"object server {self.device.base}: {resp.status_code}: "
                              f"{resp.text[:200]}")
            return
        self._put(end)
        self._put(None)
        self.done.wait()
        if self.status != 201:
            raise OSError(f"object server {self.device.base}: {self.error}")

    def abort(self) -> None:
        """Cut the body without the metadata frame (does not wait)."""
        self._waiting = []
        if self.done.is_set() or self.thread is None:
            self.done.set()
            return
        self._aborted = True
        while True:  # make room: the thread stops at the first None it takes
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)


class RemoteFile(io.RawIOBase):
    """The bytes of one object's data file on a server, read with ranged GETs (a seek
    starts a new request where it lands)."""

    def __init__(self, device: RemoteDevice, url: str) -> None:
        super().__init__()
        self.device = device
        self.url = url
        self.pos = 0
        self._resp: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._buf = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET:
            raise OSError("only absolute seeks")
        if offset != self.pos:
            self._drop()
            self.pos = offset
        return self.pos

    def read(self, size: int = -1) -> bytes:
        if self._chunks is None:
            req = self.device.client.build_request(
                "GET", self.url, headers={**self.device.headers,
                                          "Range": f"bytes={self.pos}-"})
            try:
                self._resp = self.device.client.send(req, stream=True)
            except httpx.HTTPError as exc:
                raise OSError(f"object server {self.device.base}: {exc}") from exc
            if self._resp.status_code == 416:
                self._drop()
                return b""
            if self._resp.status_code not in (200, 206):
                self._drop()
                raise OSError(f"object server {self.device.base}: "
                              f"{self._resp.status_code}")
            self._chunks = self._resp.iter_raw(CHUNK)
        while size < 0 or len(self._buf) < size:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
            except httpx.HTTPError as exc:
                raise OSError(f"object server {self.device.base}: {exc}") from exc
        if size < 0:
            size = len(self._buf)
        out, self._buf = self._buf[:size], self._buf[size:]
        self.pos += len(out)
        return out

    def _drop(self) -> None:
        if self._resp is not None:
            self._resp.close()
        self._resp, self._chunks, self._buf = None, None, b""

    def close(self) -> None:
        self._drop()
        super().close()


class RemoteDevice:
    """A ring device served by ``stratus-object-server`` at ``base`` (``scheme://host:port``)."""

    local = False

    def __init__(self, dev_id: int, base: str, client: httpx.Client, secret: str) -> None:
        self.id = dev_id
        self.base = base
        self.client = client
        self.headers = {SECRET_HEADER: secret}
        self.url = f"{base}/dev/{dev_id}"

    def __repr__(self) -> str:
        return f"RemoteDevice({self.url})"

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, self.url + path, headers={
                **self.headers, **kwargs.pop("headers", {})}, **kwargs)
        except httpx.HTTPError as exc:
            raise OSError(f"object server {self.base}: {exc}") from exc

    @staticmethod
    def _ok(resp: httpx.Response, *codes: int) -> httpx.Response:
        if resp.status_code not in codes:
            raise OSError(f"object server answered {resp.status_code}: {resp.text[:200]}")
        return resp

    def available(self) -> bool:
        """The server answers and its device is mounted."""
        try:
            return self._call("GET", "").status_code == 200
        except OSError:
            return False

    def writer(self, part: int, obj_hash: str) -> StreamWriter:
        """A streamed PUT of this object (its request starts now)."""
        return StreamWriter(self, part, obj_hash)

    def send_files(self, part: int, obj_hash: str, files: list[tuple[str, int]],
                   body: Iterator[bytes]) -> None:
        """Install these files of an object on the server (fsynced, renamed in order)."""
        total = sum(size for _name, size in files)
        self._ok(self._call("PUT", f"/objects/{part}/{obj_hash}", content=body, headers={
            FILES_HEADER: json.dumps(files), "Content-Length": str(total)}), 201)

    def read(self, part: int, obj_hash: str) -> ObjectFile | None:
        resp = self._ok(self._call("GET", f"/objects/{part}/{obj_hash}"), 200, 404)
        if resp.status_code == 404:
            return None
        state = resp.json()
        f = ObjectFile(state["kind"], state["timestamp"], state["metadata"],
                       meta_timestamp=state.get("meta_timestamp", ""))
        if f.kind == "data":
            url = f"{self.url}/objects/{part}/{obj_hash}/{f.timestamp}.data"
            f.opener = lambda: cast(BinaryIO, RemoteFile(self, url))
        return f

    def write_meta(self, part: int, obj_hash: str, ts: str, update: dict[str, Any]) -> bool:
        resp = self._ok(self._call("POST", f"/objects/{part}/{obj_hash}",
                                   params={"ts": ts}, json=update), 202, 404)
        return resp.status_code == 202

    def tombstone(self, part: int, obj_hash: str, ts: str, info: dict[str, Any]) -> None:
        data = json.dumps(info).encode()
        self.send_files(part, obj_hash, [(f"{ts}.ts", len(data))], iter([data]))

    def partitions(self) -> list[int]:
        return [int(p) for p in self._ok(self._call("GET", "/partitions"), 200).json()]

    def hashes(self, part: int) -> dict[str, str]:
        return dict(self._ok(self._call("GET", f"/partitions/{part}"), 200).json())

    def partition_digest(self, part: int) -> str:
        return str(self._ok(self._call("GET", f"/partitions/{part}/digest"), 200)
                   .json()["digest"])

    def receive(self, part: int, obj_hash: str, files: list[Path]) -> None:
        """Push a local device's files of an object here (the replicator)."""
        ordered = sorted(files, key=lambda p: p.suffix == ".data")
        sizes = [(p.name, p.stat().st_size) for p in ordered]

        def body() -> Iterator[bytes]:
            for p in ordered:
                with open(p, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        yield chunk

        self.send_files(part, obj_hash, sizes, body())
