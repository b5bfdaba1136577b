"""The one long-poll of Stratus: API requests that wait until a generation counter in the
database moves, so that an agent learns of a change within a fraction of a second.

The choice. Both services keep what they always had in the database, and this module
only watches it:

* network: a generation per host, bumped in the same transaction as every change
  that host's state document can show (``stratus/network/tracking.py``: only the
  hosts a change touches). Its watch is a :class:`KeyedWatch` keyed by
  ``(host, network_node)``. (:class:`GenerationWatch`, a single counter, is kept
  for one global counter.)
* compute: a ``generation`` per compute host row, bumped with every change of the
  host's assignments (``ComputeCore.bump`` and the claims). It maps onto the same
  mechanism with a key per host: a :class:`KeyedWatch` whose ``read(keys)`` answers
  the generations of every host someone waits on in ONE query (a key missing from
  the answer is a host that does not exist).

How it works. A waiter registers ``(key, since)`` and sleeps on a future. One poller
task per event loop runs only while somebody waits: it reads every waited-on key at
once (in a worker thread), wakes the waiters whose counter differs from their
``since``, and sleeps ``interval`` (0.25 s) before the next read. So however many
agents wait in one API process, the database is read about once per interval, and
not at all when nobody waits. A waiter that arrives with no fresh value for its key
(or with a ``since`` newer than the value known) makes the poller read at once;
waiters arriving together share that read. A read only wakes a waiter when it began
after the waiter arrived, or when it shows a value above the waiter's ``since``
(counters only go up), so an older cached value never passes for a change. A failed
read fails every waiter with the read's exception.

Wake-ups from this process. A transaction that bumps a counter notes it in its session
(:func:`note_change`); once it is committed, :func:`poke_if_noted` (or :func:`poke`)
makes every watch of the process that has waiters read at once instead of at the end of
its interval. On the all-in-one controller the request that changes a host's state (a
server created or deleted, a port reported ACTIVE) and the agent's long-poll are served
by the same process, so the agent learns of it in one read, not up to ``interval``
later (issue 17). A change made by another process (a second API replica) is still seen
by the next periodic read.

Restarts. When the process is told to stop (SIGTERM, :func:`drain`, called by
:func:`stratus.common.app.serve`), every waiter wakes at once with "nothing changed"
(its own ``since``), and so does every long-poll that still arrives: the agents' next
poll goes to the new process instead of holding this one for up to 30 s. The answers
of a draining process carry the header :data:`DRAINING_HEADER`, so the client
(:meth:`stratus.common.clients.ApiClient.long_poll`) knows to poll again, at once and
against the new process, instead of taking the answer as the end of its wait.

The client side of the same long-poll is :meth:`stratus.common.clients.ApiClient.long_poll`
(query parameters ``since`` and ``wait``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from stratus.common.clients import DRAINING_HEADER
from stratus.common.clients import MAX_LONG_POLL as MAX_WAIT  # the APIs cut longer waits

__all__ = ["DRAINING_HEADER", "MAX_WAIT", "POLL_INTERVAL", "GenerationWatch", "KeyedWatch",
           "drain", "draining", "note_change", "poke", "poke_if_noted", "undrain"]

POLL_INTERVAL = 0.25  # seconds between two reads of the counters while somebody waits

K = TypeVar("K", bound=Hashable)

_DRAINING = threading.Event()  # set: this process is stopping (see the module's docstring)
_WATCHES: weakref.WeakSet[KeyedWatch[Any]] = weakref.WeakSet()
_WATCHES_LOCK = threading.Lock()


def drain() -> None:
    """The process is stopping: every long-poll waiting now, in every watch and event
    loop of the process, answers at once with its own ``since`` ("nothing changed"),
    and so does every one that arrives from now on. Thread-safe; callable from any
    thread or event loop."""
    _DRAINING.set()
    with _WATCHES_LOCK:
        watches = list(_WATCHES)
    for watch in watches:
        watch.release()


# session.info key: this transaction bumped a counter some long-poll may wait on
CHANGED = "longpoll_changed"


def note_change(session: Any) -> None:
    """Note in ``session`` (an ORM session, anything with an ``info`` dict) that its
    transaction bumps a watched counter: :func:`poke_if_noted` pokes after the commit."""
    session.info[CHANGED] = True


def poke_if_noted(session: Any) -> None:
    """After a commit: :func:`poke` when the transaction noted a change (and forget the
    note, so a session used again does not poke twice)."""
    if session.info.pop(CHANGED, False):
        poke()


def poke() -> None:
    """Every watch of the process with waiters reads now (a counter was just bumped and
    committed); thread-safe, nothing happens where nobody waits."""
    with _WATCHES_LOCK:
        watches = list(_WATCHES)
    for watch in watches:
        watch.poke()


def draining() -> bool:
    """Whether :func:`drain` was called (and :func:`undrain` not since)."""
    return _DRAINING.is_set()


def undrain() -> None:
    """Long-polls wait again (tests that drain a process and go on using it)."""
    _DRAINING.clear()


@dataclass(eq=False)
class _Waiter(Generic[K]):
    key: K
    since: int
    arrived: float
    future: asyncio.Future[int | None]


@dataclass(eq=False)
class _LoopState(Generic[K]):
    """What one event loop's waiters share: the last values read and the poller."""

    kick: asyncio.Event
    waiters: list[_Waiter[K]] = field(default_factory=list)
    values: dict[K, int | None] = field(default_factory=dict)
    read_at: float = float("-inf")  # when the read that gave ``values`` began
    poller: asyncio.Task[None] | None = None


