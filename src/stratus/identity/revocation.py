"""Token revocation events, and the in-memory list validation checks them against.

A revocation event names some attributes (a user, a project, a role, a domain,
an application credential, an audit id) and a time, ``issued_before``. A token
is revoked when every attribute the event names matches the token and the token
was issued at or before that time. Nothing about the token is stored, so the
event stays true when its cause is undone: a role added back, a user or project
re-enabled, a password set back. Tokens issued after the event are not
affected. This is the model of Keystone's revocation events.

What each attribute matches in a token (all the named ones must match):

- ``audit_id``: one of the token's audit ids (its own, or the token it was
  rescoped from, so revoking a token revokes the tokens made from it);
- ``user_id``: the token's user;
- ``project_id``: the project the token's roles come from (its project scope),
  or ``system`` (assignments.SYSTEM_ID) for a system-scoped token;
- ``scope_domain_id``: the domain a domain-scoped token is scoped to;
- ``domain_id``: anything in the domain: the user's domain, the project's
  domain, or the scope domain;
- ``role_id``: a role the token carries (as computed at validation);
- ``app_cred_id``: the application credential the token was made from.

Who writes which event: a grant removed (directly, from a group, a member
removed from a group, the group, the role or the target deleted) writes
``user_id`` + ``project_id`` (``system`` for a system grant) or ``user_id`` +
``scope_domain_id`` for each user who had it, so the user's tokens on that
target stop whatever roles they carry;
a user disabled, deleted or given a new password writes ``user_id``; a project
disabled or deleted ``project_id``; a domain disabled or deleted ``domain_id``;
a role deleted, or an inference rule dropped, ``role_id`` (of the prior role);
an application credential deleted ``app_cred_id``; ``DELETE /v3/auth/tokens``
``audit_id``.

Events live until no token they could match can still be valid (the token
lifetime plus a minute after the event); :meth:`RevocationCache.current`
holds them in memory, indexed by which attributes they name, and reloads them
only when the table changed (one aggregate query per validation, which replaces
the per-validation query it had before; it reads the event table, which holds
one token lifetime of events; the validation cache reads it on a pooled
connection without an ORM session, :meth:`RevocationCache.fingerprint_now`).
Processes share nothing but the table, so another worker's new event is seen at
the next validation.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.db import is_unavailable
from stratus.common.errors import ServiceUnavailable
from stratus.identity import models as m

# The event table's fingerprint (RevocationCache), built once.
_FINGERPRINT = sa.select(
    sa.func.count(m.RevocationEvent.id),
    sa.func.sum(m.RevocationEvent.id),
    sa.func.max(m.RevocationEvent.id),
    sa.func.max(m.RevocationEvent.revoked_at),
)

# The attributes an event may name, in a fixed order (the index keys use it).
FIELDS = ("audit_id", "user_id", "project_id", "scope_domain_id", "domain_id", "role_id",
          "app_cred_id")


@dataclass(frozen=True)
class TokenFacts:
    """What a validated token is, in the terms revocation events use."""

    issued_at: float
    user_id: str
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    scope_domain_id: str | None = None
    domain_ids: frozenset[str] = frozenset()
    role_ids: frozenset[str] = frozenset()
    app_cred_id: str | None = None

    def candidates(self, name: str) -> Sequence[str]:
        """The values of one attribute an event could name to match this token."""
        if name == "audit_id":
            return self.audit_ids
        if name == "domain_id":
            return sorted(self.domain_ids)
        if name == "role_id":
            return sorted(self.role_ids)
        value = getattr(self, name)
        return (value,) if value else ()


def _timestamp(value: datetime) -> float:
    """A naive UTC datetime (as the database stores it) as a POSIX timestamp."""
    return value.replace(tzinfo=UTC).timestamp()


class RevocationList:
    """An immutable set of events, indexed by the attributes each one names."""

    def __init__(self, events: Iterable[Any]) -> None:
        # {(names...): {(values...): latest issued_before}}
        self._index: dict[tuple[str, ...], dict[tuple[str, ...], float]] = {}
        self.size = 0
        for ev in events:
            names = tuple(f for f in FIELDS if getattr(ev, f, None))
            if not names:
                continue  # an event naming nothing would revoke every token: never written
            values = tuple(str(getattr(ev, f)) for f in names)
            before = _timestamp(ev.issued_before)
            shape = self._index.setdefault(names, {})
            if before > shape.get(values, float("-inf")):
                shape[values] = before
            self.size += 1

    def revoked(self, token: TokenFacts) -> bool:
        """True when an event matches the token and the token was issued before it."""
        for names, shape in self._index.items():
            pools = [token.candidates(n) for n in names]
            if not all(pools):
                continue
            for values in itertools.product(*pools):
                before = shape.get(values)
                if before is not None and token.issued_at <= before:
                    return True
        return False


def _raise_if_unavailable(exc: sa.exc.SQLAlchemyError) -> None:
    """A 503 for a fingerprint read that failed because the database is down: outside
    Database.session it is raised here (an error escaping to the app's last-resort
    handler is logged as a 500); any other error is left to the caller to raise."""
    if is_unavailable(exc):
        raise ServiceUnavailable(
            "The identity database is unavailable; try again later.") from exc


def _driver_error(engine: sa.engine.Engine, sql: str, exc: Any, conn: Any) -> Exception:
    """A driver's error of a fingerprint read, as a ``Connection`` would have handled
    it: a connection found dead leaves the pool, and the error is seen as SQLAlchemy's
    (which :func:`is_unavailable` reads); a 503 when the database cannot be read."""
    gone = engine.dialect.is_disconnect(exc, conn.dbapi_connection if conn else None, None)
    if gone and conn is not None:
        conn.invalidate(exc)
    wrapped = sa.exc.DBAPIError.instance(sql, None, exc, engine.dialect.loaded_dbapi.Error,
                                         connection_invalidated=gone, dialect=engine.dialect)
    _raise_if_unavailable(wrapped)
    return wrapped


class RevocationCache:
    """The current :class:`RevocationList`, reloaded when the event table changes.

    The table's fingerprint (row count, sum of ids, highest id, latest
    ``revoked_at``) changes with every committed event, so a cached list is never
    used after an event it does not hold was committed. That holds even when
    transactions commit out of id order (PostgreSQL) and a prune deletes as many
    rows as were added: the pruned rows are older, so their ids are smaller and the
    sum moves. A prune alone may leave the fingerprint as it was, which keeps a few
    expired events in memory; they cannot match a token that is still valid.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[bool, tuple[Any, ...]] = {}
        self._list = RevocationList(())
        self._sql: dict[sa.engine.Engine, str] = {}
        self.loads = 0  # how many times the events were read (tests, figures)

    @staticmethod
    def fingerprint(session: Session) -> tuple[Any, ...]:
        """The table's fingerprint as ``session`` sees it."""
        return tuple(session.execute(_FINGERPRINT).one())

    def fingerprint_now(self, engine: sa.engine.Engine) -> tuple[Any, ...]:
        """The table's fingerprint as committed now, read on a pooled connection of
        ``engine`` without an ORM session or even a SQLAlchemy ``Connection`` (the
        validation cache's check on every validation: the driver's cursor on the pool's
        connection costs about 9 microseconds on SQLite, against 51 through
        ``engine.connect()`` and 270 through a session, as measured for issue 17). Its
        values come straight from the driver, so they are compared only with other
        results of this method (:meth:`current` keeps one key of each kind); a list
        loaded under such a key in a session begun after it was read is at least as new
        as the key. A database that cannot be read is a 503."""
        sql = self._sql.get(engine)
        if sql is None:
            sql = self._sql[engine] = str(_FINGERPRINT.compile(dialect=engine.dialect))
        dbapi_error = engine.dialect.loaded_dbapi.Error
        try:
            conn = engine.raw_connection()
        except sa.exc.SQLAlchemyError as exc:  # the pool's own (a checkout timeout)
            _raise_if_unavailable(exc)
            raise
        except dbapi_error as exc:  # the driver's, as it could not connect
            raise _driver_error(engine, sql, exc, None) from exc
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(sql)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except dbapi_error as exc:
            raise _driver_error(engine, sql, exc, conn) from exc
        finally:
            conn.close()  # back to the pool (rolled back there), or gone if invalidated
        return ("now", *(row or ()))

    def current(self, session: Session, key: tuple[Any, ...] | None = None) -> RevocationList:
        """The events as the session sees them (one query when nothing changed; none
        when the caller read the fingerprint already: ``key``, from :meth:`fingerprint`
        in this session or from :meth:`fingerprint_now` before this session began)."""
        if key is None:
            key = self.fingerprint(session)
        kind = bool(key) and key[0] == "now"  # each kind of key compares with its own
        if self._keys.get(kind) == key:
            return self._list
        with self._lock:
            if self._keys.get(kind) != key:
                events = session.scalars(sa.select(m.RevocationEvent)).all()
                self._list = RevocationList(events)
                # The list is new: a key of the other kind no longer names it.
                self._keys = {kind: key}
                self.loads += 1
            return self._list

    def invalidate(self) -> None:
        """Forget the cached list (the next validation reads the events again)."""
        with self._lock:
            self._keys = {}
