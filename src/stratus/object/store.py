"""Objects on the ring's devices: a PUT writes every replica and succeeds on a quorum,
a read takes the newest state the replicas answer, a delete writes tombstones.

A primary device that is down (:meth:`Device.available`) is replaced by the next
handoff device; the replicator later moves the handoff's copy to the primary. A ring
device with a port is another process's (``stratus-object-server``): it is reached as a
:class:`stratus.object.remote.RemoteDevice`, and a PUT spools the body once locally and
sends it to each such replica when it commits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from stratus.common.errors import ServiceUnavailable
from stratus.contracts.object import Ring, hash_path
from stratus.object import ring as ringfile
from stratus.object.diskfile import Device, ObjectFile, Writer
from stratus.object.remote import RemoteDevice, RemoteWriter, Spool

HANDOFF_READS = 2  # handoff devices a read also asks (where a write may have gone)


def quorum(replicas: int) -> int:
    return replicas // 2 + 1


AnyDevice = Device | RemoteDevice
AnyWriter = Writer | RemoteWriter


@dataclass(frozen=True)
class Remote:
    """How this process reaches object servers (``[object_server]`` settings)."""

    secret: str = ""
    scheme: str = "http"
    timeout: float = 10.0
    here: tuple[str, int] | None = None  # this host's object server: its devices are local


@dataclass
class Location:
    part: int
    obj_hash: str
    devices: list[AnyDevice]  # where to write: the primaries, a down one by a handoff
    readable: list[AnyDevice]  # where to read: the available primaries, then handoffs


@dataclass
class PutSession:
    """An object PUT in progress: one writer per replica."""

    location: Location
    writers: list[AnyWriter] = field(default_factory=list)
    size: int = 0
    spool: Spool | None = None  # the body, for the remote replicas

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.spool is not None:
            self.spool.write(chunk)
        failed: list[AnyWriter] = []
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
        if self.spool is not None:
            self.spool.discard()


class RingHolder:
    """The ring file, re-read when it changes on disk."""

    def __init__(self, path: str | Path, remote: Remote | None = None) -> None:
        self.path = Path(path)
        self.remote = remote or Remote()
        self._lock = threading.Lock()
        self._ring: Ring | None = None
        self._mtime = 0.0
        self._devices: dict[int, AnyDevice] = {}
        self._client: httpx.Client | None = None

    def _device(self, d: Any) -> AnyDevice:
        if d.port == 0 or (d.host, d.port) == self.remote.here:
            return Device(d.id, d.path)
        if self._client is None:
            self._client = httpx.Client(timeout=self.remote.timeout)
        host = f"[{d.host}]" if ":" in d.host else d.host
        return RemoteDevice(d.id, f"{self.remote.scheme}://{host}:{d.port}", self._client,
                            self.remote.secret)

    def get(self) -> tuple[Ring, dict[int, AnyDevice]]:
        with self._lock:
            try:
                mtime = os.stat(self.path).st_mtime
            except FileNotFoundError:
                raise ServiceUnavailable(f"The object ring {self.path} is missing.") from None
            if self._ring is None or mtime != self._mtime:
                self._ring = ringfile.load(self.path)
                self._mtime = mtime
                self._devices = {d.id: self._device(d) for d in self._ring.devices}
            return self._ring, self._devices


class ObjectStore:
    """Replicated reads and writes of objects."""

    def __init__(self, rings: RingHolder, spool_dir: str | Path = "") -> None:
        self.rings = rings
        self.spool_dir = Path(spool_dir) if spool_dir else None

    def local_devices(self) -> list[Device]:
        """The ring's devices this process reaches on its own disks."""
        _ring, devices = self.rings.get()
        return [d for d in devices.values() if isinstance(d, Device)]

    def spool_device(self, create: bool = False) -> Device | None:
        """Where a proxy without local devices keeps its pending listing updates (None
        when there is no such directory and ``create`` is false)."""
        if self.spool_dir is None or not (create or self.spool_dir.is_dir()):
            return None
        dev = Device(-1, self.spool_dir)
        dev.tmp.mkdir(parents=True, exist_ok=True)
        return dev

    def pending_device(self, devices: list[AnyDevice]) -> Device:
        """A local place for a request's pending record: a local replica's device, else
        the spool directory."""
        for dev in devices:
            if isinstance(dev, Device):
                return dev
        try:
            spool = self.spool_device(create=True)
        except OSError:
            spool = None
        if spool is None:
            raise ServiceUnavailable("No local place for pending updates ([object] "
                                     "spool_dir).")
        return spool

    def locate(self, account: str, container: str, name: str) -> Location:
        ring, devices = self.rings.get()
        part = ring.partition(account, container, name)
        h = hash_path(ring.salt, account, container, name)
        primaries = [devices[d.id] for d in ring.primaries(part)]
        handoffs = (devices[d.id] for d in ring.handoffs(part))
        targets: list[AnyDevice] = []
        readable = [d for d in primaries if d.available()]
        for dev in primaries:
            if dev in readable:
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
        try:
            if any(isinstance(d, RemoteDevice) for d in loc.devices):
                session.spool = Spool(self.spool_dir or Path(ring_dir(self.rings)))
            for dev in loc.devices:
                if isinstance(dev, RemoteDevice):
                    session.writers.append(dev.writer(loc.part, loc.obj_hash, session.spool))
                else:
                    session.writers.append(dev.writer(loc.part, loc.obj_hash))
        except OSError:
            session.abort()
            raise ServiceUnavailable("The object cannot be spooled here; retry.") from None
        if len(session.writers) < quorum(ring.replicas):
            session.abort()
            raise ServiceUnavailable("Not enough storage devices are up to store the object.")
        return session

    def commit_put(self, session: PutSession, ts: str, metadata: dict[str, Any]) -> None:
        ring, _ = self.rings.get()

        def commit(w: AnyWriter) -> bool:
            try:
                w.commit(ts, metadata)
                return True
            except OSError:
                w.abort()
                return False

        # the replicas' fsyncs and renames at once (each on its own device or server)
        try:
            with ThreadPoolExecutor(max(1, len(session.writers))) as pool:
                done = sum(pool.map(commit, session.writers))
        finally:
            if session.spool is not None:
                session.spool.discard()
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


def ring_dir(rings: RingHolder) -> str:
    """The ring file's directory (a spool directory of last resort)."""
    return str(rings.path.parent)


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
