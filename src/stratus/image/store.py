"""Where image data lives: the storage interface (:class:`BlobStore`) and its file
implementation, the content-addressed store on the controller's disk (the other one is
:mod:`stratus.image.objectstore`, image data in object storage; ``[image] store``).

Layout under ``[image] images_dir``::

    blobs/<k[:2]>/<k>   one file per distinct content, k = sha512 hex of the data
    tmp/<owner>_<uuid>.part   uploads in progress
    .lock               flock(2) taken around every change of blobs/ and the
                        database rows that refer to them

An upload is streamed into ``tmp/`` while its md5 and sha512 are computed
(never whole in memory; :mod:`stratus.image.streaming`), fsynced, inspected, and only
then renamed into ``blobs/`` under the lock, in the same critical section that records the
blob in the database. So a crash leaves at most a temporary file (removed at
the next start when its process is dead) or a blob no image refers to
(removed by ``collect_garbage`` at the next start), never an image whose
data is missing.

``owner`` names the process receiving an upload (host, pid, process start
time), so a restarted service (or another worker) can tell a dead upload from
a live one even after pid reuse.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from stratus.image.streaming import ThreadedHash, WriteBehind

TMP_SUFFIX = ".part"
HASH_ALGO = "sha512"


def _process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or None if no such process
    or it is already dead (a zombie waiting to be reaped, or exiting: a killed service's
    worker can linger so for a moment, or for good under a parent that never reaps)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    rest = stat.rsplit(")", 1)[-1].split()
    if rest and rest[0] in ("Z", "X", "x"):
        return None
    return rest[19] if len(rest) > 19 else None


def current_owner() -> str:
    """This process as an upload owner: ``host_pid_starttime``."""
    pid = os.getpid()
    return f"{socket.gethostname()}_{pid}_{_process_start_time(pid) or 0}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` is a process of this host that no longer runs.

    Owners on other hosts are never declared dead from here.
    """
    try:
        host, pid, start = owner.rsplit("_", 2)
        pid_num = int(pid)
    except ValueError:
        return True  # not a token this code wrote: nobody is behind it
    if host != socket.gethostname():
        return False
    return _process_start_time(pid_num) != start


class LimitExceeded(Exception):
    """More data arrived than the upload may hold."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass
class Upload:
    """One upload being written into tmp/: size and hashes grow with every write.

    md5 and sha512 run on threads of their own (:class:`ThreadedHash`, bounded queues)
    while the caller's thread only writes, and the file's pages go to the disk while
    more data arrives (:class:`WriteBehind`), so ``finish`` waits for little."""

    path: Path
    limit: int
    size: int = 0
    _md5: ThreadedHash = field(default_factory=lambda: ThreadedHash(
        lambda: hashlib.md5(usedforsecurity=False), name="md5"))
    _sha512: ThreadedHash = field(default_factory=lambda: ThreadedHash(
        hashlib.sha512, name="sha512"))
    _fd: int = -1
    _behind: WriteBehind | None = None

    def __post_init__(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                           0o640)
        self._behind = WriteBehind(self._fd)

    def write(self, data: bytes) -> None:
        """Append ``data`` (bytes: it is hashed after this returns, so it must not change)."""
        if self.size + len(data) > self.limit:
            raise LimitExceeded(self.limit)
        self._md5.update(data)
        self._sha512.update(data)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)
        assert self._behind is not None
        self._behind.advance(self.size)

    def finish(self) -> None:
        """Flush the data to disk; the hashes are final after this."""
        os.fsync(self._fd)
        self._close_fd()
        self._md5.hexdigest()
        self._sha512.hexdigest()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    @property
    def checksum(self) -> str:
        return self._md5.hexdigest()

    @property
    def sha512(self) -> str:
        return self._sha512.hexdigest()

    def discard(self) -> None:
        self._md5.close()
        self._sha512.close()
        with contextlib.suppress(OSError):
            self._close_fd()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class BlobStore(Protocol):
    """What the image service needs of a store (the file store, the object store).

    An upload is always received into a local temporary file (``begin``: hashed while
    written, inspected once complete); ``commit`` moves it into the store and returns the
    key the image row records. ``locked`` serializes the commits and removals of this
    host's processes with the database rows that refer to the keys."""

    def ensure(self) -> None: ...

    def locked(self) -> contextlib.AbstractContextManager[None]: ...

    def begin(self, limit: int, owner: str) -> Upload: ...

    def commit(self, upload: Upload) -> str: ...

    def open(self, key: str) -> tuple[IO[bytes], int]: ...

    def remove(self, key: str) -> bool: ...

    def clean_tmp(self) -> list[str]: ...

    def collect_garbage(self, referenced: Iterable[str]) -> list[str]: ...


class FileStore:
    """Blobs named by their sha512 under ``root``; see the module docstring."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"
        self.lock_path = self.root / ".lock"

    def ensure(self) -> None:
        for path in (self.root, self.blobs, self.tmp):
            path.mkdir(mode=0o750, parents=True, exist_ok=True)
        self.lock_path.touch(mode=0o640, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive lock over blob changes (between processes and threads alike:
        every call opens its own file description)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def path_of(self, key: str) -> Path:
        if len(key) < 3 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a store key: {key!r}")
        return self.blobs / key[:2] / key

    def has(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def begin(self, limit: int, owner: str) -> Upload:
        return Upload(self.tmp / f"{owner}_{uuid.uuid4().hex}{TMP_SUFFIX}", limit)

    def commit(self, upload: Upload) -> str:
        """Move a finished upload into blobs/ (call with the lock held); returns its key.

        Equal content is stored once: when the blob exists already the upload's
        file is dropped.
        """
        key = upload.sha512
        dest = self.path_of(key)
        if dest.exists():
            upload.discard()
            return key
        dest.parent.mkdir(mode=0o750, exist_ok=True)
        os.replace(upload.path, dest)
        _fsync_dir(dest.parent)
        return key

    def remove(self, key: str) -> bool:
        """Delete a blob (call with the lock held); True when it existed."""
        path = self.path_of(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only succeeds when empty
        return True

    def open(self, key: str) -> tuple[IO[bytes], int]:
        """The blob opened for reading, and its size (FileNotFoundError when gone)."""
        fh = open(self.path_of(key), "rb")  # noqa: SIM115 - the caller closes it
        size = fh.seek(0, 2)
        fh.seek(0)
        with contextlib.suppress(AttributeError, OSError):  # a larger read-ahead
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return fh, size

    def keys(self) -> Iterator[str]:
        if not self.blobs.is_dir():
            return
        for sub in self.blobs.iterdir():
            if sub.is_dir():
                for blob in sub.iterdir():
                    if blob.is_file():
                        yield blob.name

    def clean_tmp(self) -> list[str]:
        """Remove temporary files whose upload process is dead; returns their names."""
        removed: list[str] = []
        if not self.tmp.is_dir():
            return removed
        for item in self.tmp.iterdir():
            owner = item.name.rsplit("_", 1)[0] if item.name.endswith(TMP_SUFFIX) else ""
            if owner and not owner_is_dead(owner):
                continue
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                item.unlink()
                removed.append(item.name)
        return removed

    def collect_garbage(self, referenced: Iterable[str]) -> list[str]:
        """Remove blobs not in ``referenced`` (call with the lock held)."""
        keep = set(referenced)
        return [key for key in list(self.keys()) if key not in keep and self.remove(key)]

    def usage(self) -> int:
        return sum(self.path_of(k).stat().st_size for k in self.keys())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
