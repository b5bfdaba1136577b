"""Database access shared by the services: engines, sessions, migrations.

Each service owns one database (a SQLite file in WAL mode by default, or a
PostgreSQL database) and never reads another service's tables. Schemas are
managed by Alembic, one migration tree per service (``<service>/migrations``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from stratus.common.errors import BadRequest, ServiceUnavailable


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


def is_unavailable(exc: BaseException) -> bool:
    """True when a database error means the database cannot be reached."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    if isinstance(exc, sa.exc.OperationalError):
        text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
        # SQLite "database is locked" is contention, not an outage; everything else
        # operational (refused connection, unable to open file, server gone) is.
        return "locked" not in text
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
