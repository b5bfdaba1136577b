"""Database access shared by the services: engines, sessions, migrations.

Each service owns one database (a SQLite file in WAL mode by default, or a
PostgreSQL database) and never reads another service's tables. Schemas are
managed by Alembic, one migration tree per service (``<service>/migrations``).
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from stratus.common.errors import BadRequest, Conflict, ServiceUnavailable

T = TypeVar("T")

# SQLite's primary result codes for "another connection holds the lock"
# (SQLITE_BUSY and SQLITE_LOCKED; extended codes carry them in the low byte).
_SQLITE_CONTENTION = {5, 6}
# PostgreSQL's SQLSTATEs for a transaction that lost a race and may simply be
# run again: serialization_failure and deadlock_detected.
_PG_RETRYABLE = {"40001", "40P01"}


class Base(DeclarativeBase):
    """Declarative base; each service has its own subclass with its own metadata."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return sa.create_engine(url, **kwargs)


def is_contention(exc: BaseException) -> bool:
    """True when a database error says the transaction lost a race with another one
    (SQLite busy/locked, PostgreSQL serialization failure or deadlock): running the
    same work again can succeed. Decided on the driver's error code, not its text."""
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_CONTENTION
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg errors
    return sqlstate in _PG_RETRYABLE


def is_unavailable(exc: BaseException) -> bool:
    """True when a database error means the database cannot be reached."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    if isinstance(exc, sa.exc.OperationalError):
        # Contention is not an outage; everything else operational (refused
        # connection, unable to open file, server gone) is.
        return not is_contention(exc)
    return False


class Database:
    """An engine plus a session factory for one service."""

    def __init__(self, url: str, service: str) -> None:
        self.url = url
        self.service = service
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException as exc:
            session.rollback()
            if isinstance(exc, sa.exc.SQLAlchemyError) and is_unavailable(exc):
                raise ServiceUnavailable(
                    f"The {self.service} database is unavailable; try again later."
                ) from exc
            if isinstance(exc, sa.exc.DataError):
                # A value the engine refuses (too long for its column, a NUL byte...):
                # the request was bad, and nothing was written.
                raise BadRequest(
                    "The request holds a value that cannot be stored (too long, or with "
                    f"characters that are not allowed): {exc.orig}"
                ) from exc
            raise
        finally:
            session.close()

    def transaction(
        self,
        work: Callable[[Session], T],
        attempts: int = 40,
        conflict_after: int | None = None,
        begin: Callable[[Session], None] | None = None,
        before_commit: Callable[[Session], None] | None = None,
        after_commit: Callable[[Session], None] | None = None,
    ) -> T:
        """Run ``work(session)`` in one transaction and return its result; run it
        again (after a short random pause) when it lost a race.

        A lost race is contention (:func:`is_contention`) or an IntegrityError,
        since ``work`` chooses unique values (addresses, MACs, names) afresh
        each time it runs. An IntegrityError that persists ``conflict_after``
        times (default: every attempt) becomes a 409; contention that outlasts
        ``attempts`` becomes a 503. ``begin`` runs first in each attempt,
        ``before_commit`` after ``work`` inside the transaction, and
        ``after_commit`` once the transaction is committed.
        """
        integrity_limit = attempts if conflict_after is None else conflict_after
        integrity_errors = 0
        for attempt in range(attempts):
            try:
                with self.session() as session:
                    if begin is not None:
                        begin(session)
                    result = work(session)
                    if before_commit is not None:
                        session.flush()
                        before_commit(session)
                if after_commit is not None:
                    after_commit(session)
                return result
            except sa.exc.IntegrityError:
                integrity_errors += 1
                if integrity_errors >= integrity_limit:
                    raise Conflict("The request conflicted with concurrent changes or an "
                                   "existing resource; try again.") from None
            except sa.exc.OperationalError as exc:
                if not is_contention(exc):
                    raise
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise ServiceUnavailable(f"The {self.service} database is too busy; try again.")

    def dispose(self) -> None:
        self.engine.dispose()


def _alembic_config(service_package: str, url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", f"{service_package}:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision(service_package: str, url: str) -> str | None:
    script = ScriptDirectory.from_config(_alembic_config(service_package, url))
    return script.get_current_head()


def sync(service_package: str, url: str) -> bool:
    """Upgrade the schema to the newest revision; return True when it changed."""
    before = current_revision(url)
    if before is not None and before == head_revision(service_package, url):
        return False
    command.upgrade(_alembic_config(service_package, url), "head")
    return True


def run_migrations(target_metadata: sa.MetaData) -> None:
    """Body of every service's alembic env.py (online mode only)."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
