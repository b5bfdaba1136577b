"""Objects on the ring's devices: a PUT writes every replica and succeeds on a quorum,
a read takes the newest state the replicas answer, a delete writes tombstones.

A primary device that is down (:meth:`Device.available`, asked of every primary at
once) is replaced by the next handoff device; the replicator later moves the handoff's
copy to the primary. A ring device with a port is another process's
(``stratus-object-server``): it is reached as a
:class:`stratus.object.remote.RemoteDevice`, and a PUT streams the client's body to
every such replica while it arrives (:class:`stratus.object.remote.StreamWriter`, one
request per replica, each fed through a short queue), the md5 computed once here; a
replica that fails mid-stream is dropped, and the servers make the object visible only
when the metadata frame (size, md5, timestamp) arrives after the whole body. A read asks
the primaries and the first handoffs at once and takes the newest state among the
answers (a tombstone newer than the data is a 404).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from stratus.common.errors import ServiceUnavailable
from stratus.contracts.object import Ring, hash_path
from stratus.object import ring as ringfile
from stratus.object.diskfile import Device, ObjectFile, Writer
from stratus.object.remote import RemoteDevice, StreamWriter

HANDOFF_READS = 2  # handoff devices a read also asks (where a write may have gone)


def quorum(replicas: int) -> int:
    return replicas // 2 + 1


AnyDevice = Device | RemoteDevice
AnyWriter = Writer | StreamWriter


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
    """An object PUT in progress: one writer per replica, fed each chunk once (a remote
    writer only queues it: the replicas receive it at the same time); a writer that
    fails is dropped, and once fewer than ``needed`` are left the PUT fails (503)."""

    location: Location
    writers: list[AnyWriter] = field(default_factory=list)
    size: int = 0
    needed: int = 1
    md5: Any = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.md5.update(chunk)
        failed: list[AnyWriter] = []
        for w in self.writers:
            try:
                w.write(chunk)
            except OSError:
                failed.append(w)
        for w in failed:
            w.abort()
            self.writers.remove(w)
        if len(self.writers) < self.needed:
            self.abort()
            raise ServiceUnavailable("Too many storage devices failed during the upload; "
                                     "nothing was stored, retry.")

    @property
    def etag(self) -> str:
        return str(self.md5.hexdigest())

    def abort(self) -> None:
        for w in self.writers:
            w.abort()
        self.writers = []


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
        self.pool = ThreadPoolExecutor(32, thread_name_prefix="object-replicas")

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
        extra = [devices[d.id] for d in ring.handoffs(part)][:HANDOFF_READS]
        asked = primaries + [d for d in extra if d not in primaries]
        # every primary (and the first handoffs) asked at once
        up = dict(zip([id(d) for d in asked],
                      self.rings.pool.map(lambda d: d.available(), asked), strict=True))
        targets: list[AnyDevice] = []
        readable = [d for d in primaries if up[id(d)]]
        for dev in primaries:
            if dev in readable:
                targets.append(dev)
                continue
            for spare in handoffs:
                if up[id(spare)] if id(spare) in up else spare.available():
                    targets.append(spare)
                    break
        readable += [d for d in extra if up[id(d)] and d not in readable]
        return Location(part, h, targets, readable)

    def begin_put(self, account: str, container: str, name: str) -> PutSession:
        loc = self.locate(account, container, name)
        ring, _ = self.rings.get()
        if len(loc.devices) < quorum(ring.replicas):
            raise ServiceUnavailable("Not enough storage devices are up to store the object.")
        session = PutSession(loc, needed=quorum(ring.replicas))
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

        def commit(w: AnyWriter) -> bool:
            try:
                w.commit(ts, metadata)
                return True
            except OSError:
                w.abort()
                return False

        # the replicas' fsyncs and renames at once (each on its own device or server), on
        # threads of this PUT's own: a commit waits for fsyncs, and on the shared pool
        # concurrent PUTs' commits would hold up every other request's quick lookups
        with ThreadPoolExecutor(max(1, len(session.writers))) as pool:
            done = sum(pool.map(commit, list(session.writers)))
        if done < quorum(ring.replicas):
            raise ServiceUnavailable("The object was not stored on enough devices; retry.")

    def read(self, account: str, container: str, name: str) -> ObjectFile | None:
        """The newest state among the replicas that answer (None: nobody has it): the
        primaries and the first handoffs are asked at once, without asking first whether
        they are up (one that does not answer within the timeout counts as knowing
        nothing); a 404 from one replica does not hide another's data, a tombstone newer
        than the data wins."""
        ring, devices = self.rings.get()
        part = ring.partition(account, container, name)
        h = hash_path(ring.salt, account, container, name)
        asked = [devices[d.id] for d in ring.primaries(part)]
        asked += [d for d in (devices[d.id] for d in ring.handoffs(part))
                  if d not in asked][:HANDOFF_READS]

        def state(dev: AnyDevice) -> ObjectFile | None:
            try:
                return dev.read(part, h)
            except OSError:
                return None

        return newest(self.rings.pool.map(state, asked))

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


def newest(states: Iterable[ObjectFile | None]) -> ObjectFile | None:
    """The newest of the replicas' answers (see :attr:`ObjectFile.state`)."""
    best: ObjectFile | None = None
    for f in states:
        if f is not None and (best is None or f.state > best.state):
            best = f
    return best


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