def _moved(value: int | None, waiter: _Waiter[K], read_at: float) -> bool:
    """Whether ``value`` (read from ``read_at`` on) is news for ``waiter``."""
    if value is not None and value > waiter.since:
        return True  # counters only go up: newer than what the waiter holds
    return read_at >= waiter.arrived and value != waiter.since


class KeyedWatch(Generic[K]):
    """Counters by key (a compute host's generation by host name), read by
    ``read(keys) -> {key: value}`` for the keys waited on, in a worker thread; a key
    absent from the answer has no counter (its waiters wake with ``None``)."""

    def __init__(self, read: Callable[[frozenset[K]], Mapping[K, int]],
                 interval: float = POLL_INTERVAL) -> None:
        self.read = read
        self.interval = interval
        self.reads = 0  # how many times ``read`` was called (tests, benchmarks)
        self._lock = threading.Lock()
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState[K]] = {}
        with _WATCHES_LOCK:
            _WATCHES.add(self)

    def _state(self) -> _LoopState[K]:
        loop = asyncio.get_running_loop()
        with self._lock:
            st = self._loops.get(loop)
            if st is None:
                st = self._loops[loop] = _LoopState(kick=asyncio.Event())
            return st

    def waiting(self) -> int:
        """How many requests wait now (every event loop)."""
        with self._lock:
            return sum(len(st.waiters) for st in self._loops.values())

    async def wait(self, key: K, since: int, timeout: float) -> int | None:
        """The counter of ``key`` once it differs from ``since`` (``None``: ``key`` has
        none), or after ``timeout`` seconds the last value known (``since`` if none)."""
        if not timeout > 0 or _DRAINING.is_set():
            return since
        st = self._state()
        waiter = _Waiter(key, since, time.monotonic(), asyncio.get_running_loop().create_future())
        fresh = key in st.values and waiter.arrived - st.read_at < self.interval
        cached = st.values.get(key) if fresh else None
        if cached is not None and cached > since:
            return cached
        if cached is None or cached < since:
            st.kick.set()  # no fresh value to compare with: the poller reads at once
        st.waiters.append(waiter)
        if st.poller is None:
            st.poller = asyncio.get_running_loop().create_task(self._poll(st))
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            value = st.values.get(key)
            return since if value is None else value
        finally:
            if waiter in st.waiters:
                st.waiters.remove(waiter)

    def poke(self) -> None:
        """Read now in every event loop where somebody waits (a counter was just committed)
        instead of at the end of the interval; thread-safe."""
        with self._lock:
            states = list(self._loops.items())
        for loop, st in states:
            with contextlib.suppress(RuntimeError):  # a loop already closed: nobody waits
                loop.call_soon_threadsafe(st.kick.set)

    def release(self) -> None:
        """Wake every waiter of every event loop now with its own ``since``; thread-safe."""
        with self._lock:
            states = list(self._loops.items())
        for loop, st in states:
            with contextlib.suppress(RuntimeError):  # a loop already closed: nobody waits
                loop.call_soon_threadsafe(self._release_loop, st)

    @staticmethod
    def _release_loop(st: _LoopState[K]) -> None:
        for w in list(st.waiters):
            if not w.future.done():
                w.future.set_result(w.since)
        st.waiters.clear()
        st.kick.set()  # the poller sees nobody waiting and stops

    async def _poll(self, st: _LoopState[K]) -> None:
        """Read while somebody waits; wake who must be woken; stop when nobody waits."""
        loop = asyncio.get_running_loop()
        try:
            while st.waiters:
                st.kick.clear()
                keys = frozenset(w.key for w in st.waiters)
                began = time.monotonic()
                self.reads += 1
                try:
                    found = await run_in_threadpool(self.read, keys)
                except Exception as exc:
                    for w in list(st.waiters):
                        if not w.future.done():
                            w.future.set_exception(exc)
                    st.waiters.clear()
                    break
                st.values = {k: found.get(k) for k in keys}
                st.read_at = began
                for w in list(st.waiters):
                    value = st.values.get(w.key)
                    if not w.future.done() and _moved(value, w, began):
                        w.future.set_result(value)
                        st.waiters.remove(w)
                if not st.waiters:
                    break
                left = began + self.interval - time.monotonic()
                if left > 0 and not st.kick.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(st.kick.wait(), left)
        finally:
            st.poller = None
            if not st.waiters:
                with self._lock:
                    if self._loops.get(loop) is st:
                        del self._loops[loop]


class GenerationWatch:
    """One counter (the network's ``state_generation``), read by ``read()``: a
    :class:`KeyedWatch` with a single key."""

    def __init__(self, read: Callable[[], int], interval: float = POLL_INTERVAL) -> None:
        self.keyed: KeyedWatch[None] = KeyedWatch(lambda _keys: {None: read()}, interval)

    @property
    def reads(self) -> int:
        return self.keyed.reads

    async def wait(self, since: int, timeout: float) -> int:
        """The generation once it differs from ``since``, or after ``timeout`` seconds."""
        value = await self.keyed.wait(None, since, timeout)
        return since if value is None else value
