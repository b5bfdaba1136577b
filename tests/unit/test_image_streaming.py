"""Unit tests of stratus.image.streaming: threaded hashes and write-behind."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from stratus.image.store import FileStore
from stratus.image.streaming import ThreadedHash, WriteBehind

pytestmark = pytest.mark.unit


def chunks() -> list[bytes]:
    return [os.urandom(size) for size in (1, 0, 65536, 1 << 20, 3, 250_000)]


@pytest.mark.parametrize("factory", [hashlib.sha512, lambda: hashlib.md5(usedforsecurity=False)])
def test_threaded_hash_equals_hashlib_over_the_same_chunks(factory: Any) -> None:
    data = chunks()
    threaded, plain = ThreadedHash(factory), factory()
    for piece in data:
        threaded.update(piece)
        plain.update(piece)
    assert threaded.hexdigest() == plain.hexdigest()
    assert threaded.hexdigest() == plain.hexdigest()  # final and repeatable
    with pytest.raises(ValueError, match="update after"):
        threaded.update(b"more")


def test_threaded_hash_without_data_starts_no_thread() -> None:
    before = threading.active_count()
    threaded = ThreadedHash(hashlib.sha512)
    assert threading.active_count() == before
    assert threaded.hexdigest() == hashlib.sha512().hexdigest()


def test_threaded_hash_queue_is_bounded() -> None:
    """A writer faster than the hash waits: never more than ``depth`` updates queued."""
    release = threading.Event()
    seen: list[int] = []

    class Slow:
        def update(self, data: bytes) -> None:
            release.wait(10)
            seen.append(len(data))

        def hexdigest(self) -> str:
            return str(sum(seen))

    threaded = ThreadedHash(Slow, depth=2)
    threaded.update(b"a")  # taken by the thread, which waits in update
    threaded.update(b"bb")
    threaded.update(b"ccc")  # the queue now holds 2
    blocked = threading.Thread(target=threaded.update, args=(b"dddd",))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()  # waiting for room in the queue
    release.set()
    blocked.join(10)
    assert not blocked.is_alive()
    assert threaded.hexdigest() == "10"


def test_threaded_hash_close_stops_its_thread_and_refuses_a_digest() -> None:
    threaded = ThreadedHash(hashlib.sha512, name="sha512")
    before = threading.active_count()
    threaded.update(b"x" * 100_000)
    threaded.close()
    assert threading.active_count() <= before
    with pytest.raises(RuntimeError, match="sha512 was closed"):
        threaded.hexdigest()
    threaded.close()  # twice is fine


def test_threaded_hash_error_surfaces_at_hexdigest() -> None:
    class Broken:
        def update(self, data: bytes) -> None:
            raise MemoryError("no room")

        def hexdigest(self) -> str:
            return ""

    threaded = ThreadedHash(Broken)
    threaded.update(b"x")
    with pytest.raises(MemoryError, match="no room"):
        threaded.hexdigest()


def test_write_behind_starts_writeback_of_each_full_window(tmp_path: Path) -> None:
    """Real posix_fadvise on a real file, recorded: one call per completed window."""
    calls: list[tuple[int, int, int]] = []

    def advise(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append((offset, length, advice))
        os.posix_fadvise(fd, offset, length, advice)

    path = tmp_path / "data"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        behind = WriteBehind(fd, window=4096, advise=advise)
        for _ in range(5):
            os.write(fd, b"\x07" * 3000)
        behind.advance(15000)
    finally:
        os.close(fd)
    assert calls == [(0, 4096, os.POSIX_FADV_DONTNEED), (4096, 4096, os.POSIX_FADV_DONTNEED),
                     (8192, 4096, os.POSIX_FADV_DONTNEED)]
    assert path.read_bytes() == b"\x07" * 15000  # advice never changes the data


def test_write_behind_turns_itself_off_when_advice_fails(tmp_path: Path) -> None:
    calls: list[int] = []

    def unsupported(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append(offset)
        raise OSError(95, "Operation not supported")

    behind = WriteBehind(0, window=10, advise=unsupported)
    behind.advance(100)
    behind.advance(200)
    assert calls == [0]


def test_upload_hashes_and_writes_everything_then_discard_leaves_nothing(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path)
    store.ensure()
    data = chunks()
    upload = store.begin(10 << 20, "owner")
    for piece in data:
        upload.write(piece)
    upload.finish()
    joined = b"".join(data)
    assert upload.path.read_bytes() == joined
    assert upload.size == len(joined)
    assert upload.checksum == hashlib.md5(joined, usedforsecurity=False).hexdigest()
    assert upload.sha512 == hashlib.sha512(joined).hexdigest()
    upload.discard()
    assert list(store.tmp.iterdir()) == []

    aborted = store.begin(10 << 20, "owner")
    aborted.write(b"half")
    aborted.discard()
    assert list(store.tmp.iterdir()) == []
