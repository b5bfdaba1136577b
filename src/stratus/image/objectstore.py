"""Image data kept in object storage (``[image] store = object``).

Each image's data is one object in the container ``[image] object_container`` of the
image service's own account (``AUTH_<project of its service user>``), reached over
stratus-object's Swift API with the service user's token. So every controller's image
service serves the same images.

An upload is received, hashed and inspected in a local temporary file exactly as for the
file store (:class:`stratus.image.store.FileStore`'s ``tmp/`` under ``images_dir``), then
streamed from that file to the object store (never whole in memory) with its md5 as
``ETag`` and its size as ``Content-Length``: object storage refuses the object when either
does not match (422, or a short body), and the answer's ``ETag`` is checked again. The key
is new for every upload (128 hex characters: a random half and the first half of the
sha512), so no two images share an object: deleting an image deletes its object without
a cross-host race with another controller's upload of the same content. A failed PUT
leaves nothing (object storage lists an object only once a quorum has it); a process
killed between the PUT and the database update leaves an object no image refers to,
removed by ``collect_garbage`` at the next start once it is older than
:data:`GARBAGE_AGE` (younger ones may be another controller's upload in progress).

A download HEADs the object (size and md5 against the image's) and streams it back in
chunks, from the requested offset (a ``Range`` request).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import quote

import httpx

from stratus.common.clients import ApiClient, Auth, PasswordAuth, ServiceError
from stratus.common.errors import ApiError
from stratus.image.store import FileStore, Upload

LOG = logging.getLogger("stratus.image")

CHUNK = 1024 * 1024
# Seconds an object no image refers to is kept before the start-up sweep removes it (an
# upload on another controller between its PUT and its database update is younger).
GARBAGE_AGE = 3600.0
LISTING_LIMIT = 10000


class StoreUnavailable(ApiError):
    """Object storage did not take or give the data; nothing of the upload is kept."""

    status = 503
    title = "Service Unavailable"


class _FileBody:
    """A file's bytes as a request body, read in chunks; iterable again (a request
    re-sent after a token renewal reads the file from its start)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk


class ServiceAccount:
    """The image service's own account in object storage: its URL is the object store's
    base URL plus ``/v1/AUTH_<project id>``, the project of the service user's token
    (asked of identity once)."""

    def __init__(self, object_url: str, identity_url: str, auth: Auth,
                 timeout: float = 60.0) -> None:
        self.object_url = object_url.rstrip("/")
        self.identity = ApiClient(identity_url.rstrip("/").removesuffix("/v3") + "/v3",
                                  auth, timeout=timeout, service="identity")
        self.auth = auth
        self.timeout = timeout
        self._client: ApiClient | None = None

    def client(self) -> ApiClient:
        """The account's client (the project id looked up at the first call)."""
        if self._client is None:
            token = self.auth.token()
            body = self.identity.get("/auth/tokens", headers={"X-Subject-Token": token})
            project = body["token"]["project"]["id"]
            self._client = ApiClient(f"{self.object_url}/v1/AUTH_{project}", self.auth,
                                     timeout=self.timeout, service="object storage")
        return self._client


