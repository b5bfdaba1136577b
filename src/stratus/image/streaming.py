"""Helpers for streaming image data into a file: hashing off the receiving thread, and
write-behind of the file's pages.

:class:`ThreadedHash` runs one hashlib object on a thread of its own, fed through a
bounded queue: md5 (the slowest, ~0.7 GB/s on one core) and sha512 each get a core
while the upload's writer thread only writes, and the queue's bound keeps at most
``depth`` chunks waiting (memory stays flat; a writer faster than the hash waits).

:class:`WriteBehind` starts the writeback of a file being written, window by window
(``posix_fadvise(POSIX_FADV_DONTNEED)`` on a range just written: Linux submits its dirty
pages to the disk without waiting and drops only pages already clean, i.e. none of
these, so the data stays cached for the downloads that follow). The disk then works
while the rest of the data arrives, and the final ``fsync`` has only the last window
left to write instead of the whole file (what ``cp`` followed by ``sync`` waits for).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class ThreadedHash:
    """A hashlib object (from ``factory``) updated on its own thread.

    ``update`` queues the data (never copied: it must not change afterwards; bytes
    are immutable) and returns; it blocks while ``depth`` updates are waiting.
    ``hexdigest`` waits for every queued update and stops the thread; ``close`` stops
    it without a result. The thread starts at the first update, so an object that
    never sees data costs no thread.
    """

    def __init__(self, factory: Callable[[], Any], depth: int = 8, name: str = "hash") -> None:
        self._hash = factory()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._digest: str | None = None
        self._closed = False
        self._name = name

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash ``data`` after everything queued before it (blocks while the queue is full)."""
        if self._closed:
            raise ValueError(f"{self._name}: update after hexdigest or close")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"image-{self._name}",
                                            daemon=True)
            self._thread.start()
        self._queue.put(data)

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is _STOP:
                return
            if self._error is None:
                try:
                    self._hash.update(data)
                except BaseException as exc:  # surfaces in hexdigest()
                    self._error = exc

    def _stop(self) -> None:
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        """The digest of all the data given (waits for the queued updates)."""
        if self._digest is None:
            self._stop()
            if self._error is not None:
                raise self._error
            self._digest = str(self._hash.hexdigest())
        return self._digest

    def close(self) -> None:
        """Stop the thread, dropping what is still queued (an aborted upload)."""
        if self._thread is not None:
            self._closed = True
            self._error = self._error or RuntimeError(f"{self._name} was closed")
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
        self._stop()


Advise = Callable[[int, int, int, int], None]


def _default_advise() -> Advise | None:
    return getattr(os, "posix_fadvise", None)


class WriteBehind:
    """Writeback of a growing file, ``window`` bytes at a time (see the module docstring).

    Call :meth:`advance` with the file's size after each write: when a window is
    complete its writeback starts. Advice is only advice: an error from it (a file
    system without it) turns it off for this file, never fails the write.
    """

    def __init__(self, fd: int, window: int = 16 << 20, advise: Advise | None = None) -> None:
        self.fd = fd
        self.window = window
        self._advise = advise if advise is not None else _default_advise()
        self._done = 0  # bytes whose writeback has been started

    def advance(self, size: int) -> None:
        """The file now holds ``size`` bytes: start the writeback of each full window."""
        while self._advise is not None and size - self._done >= self.window:
            start = self._done
            self._done += self.window
            try:
                self._advise(self.fd, start, self.window, os.POSIX_FADV_DONTNEED)
            except OSError:
                self._advise = None
