"""The per-host image cache: ``<instances_path>/_base/<sha1(image id)>``.

An image is downloaded once (streamed to a temporary file, its md5 ``checksum``
and ``os_hash_value`` verified, then renamed into place), so a crash never leaves
a half-written base that looks complete. Concurrent spawns of the same image wait
on a per-image lock (a thread lock plus ``flock`` for other processes). Bases no
server uses are removed once they have been unused for ``max_age`` seconds (their
mtime is touched on every pass that finds them in use).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from stratus.agent.compute.virt.base import VirtError

LOG = logging.getLogger(__name__)

FORMATS = ("raw", "qcow2")
Fetch = Callable[[str], Iterable[bytes]]


class ImageCache:
    def __init__(self, base_dir: str | Path, fetch: Fetch):
        self.base_dir = Path(base_dir)
        self.fetch = fetch
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.downloads = 0  # how many downloads this process made (benchmarks, tests)

    @staticmethod
    def key(image_id: str) -> str:
        return hashlib.sha1(image_id.encode()).hexdigest()

    def path_for(self, image_id: str) -> Path:
        return self.base_dir / self.key(image_id)

    @contextlib.contextmanager
    def _lock(self, image_id: str) -> Iterator[None]:
        key = self.key(image_id)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            self.base_dir.mkdir(parents=True, exist_ok=True)
            with open(self.base_dir / f".{key}.lock", "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def ensure(self, image_id: str, image: dict[str, Any]) -> tuple[str, str]:
        """The cached base of ``image_id`` (downloaded if missing) and its format."""
        fmt = image.get("disk_format") or ""
        if fmt not in FORMATS:
            raise VirtError(f"image {image_id} has disk_format {fmt!r}; the compute agent "
                            f"boots only {' and '.join(FORMATS)}", temporary=False)
        path = self.path_for(image_id)
        if path.is_file():
            os.utime(path)
            return str(path), fmt
        with self._lock(image_id):
            if path.is_file():  # another spawn fetched it while we waited
                return str(path), fmt
            self._download(image_id, image, path)
        return str(path), fmt

    def _download(self, image_id: str, image: dict[str, Any], path: Path) -> None:
        tmp = path.with_name(f".{path.name}.part")
        md5 = hashlib.md5(usedforsecurity=False)
        algo = image.get("os_hash_algo") or ""
        expected_hash = image.get("os_hash_value") or ""
        try:
            multi = hashlib.new(algo) if algo and expected_hash else None
        except ValueError:
            raise VirtError(f"image {image_id}: unknown os_hash_algo {algo!r}",
                            temporary=False) from None
        size = 0
        started = time.monotonic()
        try:
            with open(tmp, "wb") as out:
                for chunk in self.fetch(image_id):
                    out.write(chunk)
                    md5.update(chunk)
                    if multi is not None:
                        multi.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            expected_md5 = image.get("checksum")
            if expected_md5 and md5.hexdigest() != expected_md5:
                raise VirtError(f"image {image_id}: md5 {md5.hexdigest()} does not match the "
                                f"image's checksum {expected_md5}", temporary=False)
            if multi is not None and multi.hexdigest() != expected_hash:
                raise VirtError(f"image {image_id}: {algo} of the data does not match the "
                                f"image's os_hash_value", temporary=False)
            expected_size = image.get("size")
            if expected_size and int(expected_size) != size:
                raise VirtError(f"image {image_id}: got {size} bytes, the image has "
                                f"{expected_size}", temporary=False)
            os.chmod(tmp, 0o644)
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self.downloads += 1
        LOG.info("image %s cached (%d bytes in %.2fs)", image_id, size,
                 time.monotonic() - started)

    def touch(self, image_ids: Iterable[str]) -> None:
        for image_id in image_ids:
            with contextlib.suppress(OSError):
                os.utime(self.path_for(image_id))

    def reclaim(self, in_use: Iterable[str], max_age: float) -> list[str]:
        """Remove bases (and stale partial downloads) unused for ``max_age`` seconds."""
        keep = {self.key(i) for i in in_use}
        removed: list[str] = []
        if not self.base_dir.is_dir():
            return removed
        now = time.time()
        for entry in self.base_dir.iterdir():
            name = entry.name
            if name.endswith(".lock"):
                continue
            key = name.removeprefix(".").removesuffix(".part")
            if key in keep:
                continue
            try:
                age = now - entry.stat().st_mtime
            except OSError:
                continue
            if age < max_age:
                continue
            LOG.info("image cache: removing %s (unused for %.0fs)", name, age)
            with contextlib.suppress(OSError):
                entry.unlink()
                (self.base_dir / f".{key}.lock").unlink(missing_ok=True)
                removed.append(name)
        return removed
