"""A small thread-safe TTL cache with one loader at a time per key.

Used by stratus-metadata to keep the instance document per (network, fixed IP)
for ``cache_ttl`` seconds, and a "no such instance" answer for
``negative_cache_ttl`` seconds. When many requests miss the same key at once
(a guest's cloud-init crawls dozens of paths in a burst), only one of them asks
the compute API; the others wait for it and share its answer. A loader that
raises caches nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl: float, negative_ttl: float, max_entries: int = 10000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max(1, max_entries)
        self.clock = clock
        self._data: OrderedDict[Hashable, tuple[float, V | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}
        self.hits = 0
        self.loads = 0

    def _fresh(self, key: Hashable) -> tuple[bool, V | None]:
        entry = self._data.get(key)
        if entry is not None:
            if entry[0] > self.clock():
                return True, entry[1]
            del self._data[key]
        return False, None

    def get_or_load(self, key: Hashable, loader: Callable[[], V | None]) -> V | None:
        """The cached value of ``key``, else ``loader()`` (None = "not found",
        cached for ``negative_ttl``)."""
        with self._lock:
            found, value = self._fresh(key)
            if found:
                self.hits += 1
                return value
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                found, value = self._fresh(key)
                if found:
                    self.hits += 1
                    return value
            try:
                value = loader()
            except BaseException:
                with self._lock:
                    self._forget_loader(key, key_lock)
                raise
            ttl = self.ttl if value is not None else self.negative_ttl
            with self._lock:
                self.loads += 1
                if ttl > 0:
                    self._data[key] = (self.clock() + ttl, value)
                    self._data.move_to_end(key)
                    while len(self._data) > self.max_entries:
                        self._data.popitem(last=False)
                self._forget_loader(key, key_lock)
            return value

    def _forget_loader(self, key: Hashable, key_lock: threading.Lock) -> None:
        if self._loading.get(key) is key_lock:
            del self._loading[key]

    def peek(self, key: Hashable) -> tuple[bool, V | None]:
        """(True, value) when ``key`` is fresh in the cache, else (False, None); never loads
        and never waits for a loader."""
        with self._lock:
            found, value = self._fresh(key)
            if found:
                self.hits += 1
            return found, value

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
