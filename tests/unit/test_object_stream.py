"""The proxy's data path (issue 14): a PUT streamed to every replica at once, dropped
replicas and the quorum, the server's framed stream (nothing visible unless complete and
matching), and reads taking the newest state among the replicas.

Fakes stand in for replicas where the fan-out logic is the subject (a writer that fails
on its n-th chunk); the object server's own checks run its real app in process
(Starlette's test client) over a device under tmp_path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, cast

import pytest
from starlette.testclient import TestClient

from stratus.common.errors import ServiceUnavailable
from stratus.object.diskfile import Device, ObjectFile
from stratus.object.remote import (
    FRAME,
    SECRET_HEADER,
    STREAM_HEADER,
    FrameReader,
    RemoteDevice,
    StreamWriter,
)
from stratus.object.ring import ensure
from stratus.object.server import create_app
from stratus.object.store import Location, ObjectStore, PutSession, RingHolder, newest

pytestmark = [pytest.mark.unit]
H = "0123456789abcdef0123456789abcdef"
TS = "1700000000.00000"


class FakeWriter:
    """A replica that fails on its ``fail_at``-th write (or at commit)."""

    def __init__(self, fail_at: int = 0, fail_commit: bool = False) -> None:
        self.device = object()
        self.fail_at = fail_at
        self.fail_commit = fail_commit
        self.chunks: list[bytes] = []
        self.aborted = False
        self.committed: dict[str, Any] | None = None

    def write(self, chunk: bytes) -> None:
        if self.fail_at and len(self.chunks) + 1 >= self.fail_at:
            raise OSError("server gone")
        self.chunks.append(chunk)

    def commit(self, ts: str, metadata: dict[str, Any]) -> None:
        if self.fail_commit:
            raise OSError("server gone")
        self.committed = {**metadata, "timestamp": ts}

    def abort(self) -> None:
        self.aborted = True


def session(*writers: FakeWriter) -> PutSession:
    s = PutSession(Location(0, H, [], []), needed=2)
    s.writers = [cast(Any, w) for w in writers]
    return s


def frames(*chunks: bytes, meta: dict[str, Any] | None = None) -> bytes:
    out = b"".join(FRAME.pack(len(c)) + c for c in chunks if c)
    if meta is not None:
        raw = json.dumps(meta).encode()
        out += FRAME.pack(0) + FRAME.pack(len(raw)) + raw
    return out


# the fan-out and the quorum ---------------------------------------------------------
def test_every_replica_gets_each_chunk_once_and_the_md5_is_computed_once() -> None:
    a, b, c = FakeWriter(), FakeWriter(), FakeWriter()
    s = session(a, b, c)
    for chunk in (b"abc", b"", b"defg"):
        s.write(chunk)
    assert a.chunks == b.chunks == c.chunks == [b"abc", b"", b"defg"]
    assert s.size == 7 and s.etag == hashlib.md5(b"abcdefg").hexdigest()


def test_a_replica_failing_mid_stream_is_dropped_and_aborted() -> None:
    a, b, bad = FakeWriter(), FakeWriter(), FakeWriter(fail_at=2)
    s = session(a, b, bad)
    s.write(b"one")
    s.write(b"two")
    s.write(b"three")
    assert s.writers == [a, b] and bad.aborted and not a.aborted
    assert a.chunks == [b"one", b"two", b"three"]


def test_below_quorum_mid_stream_is_a_503_and_every_replica_aborted() -> None:
    a, bad1, bad2 = FakeWriter(), FakeWriter(fail_at=1), FakeWriter(fail_at=3)
    s = session(a, bad1, bad2)
    s.write(b"x")  # bad1 dropped, two left: still a quorum
    s.write(b"y")
    with pytest.raises(ServiceUnavailable):
        s.write(b"z")  # bad2 dropped: one left
    assert a.aborted and bad1.aborted and bad2.aborted and s.writers == []


def _store(tmp_path: Path) -> ObjectStore:
    specs = []
    for i in range(3):
        Device(i, tmp_path / f"d{i}").prepare()
        specs.append(f"h{i}:{i + 1}:{tmp_path / f'd{i}'}")
    ensure(tmp_path / "ring.json", specs, 2, 3)
    return ObjectStore(RingHolder(tmp_path / "ring.json"))


@pytest.mark.parametrize(("failing", "ok"), [(0, True), (1, True), (2, False), (3, False)])
def test_commit_needs_a_quorum(tmp_path: Path, failing: int, ok: bool) -> None:
    store = _store(tmp_path)
    writers = [FakeWriter(fail_commit=i < failing) for i in range(3)]
    s = session(*writers)
    s.write(b"data")
    if ok:
        store.commit_put(s, TS, {"etag": s.etag})
    else:
        with pytest.raises(ServiceUnavailable):
            store.commit_put(s, TS, {"etag": s.etag})
    assert sum(w.committed is not None for w in writers) == 3 - failing
    assert all(w.aborted for w in writers[:failing])


# reads: the newest state among the replicas -------------------------------------------
def test_newest_state_wins() -> None:
    data = ObjectFile("data", "1700000001.00000", {})
    older_tomb = ObjectFile("tombstone", "1700000000.00000", {})
    newer_tomb = ObjectFile("tombstone", "1700000002.00000", {})
    assert newest([None, data, None]) is data
    assert newest([older_tomb, None, data]) is data
    assert newest([data, newer_tomb]) is newer_tomb
    assert newest([None, None]) is None


def test_read_finds_the_object_on_one_replica_and_a_newer_tombstone_wins(
        tmp_path: Path) -> None:
    store = _store(tmp_path)
    loc = store.locate("AUTH_a", "c", "o")
    only = loc.devices[1]
    assert isinstance(only, Device)
    w = only.writer(loc.part, loc.obj_hash)
    w.write(b"hello")
    w.commit("1700000001.00000", {"size": 5})
    f = store.read("AUTH_a", "c", "o")  # two replicas answer "nothing here"
    assert f is not None and f.kind == "data" and f.open().read() == b"hello"
    tomb_on = loc.devices[2]
    assert isinstance(tomb_on, Device)
    tomb_on.tombstone(loc.part, loc.obj_hash, "1700000000.00000", {})
    got = store.read("AUTH_a", "c", "o")
    assert got is not None and got.kind == "data"  # an older tombstone loses
    tomb_on.tombstone(loc.part, loc.obj_hash, "1700000002.00000", {})
    got = store.read("AUTH_a", "c", "o")
    assert got is not None and got.kind == "tombstone"


# the server's side of the stream ------------------------------------------------------
def test_frame_reader_any_chunking() -> None:
    body = frames(b"hello ", b"streamed ", b"object", meta={"size": 21})
    for step in (1, 3, 7, len(body)):
        reader = FrameReader()
        got = b"".join(b"".join(reader.feed(body[i:i + step]))
                       for i in range(0, len(body), step))
        assert got == b"hello streamed object" and reader.metadata == {"size": 21}


@pytest.mark.parametrize(("body", "error"), [
    (frames(b"x", meta={}) + b"more", "after"),
    (frames(b"x") + FRAME.pack(0) + FRAME.pack(0), "empty metadata"),
    (frames(b"x") + FRAME.pack(0) + FRAME.pack(4) + b"[1] ", "JSON object"),
    (frames(b"x") + FRAME.pack(0) + FRAME.pack(2) + b"{{", "not JSON"),
    (frames(b"x") + FRAME.pack(0) + FRAME.pack(1 << 21), "over"),
])
def test_frame_reader_refuses_malformed_streams(body: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        FrameReader().feed(body)


@pytest.fixture()
def device(tmp_path: Path) -> Device:
    dev = Device(7, tmp_path / "dev")
    dev.prepare()
    return dev


@pytest.fixture()
def client(device: Device) -> TestClient:
    return TestClient(create_app(lambda: {7: device}, "s3cret"))


STREAM = {SECRET_HEADER: "s3cret", STREAM_HEADER: "1"}
URL = f"/dev/7/objects/3/{H}"


def _nothing(device: Device) -> bool:
    return device.read(3, H) is None and not list(device.tmp.iterdir())


@pytest.mark.parametrize("start_after", [0, 1 << 18])  # streamed at once / one request
def test_streamed_put_through_the_client(client: TestClient, device: Device,
                                         start_after: int) -> None:
    rdev = RemoteDevice(7, "http://testserver", client, "s3cret")
    w = StreamWriter(rdev, 3, H, start_after=start_after)
    for chunk in (b"a" * 70_000, b"b" * 5, b""):
        w.write(chunk)
    body = b"a" * 70_000 + b"b" * 5
    w.commit(TS, {"size": len(body), "etag": hashlib.md5(body).hexdigest()})
    f = device.read(3, H)
    assert f is not None and f.data_path is not None and f.data_path.read_bytes() == body
    assert f.metadata["timestamp"] == TS and not list(device.tmp.iterdir())
    assert (w.thread is None) == bool(start_after)


def test_a_small_put_aborted_sends_nothing(client: TestClient, device: Device) -> None:
    w = RemoteDevice(7, "http://testserver", client, "s3cret").writer(3, H)
    w.write(b"never sent")
    w.abort()
    assert w.thread is None and w.done.is_set() and _nothing(device)


@pytest.mark.parametrize(("meta", "status"), [
    ({"size": 5, "etag": hashlib.md5(b"other").hexdigest(), "timestamp": TS}, 422),
    ({"size": 6, "etag": hashlib.md5(b"hello").hexdigest(), "timestamp": TS}, 422),
    ({"size": 5, "etag": hashlib.md5(b"hello").hexdigest(), "timestamp": "now"}, 400),
    (None, 400),  # the body ends before the metadata: the proxy gave up
])
def test_streamed_put_keeps_nothing_unless_complete_and_matching(
        client: TestClient, device: Device, meta: dict[str, Any] | None,
        status: int) -> None:
    resp = client.put(URL, headers=STREAM, content=frames(b"hel", b"lo", meta=meta))
    assert resp.status_code == status, resp.text
    assert _nothing(device)


def test_streamed_put_cut_mid_frame_keeps_nothing(client: TestClient,
                                                  device: Device) -> None:
    resp = client.put(URL, headers=STREAM, content=frames(b"hello")[:-2])
    assert resp.status_code == 400 and "ended before" in resp.text
    assert _nothing(device)