class ObjectStore:
    """Image blobs as objects in ``container`` of ``account``; uploads staged under
    ``staging_root`` (a :class:`FileStore`'s tmp/ and lock). See the module docstring."""

    def __init__(self, staging_root: str | Path, account: ServiceAccount,
                 container: str) -> None:
        self.staging = FileStore(staging_root)
        self.account = account
        self.container = container

    @classmethod
    def from_settings(cls, staging_root: str, object_url: str, identity_url: str,
                      username: str, password: str, project: str,
                      container: str) -> ObjectStore:
        auth = PasswordAuth(identity_url, username, password, project)
        return cls(staging_root, ServiceAccount(object_url, identity_url, auth), container)

    # ---- staging (local, as the file store) ----------------------------------------------

    def ensure(self) -> None:
        self.staging.ensure()

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return self.staging.locked()

    def begin(self, limit: int, owner: str) -> Upload:
        return self.staging.begin(limit, owner)

    def clean_tmp(self) -> list[str]:
        return self.staging.clean_tmp()

    # ---- the objects ---------------------------------------------------------------------

    def _path(self, key: str = "") -> str:
        if key and (len(key) < 3 or not all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"not a store key: {key!r}")
        return f"/{quote(self.container)}" + (f"/{key}" if key else "")

    def _call(self, method: str, key: str = "", **kw: Any) -> httpx.Response:
        try:
            return self.account.client().request(method, self._path(key), **kw)
        except ServiceError as exc:
            raise StoreUnavailable(
                f"The image store (object storage) failed: {exc}. Nothing was kept; "
                "try again later.") from None

    def commit(self, upload: Upload) -> str:
        """Stream the finished upload into a new object; returns its key. The object store
        checks the md5 (ETag) and the length; the temporary file is removed either way."""
        key = secrets.token_hex(32) + upload.sha512[:64]
        try:
            self._call("PUT")  # the container (201 new, 202 existing)
            resp = self._call("PUT", key, content=_FileBody(upload.path), headers={
                "Content-Length": str(upload.size), "ETag": upload.checksum,
                "Content-Type": "application/octet-stream"})
            etag = resp.headers.get("etag", "").strip('"')
            if etag != upload.checksum:
                self.remove(key)
                raise StoreUnavailable(
                    f"Object storage stored the image data with md5 {etag or 'unknown'}, "
                    f"not {upload.checksum}; the upload was discarded.")
        finally:
            upload.discard()
        return key

    def open(self, key: str) -> tuple[IO[bytes], int]:
        """A reader of the object and its size (FileNotFoundError when it is gone)."""
        resp = self._call("HEAD", key, ok=(404,))
        if resp.status_code == 404:
            raise FileNotFoundError(key)
        size = int(resp.headers.get("content-length", "0"))
        reader = _ObjectReader(self, key, size, resp.headers.get("etag", "").strip('"'))
        return cast(IO[bytes], reader), size

    def head(self, key: str) -> tuple[int, str] | None:
        """(size, md5) of the object, None when it is gone."""
        resp = self._call("HEAD", key, ok=(404,))
        if resp.status_code == 404:
            return None
        return int(resp.headers.get("content-length", "0")), resp.headers.get("etag", "")

    def remove(self, key: str) -> bool:
        """Delete the object; True when it existed."""
        return self._call("DELETE", key, ok=(404,)).status_code != 404

    def listing(self) -> Iterator[dict[str, object]]:
        """The container's objects (name, bytes, hash, last_modified), page by page."""
        marker = ""
        while True:
            resp = self._call("GET", params={"format": "json", "marker": marker,
                                             "limit": str(LISTING_LIMIT)}, ok=(404,))
            page = resp.json() if resp.status_code == 200 else []
            yield from page
            if len(page) < LISTING_LIMIT:
                return
            marker = str(page[-1]["name"])

    def keys(self) -> Iterator[str]:
        for item in self.listing():
            yield str(item["name"])

    def collect_garbage(self, referenced: Iterable[str]) -> list[str]:
        """Remove objects no image refers to that are older than GARBAGE_AGE. Object storage
        unreachable: nothing is removed now (the next start tries again)."""
        keep = set(referenced)
        now = time.time()
        removed: list[str] = []
        try:
            for item in list(self.listing()):
                name = str(item["name"])
                if name in keep or now - _timestamp(str(item.get("last_modified", ""))) \
                        < GARBAGE_AGE:
                    continue
                if self.remove(name):
                    removed.append(name)
        except StoreUnavailable as exc:
            LOG.warning("unreferenced image objects not collected: %s", exc)
        return removed

    def usage(self) -> int:
        resp = self._call("HEAD", ok=(404,))
        return int(resp.headers.get("x-container-bytes-used", "0") or 0)

    def stream(self, key: str, offset: int) -> httpx.Response:
        """The object's bytes from ``offset`` on, as a streamed response (close it)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self._call("GET", key, headers=headers, stream=True)


def _timestamp(value: str) -> float:
    """A listing's last_modified (ISO, UTC) as seconds; 0 when unreadable (old enough)."""
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


class _ObjectReader(io.RawIOBase):
    """A file-like view of one object for the download handler: ``seek`` before the first
    ``read`` chooses where the GET starts; reads come from the streamed answer. Fewer
    bytes than the object's size is an error (a cut connection, not a short image), and
    so is a whole download whose md5 is not the object's ETag."""

    def __init__(self, store: ObjectStore, key: str, size: int, etag: str) -> None:
        super().__init__()
        self._store, self._key, self._size, self._etag = store, key, size, etag
        self._md5: Any = None
        self._pos = 0
        self._resp: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._left = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._resp is None

    def seek(self, offset: int, whence: int = 0) -> int:
        if self._resp is not None:
            raise io.UnsupportedOperation("seek after the download started")
        self._pos = {0: offset, 1: self._pos + offset, 2: self._size + offset}[whence]
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if self._pos >= self._size:
            return b""
        if self._chunks is None:
            if self._pos == 0:
                self._md5 = hashlib.md5(usedforsecurity=False)
            self._resp = self._store.stream(self._key, self._pos)
            self._chunks = self._resp.iter_bytes(CHUNK)
        want = self._size - self._pos if size < 0 else min(size, self._size - self._pos)
        out = bytearray(self._left)
        while len(out) < want:
            try:
                out += next(self._chunks)
            except StopIteration:
                raise OSError(f"object storage ended image data {self._key} at byte "
                              f"{self._pos + len(out)} of {self._size}") from None
        data, self._left = bytes(out[:want]), bytes(out[want:])
        self._pos += len(data)
        if self._md5 is not None:
            self._md5.update(data)
            if self._pos == self._size and self._md5.hexdigest() != self._etag:
                raise OSError(f"image data {self._key} read from object storage has md5 "
                              f"{self._md5.hexdigest()}, not {self._etag}")
        return data

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
        super().close()
