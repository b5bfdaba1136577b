"""The storage layer of one device: objects as files, their metadata beside them.

A device is a directory holding the marker file ``.stratus-object-device`` (written by
the role; a device without it -- an unmounted disk -- is down). An object lives in
``objects/<partition>/<hash>/``:

- ``<ts>.data``: the bytes, with ``<ts>.json`` beside it (name, size, etag,
  content type, user metadata), written to temporary files, fsynced and renamed
  (the ``.json`` first: a ``.data`` without its ``.json`` is an unfinished write and
  ignored);
- ``<ts>.meta``: metadata set by a later POST (the newest one after the data wins);
- ``<ts>.ts``: a tombstone, so a delete wins over an older replica elsewhere.

``<ts>`` is the X-Timestamp (``%016.5f``). Older files are removed once a newer one is
in place; a process killed at any moment leaves either the old or the new state, plus
at worst a temporary file under ``tmp/`` that :meth:`Device.sweep_tmp` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from stratus.common.crashpoints import crash_point

MARKER = ".stratus-object-device"
TMP_AGE = 3600.0  # seconds after which an abandoned temporary file is removed


def timestamp(t: float | None = None) -> str:
    """An X-Timestamp: seconds since the epoch, ``%016.5f``."""
    return f"{time.time() if t is None else t:016.5f}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, tmpdir: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=tmpdir, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class ObjectFile:
    """What a device holds of one object: its newest state."""

    kind: str  # "data" or "tombstone"
    timestamp: str
    metadata: dict[str, Any]
    data_path: Path | None = None
    meta_timestamp: str = ""
    opener: Callable[[], BinaryIO] | None = None  # a remote replica's bytes

    def open(self) -> BinaryIO:
        """The object's bytes (a local file, or a remote replica's ranged reads)."""
        if self.opener is not None:
            return self.opener()
        if self.data_path is None:
            raise OSError("a tombstone has no bytes")
        return open(self.data_path, "rb")

    @property
    def state(self) -> str:
        """The replicator's comparison key: newest data or tombstone, then newest meta."""
        return f"{self.timestamp}{self.kind[0]}{self.meta_timestamp}"


