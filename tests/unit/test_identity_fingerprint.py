"""The revocation events' fingerprint read on every cached validation
(``RevocationCache.fingerprint_now``, issue 17): read with the driver's cursor on a pooled
connection, it still moves with every committed event, gives the pool its connection
back, drops a connection found dead, and says 503 when the database cannot be read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from stratus.common import db
from stratus.common.db import Database
from stratus.common.errors import ServiceUnavailable
from stratus.identity import models as m
from stratus.identity.revocation import RevocationCache

pytestmark = pytest.mark.unit


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path}/s8h-identity.sqlite"
    db.sync("stratus.identity", url)
    found = Database(url, "identity")
    yield found
    found.dispose()


def _checked_out(engine: sa.engine.Engine) -> int:
    """Connections of the engine's pool not given back."""
    pool = engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    return pool.checkedout()


def _add_event(database: Database, audit_id: str) -> None:
    now = datetime.now(UTC)
    with database.session() as session:
        session.add(m.RevocationEvent(audit_id=audit_id, issued_before=now, revoked_at=now))
        session.commit()


def test_the_fingerprint_moves_with_every_committed_event(database: Database) -> None:
    cache = RevocationCache()
    empty = cache.fingerprint_now(database.engine)
    assert empty[:3] == ("now", 0, None)
    seen = {empty}
    for n in range(3):
        _add_event(database, f"s8h-audit-{n}")
        now = cache.fingerprint_now(database.engine)
        assert now[0] == "now" and now[1] == n + 1
        assert now not in seen
        seen.add(now)
    assert cache.fingerprint_now(database.engine) == now  # nothing changed: the same key
    with database.session() as session:  # the same values as the session's aggregate
        assert now[1:] == tuple(session.execute(
            sa.text("SELECT count(id), sum(id), max(id), max(revoked_at) "
                    "FROM revocation_event")).one())


def test_every_read_gives_its_connection_back(database: Database) -> None:
    cache = RevocationCache()
    for _ in range(50):
        cache.fingerprint_now(database.engine)
    assert _checked_out(database.engine) == 0


def test_a_database_without_the_table_is_a_503(database: Database, tmp_path: Path) -> None:
    cache = RevocationCache()
    cache.fingerprint_now(database.engine)
    database.dispose()
    (tmp_path / "s8h-identity.sqlite").unlink()  # opened again: no tables
    with pytest.raises(ServiceUnavailable, match="identity database is unavailable"):
        cache.fingerprint_now(database.engine)
    assert _checked_out(database.engine) == 0


def test_a_connection_found_dead_leaves_the_pool(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = database.engine
    cache = RevocationCache()
    cache.fingerprint_now(engine)
    first = engine.raw_connection()
    before = first.dbapi_connection
    first.close()
    # The next read fails as if the server had gone away.
    monkeypatch.setattr(engine.dialect, "is_disconnect", lambda *_args: True)
    cache._sql[engine] = "SELECT * FROM s8h_no_such_table"
    with pytest.raises(ServiceUnavailable):
        cache.fingerprint_now(engine)
    monkeypatch.undo()
    del cache._sql[engine]
    again = engine.raw_connection()
    assert again.dbapi_connection is not before  # a new connection, not the dead one
    again.close()
    assert cache.fingerprint_now(engine)[0] == "now"


def test_another_driver_error_is_raised_as_sqlalchemys(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error that is no outage (here a constraint failure) is not turned into a 503."""
    import sqlite3

    engine = database.engine
    cache = RevocationCache()
    cache._sql[engine] = "SELECT 1"

    class Refusing:
        def __init__(self, real: object) -> None:
            self.real = real

        def execute(self, _sql: str) -> None:
            raise sqlite3.IntegrityError("s8h: refused")

        def close(self) -> None:
            pass

    real_raw = engine.raw_connection

    def raw_connection() -> object:
        conn = real_raw()
        monkeypatch.setattr(conn, "cursor", lambda: Refusing(conn))
        return conn

    monkeypatch.setattr(engine, "raw_connection", raw_connection)
    with pytest.raises(sa.exc.IntegrityError, match="s8h: refused"):
        cache.fingerprint_now(engine)
    assert _checked_out(engine) == 0


def test_a_database_that_cannot_be_opened_is_a_503(tmp_path: Path) -> None:
    """The driver's own error on connecting (not wrapped by the pool) is a 503 too."""
    unreachable = Database(f"sqlite:///{tmp_path}/s8h-no-such-dir/identity.sqlite",
                           "identity")
    try:
        with pytest.raises(ServiceUnavailable, match="identity database is unavailable"):
            RevocationCache().fingerprint_now(unreachable.engine)
        assert _checked_out(unreachable.engine) == 0
    finally:
        unreachable.dispose()
