"""Objects on the ring's devices: a PUT writes every replica and succeeds on a quorum,
a read takes the newest state the replicas answer, a delete writes tombstones.

A primary device that is down (:meth:`Device.available`) is replaced by the next
handoff device; the replicator later moves the handoff's copy to the primary.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from stratus.common.errors import ServiceUnavailable
from stratus.contracts.object import Ring, hash_path
from stratus.object import ring as ringfile
from stratus.object.diskfile import Device, ObjectFile, Writer

HANDOFF_READS = 2  # handoff devices a read also asks (where a write may have gone)


def quorum(replicas: int) -> int:
    return replicas // 2 + 1


@dataclass
class Location:
    part: int
    obj_hash: str
    devices: list[Device]  # where to write: the primaries, a down one replaced by a handoff
    readable: list[Device]  # where to read: the available primaries, then handoffs


@dataclass
class PutSession:
    """An object PUT in progress: one writer per replica."""

    location: Location
    writers: list[Writer] = field(default_factory=list)
    size: int = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        failed = []
        for w in self.writers:
            try:
                w.write(chunk)
            except OSError:
                failed.append(w)
        for w in failed:
            w.abort()
            self.writers.remove(w)

    @property
    def etag(self) -> str:
        return self.writers[0].md5.hexdigest() if self.writers else ""

    def abort(self) -> None:
        for w in self.writers:
            w.abort()
        self.writers = []


class RingHolder:
    """The ring file, re-read when it changes on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ring: Ring | None = None
        self._mtime = 0.0
        self._devices: dict[int, Device] = {}

    def get(self) -> tuple[Ring, dict[int, Device]]:
        with self._lock:
            try:
                mtime = os.stat(self.path).st_mtime
            except FileNotFoundError:
                raise ServiceUnavailable(f"The object ring {self.path} is missing.") from None
            if self._ring is None or mtime != self._mtime:
                self._ring = ringfile.load(self.path)
                self._mtime = mtime
                self._devices = {d.id: Device(d.id, d.path) for d in self._ring.devices}
            return self._ring, self._devices


class ObjectStore:
    """Replicated reads and writes of objects."""

    def __init__(self, rings: RingHolder) -> None:
        self.rings = rings

    def locate(self, account: str, container: str, name: str) -> Location:
        ring, devices = self.rings.get()
        part = ring.partition(account, container, name)
        h = hash_path(ring.salt, account, container, name)
        primaries = [devices[d.id] for d in ring.primaries(part)]
        handoffs = (devices[d.id] for d in ring.handoffs(part))
        targets: list[Device] = []
        readable = [d for d in primaries if d.available()]
        for dev in primaries:
            if dev.available():
                targets.append(dev)
                continue
            for spare in handoffs:
                if spare.available():
                    targets.append(spare)
                    break
        extra = [devices[d.id] for d in ring.handoffs(part)][:HANDOFF_READS]
        readable += [d for d in extra if d.available() and d not in readable]
        return Location(part, h, targets, readable)

    def begin_put(self, account: str, container: str, name: str) -> PutSession:
        loc = self.locate(account, container, name)
        ring, _ = self.rings.get()
        if len(loc.devices) < quorum(ring.replicas):
            raise ServiceUnavailable("Not enough storage devices are up to store the object.")
        session = PutSession(loc)
        for dev in loc.devices:
            try:
                session.writers.append(dev.writer(loc.part, loc.obj_hash))
            except OSError:
                continue
        if len(session.writers) < quorum(ring.replicas):
            session.abort()
            raise ServiceUnavailable("Not enough storage devices are up to store the object.")
        return session

    def commit_put(self, session: PutSession, ts: str, metadata: dict[str, Any]) -> None:
        ring, _ = self.rings.get()

        def commit(w: Writer) -> bool:
            try:
                w.commit(ts, metadata)
                return True
            except OSError:
                w.abort()
                return False

        # the replicas' fsyncs and renames at once (each on its own device)
        with ThreadPoolExecutor(max(1, len(session.writers))) as pool:
            done = sum(pool.map(commit, session.writers))
        if done < quorum(ring.replicas):
            raise ServiceUnavailable("The object was not stored on enough devices; retry.")

    def read(self, account: str, container: str, name: str) -> ObjectFile | None:
        """The newest state among the replicas that answer (None: nobody has it)."""
        loc = self.locate(account, container, name)
        best: ObjectFile | None = None
        for dev in loc.readable:
            try:
                f = dev.read(loc.part, loc.obj_hash)
            except OSError:
                continue
            if f is not None and (best is None or f.state > best.state):
                best = f
        return best

    def delete(self, account: str, container: str, name: str, ts: str) -> None:
        loc = self.locate(account, container, name)
        info = {"name": f"/{account}/{container}/{name}"}
        done = 0
        for dev in loc.devices:
            try:
                dev.tombstone(loc.part, loc.obj_hash, ts, info)
                done += 1
            except OSError:
                continue
        ring, _ = self.rings.get()
        if done < quorum(ring.replicas):
            raise ServiceUnavailable("The delete did not reach enough devices; retry.")

    def post(self, account: str, container: str, name: str, ts: str,
             update: dict[str, Any]) -> bool:
        loc = self.locate(account, container, name)
        done = 0
        for dev in loc.readable:
            try:
                done += dev.write_meta(loc.part, loc.obj_hash, ts, update)
            except OSError:
                continue
        return done > 0


def iter_file(fh: BinaryIO, start: int, length: int, chunk: int = 1 << 16,
              close: bool = True) -> Iterator[bytes]:
    """``length`` bytes of an open file from ``start`` (the file is closed at the end
    when ``close``)."""
    try:
        fh.seek(start)
        left = length
        while left > 0:
            data = fh.read(min(chunk, left))
            if not data:
                return
            left -= len(data)
            yield data
    finally:
        if close:
            fh.close()
