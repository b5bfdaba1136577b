"""The identity service's cache of validated tokens (issue 17: validation is the hot path).

A validation reads the user, its domain, the project and its domain, the effective roles
(assignments, groups, implied roles) and the revocation events: about eight queries. The
cache keeps the result per token and hands it out again while nothing it was computed from
can have changed:

- the revocation events are the same (their fingerprint, one aggregate query per
  validation, :class:`stratus.identity.revocation.RevocationCache`): every revocation,
  from any worker process, is seen at the next validation;
- no write to the identity database committed in this process since (a generation bumped
  after each committed transaction that wrote anything, SQLAlchemy session events), and
  none was in flight while the entry was computed, so a grant added, a rename or a new
  role shows at once;
- the entry is younger than ``[identity] validation_cache_seconds``: the bound on how long
  a change made by *another* worker process that revokes nothing (a role granted, a
  project renamed) may take to show in this worker's validations; with one worker (the
  default) it never applies;
- the token has not expired. Tokens whose validity depends on the clock beyond their own
  expiry (trust-scoped, application-credential) are never cached.

A cached validation also carries its token document as JSON, with and without the
catalog (``ValidatedToken.rendered``), so a repeated validation renders nothing; a catalog
change made by another worker process shows within the same bound as any other change
that revokes nothing. With SQLite the API answers a cached validation on the event loop
(its one read, the fingerprint, is of a local file) instead of handing it to a thread
(``Identity.validates_on_loop``): the hand-off cost more than the validation (issue 17).

Nothing here is shared between processes; the cache is bounded (least recently used out).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, SessionTransaction

WRITING = "stratus.identity.tokencache.writing"


class NotCached(Exception):
    """The answer needs the database beyond the fingerprint read (a validation the cache
    does not hold, or a catalog not rendered yet): asked with ``cached_only``, the
    caller does the work again off the event loop."""


class ValidationCache:
    """Validated tokens by token string, valid for one revocation fingerprint and one
    in-process write generation."""

    def __init__(self, seconds: float, size: int = 4096) -> None:
        self.seconds = seconds
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, Hashable, int, float]] = OrderedDict()
        self._generation = 0
        self._writing = 0
        self.hits = 0  # figures and tests
        self.misses = 0

    # ---- writes: the generation ---------------------------------------------------------
    def watch(self, engine: sa.engine.Engine) -> None:
        """Follow the writes of every session bound to ``engine`` in this process."""
        _install()
        _WATCHED.setdefault(engine, weakref.WeakSet()).add(self)

    def _begin_write(self) -> None:
        with self._lock:
            self._writing += 1
            self._generation += 1

    def _end_write(self) -> None:
        with self._lock:
            self._writing -= 1
            self._generation += 1

    def state(self) -> tuple[int, bool]:
        """(the write generation, whether no write is in flight)."""
        with self._lock:
            return self._generation, self._writing == 0

    # ---- entries ------------------------------------------------------------------------
    def get(self, token: str, fingerprint: Hashable, expires_at: float) -> Any | None:
        """The cached result for ``token`` if it still holds, else None."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(token)
            if entry is not None:
                value, key, generation, stored = entry
                if (key == fingerprint and generation == self._generation and self._writing == 0
                        and now - stored < self.seconds and expires_at > time.time()):
                    self._entries.move_to_end(token)
                    self.hits += 1
                    return value
                del self._entries[token]
            self.misses += 1
            return None

    def put(self, token: str, value: Any, fingerprint: Hashable,
            before: tuple[int, bool]) -> None:
        """Keep ``value``, computed under ``fingerprint`` from a state read at ``before``
        (:meth:`state`), unless a write was in flight or committed meanwhile."""
        if self.seconds <= 0 or not before[1]:
            return
        with self._lock:
            if self._generation != before[0] or self._writing:
                return
            self._entries[token] = (value, fingerprint, before[0], time.monotonic())
            self._entries.move_to_end(token)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# One set of SQLAlchemy listeners for the process; each engine's caches are looked up.
_WATCHED: weakref.WeakKeyDictionary[Any, weakref.WeakSet[ValidationCache]] = (
    weakref.WeakKeyDictionary())
_INSTALLED = threading.Lock()
_installed = False


def _begin_write(session: Session) -> None:
    caches = _WATCHED.get(session.bind) if session.bind is not None else None
    if not caches or session.info.get(WRITING):
        return
    watched = list(caches)
    session.info[WRITING] = watched
    for cache in watched:
        cache._begin_write()


def _on_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    _begin_write(session)


def _on_execute(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _begin_write(state.session)


def _on_end(session: Session, transaction: SessionTransaction) -> None:
    # After the database committed or rolled back (the root transaction's end).
    if transaction.parent is None:
        for cache in session.info.pop(WRITING, None) or ():
            cache._end_write()


def _install() -> None:
    global _installed
    with _INSTALLED:
        if not _installed:
            sa.event.listen(Session, "before_flush", _on_flush)
            sa.event.listen(Session, "do_orm_execute", _on_execute)
            sa.event.listen(Session, "after_transaction_end", _on_end)
            _installed = True