class Writer:
    """Streams one object's bytes into a temporary file of a device."""

    def __init__(self, device: Device, part: int, obj_hash: str) -> None:
        self.device = device
        self.dir = device.object_dir(part, obj_hash)
        fd, tmp = tempfile.mkstemp(dir=device.tmp, suffix=".tmp")
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb")
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.md5.update(chunk)
        self.size += len(chunk)

    def commit(self, ts: str, metadata: dict[str, Any]) -> None:
        """fsync, then rename the metadata and the data into place."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.dir / f"{ts}.json", self.device.tmp, metadata)
        os.replace(self.tmp, self.dir / f"{ts}.data")
        _fsync_dir(self.dir)
        self.device.cleanup(self.dir)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class Device:
    """One device directory."""

    local = True

    def __init__(self, dev_id: int, path: str | Path) -> None:
        self.id = dev_id
        self.path = Path(path)
        self.tmp = self.path / "tmp"

    def available(self) -> bool:
        return (self.path / MARKER).is_file()

    def prepare(self) -> None:
        """Make the device (the role and the tests): the directories and the marker."""
        for sub in ("objects", "tmp", "quarantined"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        (self.path / MARKER).touch()

    def object_dir(self, part: int, obj_hash: str) -> Path:
        return self.path / "objects" / str(part) / obj_hash

    def writer(self, part: int, obj_hash: str) -> Writer:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return Writer(self, part, obj_hash)

    def read(self, part: int, obj_hash: str) -> ObjectFile | None:
        """The object's newest state here, or None when this device knows nothing of it."""
        d = self.object_dir(part, obj_hash)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return None
        datas = sorted(n[:-5] for n in names if n.endswith(".data")
                       and f"{n[:-5]}.json" in names)
        tombs = sorted(n[:-3] for n in names if n.endswith(".ts"))
        newest_data = datas[-1] if datas else ""
        newest_tomb = tombs[-1] if tombs else ""
        if not newest_data and not newest_tomb:
            return None
        if newest_tomb >= newest_data:
            return ObjectFile("tombstone", newest_tomb, self._json(d / f"{newest_tomb}.ts"))
        meta = self._json(d / f"{newest_data}.json")
        metas = sorted(n[:-5] for n in names if n.endswith(".meta") and n[:-5] > newest_data)
        meta_ts = ""
        if metas:
            meta_ts = metas[-1]
            update = self._json(d / f"{meta_ts}.meta")
            meta = {**meta, "user": update.get("user", {}),
                    **{k: v for k, v in update.items() if k != "user"}}
        return ObjectFile("data", newest_data, meta, d / f"{newest_data}.data", meta_ts)

    @staticmethod
    def _json(path: Path) -> dict[str, Any]:
        try:
            with open(path) as f:
                data = json.load(f)
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_meta(self, part: int, obj_hash: str, ts: str, update: dict[str, Any]) -> bool:
        """A POST: new user metadata (and content type); False when there is no object."""
        current = self.read(part, obj_hash)
        if current is None or current.kind != "data":
            return False
        d = self.object_dir(part, obj_hash)
        _write_json(d / f"{ts}.meta", self.tmp, update)
        _fsync_dir(d)
        self.cleanup(d)
        return True

    def tombstone(self, part: int, obj_hash: str, ts: str, info: dict[str, Any]) -> None:
        d = self.object_dir(part, obj_hash)
        d.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        _write_json(d / f"{ts}.ts", self.tmp, info)
        _fsync_dir(d)
        self.cleanup(d)

    def cleanup(self, d: Path) -> None:
        """Remove what the newest state makes obsolete."""
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return
        state = self.read_dir_state(names)
        if state is None:
            return
        newest, meta_ts = state
        for n in names:
            stem, _, ext = n.rpartition(".")
            obsolete = (stem < newest and ext in ("data", "json", "ts", "meta")) or (
                ext == "meta" and stem < meta_ts) or (ext == "meta" and newest.endswith("t"))
            if stem == newest[:-1] and ext in ("data", "json", "ts"):
                obsolete = False
            if obsolete:
                with contextlib.suppress(FileNotFoundError):
                    (d / n).unlink()

    @staticmethod
    def read_dir_state(names: list[str]) -> tuple[str, str] | None:
        datas = [n[:-5] for n in names if n.endswith(".data") and f"{n[:-5]}.json" in names]
        tombs = [n[:-3] for n in names if n.endswith(".ts")]
        nd, nt = max(datas, default=""), max(tombs, default="")
        if not nd and not nt:
            return None
        if nt >= nd:
            return nt + "t", ""
        metas = [n[:-5] for n in names if n.endswith(".meta") and n[:-5] > nd]
        return nd + "d", max(metas, default="")

    def partitions(self) -> list[int]:
        try:
            return sorted(int(p) for p in os.listdir(self.path / "objects") if p.isdigit())
        except FileNotFoundError:
            return []

    def hashes(self, part: int) -> dict[str, str]:
        """Every object of a partition here and its state (see :attr:`ObjectFile.state`)."""
        base = self.path / "objects" / str(part)
        out: dict[str, str] = {}
        try:
            entries = os.listdir(base)
        except FileNotFoundError:
            return out
        for h in entries:
            f = self.read(part, h)
            if f is not None:
                out[h] = f.state
        return out

    def partition_digest(self, part: int) -> str:
        """One hash of a partition's contents: replicas compare this first."""
        items = sorted(self.hashes(part).items())
        return hashlib.md5(json.dumps(items).encode(), usedforsecurity=False).hexdigest()

    def current_files(self, part: int, obj_hash: str) -> list[Path]:
        """The files making up the object's newest state (what replication copies)."""
        f = self.read(part, obj_hash)
        if f is None:
            return []
        d = self.object_dir(part, obj_hash)
        if f.kind == "tombstone":
            return [d / f"{f.timestamp}.ts"]
        files = [d / f"{f.timestamp}.json", d / f"{f.timestamp}.data"]
        if f.meta_timestamp:
            files.append(d / f"{f.meta_timestamp}.meta")
        return files

    def receive(self, part: int, obj_hash: str, files: list[Path]) -> None:
        """Copy another device's files of an object here (``.data`` last), then clean up."""
        d = self.object_dir(part, obj_hash)
        d.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        for src in sorted(files, key=lambda p: p.suffix == ".data"):
            fd, tmp = tempfile.mkstemp(dir=self.tmp, suffix=".tmp")
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, d / src.name)
        _fsync_dir(d)
        self.cleanup(d)

    def install(self, part: int, obj_hash: str, files: list[tuple[str, int]],
                read: Callable[[int], bytes]) -> None:
        """Files of an object arriving as one stream (an object server's PUT): each
        written to ``tmp`` and fsynced, then all renamed in the given order (``.data``
        last), then clean up. ValueError when the stream ends early; nothing is renamed
        then."""
        tmps: list[tuple[Path, str]] = []
        self.tmp.mkdir(parents=True, exist_ok=True)
        try:
            for name, size in files:
                fd, tmp = tempfile.mkstemp(dir=self.tmp, suffix=".tmp")
                tmps.append((Path(tmp), name))
                with os.fdopen(fd, "wb") as out:
                    left = size
                    while left > 0:
                        chunk = read(min(left, 1 << 16))
                        if not chunk:
                            raise ValueError(f"{name}: the body ended {left} bytes early")
                        out.write(chunk)
                        left -= len(chunk)
                        crash_point("object.server.put.partial")
                    out.flush()
                    os.fsync(out.fileno())
            d = self.object_dir(part, obj_hash)
            d.mkdir(parents=True, exist_ok=True)
            for tmp_path, name in tmps:
                os.replace(tmp_path, d / name)
            _fsync_dir(d)
        finally:
            for tmp_path, _name in tmps:
                tmp_path.unlink(missing_ok=True)
        self.cleanup(d)

    def remove(self, part: int, obj_hash: str) -> None:
        """Drop an object directory (a handoff's copy, once the primaries have it)."""
        shutil.rmtree(self.object_dir(part, obj_hash), ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.path / "objects" / str(part)).rmdir()

    def quarantine(self, part: int, obj_hash: str) -> Path:
        """Move a bad object aside (the auditor); replication then restores a good copy."""
        dest = self.path / "quarantined" / "objects" / f"{obj_hash}-{timestamp()}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.object_dir(part, obj_hash), dest)
        return dest

    def sweep_tmp(self, age: float = TMP_AGE) -> int:
        """Remove temporary files older than ``age`` seconds (writes a crash left)."""
        removed = 0
        now = time.time()
        for p in self.tmp.glob("*.tmp") if self.tmp.is_dir() else []:
            with contextlib.suppress(FileNotFoundError):
                if now - p.stat().st_mtime > age:
                    p.unlink()
                    removed += 1
        return removed
