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
a temporary file, fsyncs and renames them in that order.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx

from stratus.object.diskfile import ObjectFile

SECRET_HEADER = "X-Object-Secret"
FILES_HEADER = "X-Object-Files"
CHUNK = 1 << 16


class Spool:
    """A PUT's body kept in one local temporary file while it arrives (its md5 too);
    every remote replica is sent from it when the PUT commits."""

    def __init__(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=directory, suffix=".tmp")
        self.path = Path(path)
        self.file = os.fdopen(fd, "wb")
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.md5.update(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        if not self.file.closed:
            self.file.flush()
            self.file.close()

    def discard(self) -> None:
        self.finish()
        self.path.unlink(missing_ok=True)


class RemoteWriter:
    """One remote replica of a PUT: sent from the session's spool at commit."""

    def __init__(self, device: RemoteDevice, part: int, obj_hash: str, spool: Spool) -> None:
        self.device = device
        self.part = part
        self.obj_hash = obj_hash
        self.spool = spool

    @property
    def md5(self) -> Any:
        return self.spool.md5

    def write(self, chunk: bytes) -> None:
        """Nothing: the session writes the spool once for every remote replica."""

    def commit(self, ts: str, metadata: dict[str, Any]) -> None:
        """Send the metadata and the bytes; OSError when the server did not store them."""
        self.spool.finish()
        meta = json.dumps(metadata).encode()

        def body() -> Iterator[bytes]:
            yield meta
            with open(self.spool.path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk

        self.device.send_files(self.part, self.obj_hash,
                               [(f"{ts}.json", len(meta)), (f"{ts}.data", self.spool.size)],
                               body())

    def abort(self) -> None:
        """Nothing was sent yet (the session discards the spool)."""


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

    def writer(self, part: int, obj_hash: str, spool: Spool | None = None) -> RemoteWriter:
        if spool is None:
            raise OSError("a remote replica needs the session's spool")
        return RemoteWriter(self, part, obj_hash, spool)

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
