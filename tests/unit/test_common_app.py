"""The shared pieces every service is built from: Routes bound by Router.include,
the one database retry loop (Database.transaction, is_contention) and timeutil; and
how a service stops and starts for a restart (draining, a socket handed over)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column
from starlette.responses import PlainTextResponse, Response
from starlette.testclient import TestClient

from stratus.common import longpoll, timeutil
from stratus.common.app import Req, Router, Routes, create_app, drain_on_sigterm
from stratus.common.db import Base, Database, is_contention, is_unavailable
from stratus.common.errors import Conflict, NotFound, ServiceUnavailable, neutron_error

pytestmark = pytest.mark.unit


# ---- Routes and Router.include -------------------------------------------------------


class Shelf:
    """A stand-in service layer: what the handlers call."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {"a": {"id": "a", "name": "first"}}
        self.on_loop: dict[str, bool] = {}


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


routes = Routes()


@routes.add("GET", "/items/{item_id}")
def show_item(req: Req, svc: Shelf) -> dict[str, Any]:
    svc.on_loop["sync"] = on_event_loop()
    item = svc.items.get(req.params["item_id"])
    if item is None:
        raise NotFound("No such item.")
    return {"item": item}


@routes.add("POST", "/items", status=201)
def create_item(req: Req, svc: Shelf) -> dict[str, Any]:
    item = {"id": req.body["item"]["name"][:1], **req.body["item"]}
    svc.items[item["id"]] = item
    return {"item": item}


@routes.add("DELETE", "/items/{item_id}", status=204)
def delete_item(req: Req, svc: Shelf) -> None:
    svc.items.pop(req.params["item_id"])


@routes.add("GET", "/items/{item_id}/text")
def item_text(req: Req, svc: Shelf) -> Response:
    return PlainTextResponse(svc.items[req.params["item_id"]]["name"])


@routes.add("PUT", "/items/{item_id}/data")
async def put_data(req: Req, svc: Shelf) -> dict[str, Any] | None:
    svc.on_loop["async"] = on_event_loop()
    assert req.body is None  # an async handler reads (or streams) the body itself
    data = await req.request.body()
    if not data:
        return None
    svc.items[req.params["item_id"]]["size"] = len(data)
    return {"size": len(data)}


@routes.add("GET", "/items/{item_id}/data")
async def get_data(req: Req, svc: Shelf) -> Response:
    return Response(b"x" * svc.items[req.params["item_id"]].get("size", 0),
                    media_type="application/octet-stream")


@pytest.fixture
def shelf() -> Shelf:
    return Shelf()


@pytest.fixture
def client(shelf: Shelf) -> TestClient:
    router = Router()
    router.include(routes, shelf)
    return TestClient(create_app("shelf", router.routes, neutron_error))


def test_routes_records_top_level_handlers_unchanged() -> None:
    assert [(m, p, s) for m, p, s, _body, _fn in routes.entries] == [
        ("GET", "/items/{item_id}", 200), ("POST", "/items", 201),
        ("DELETE", "/items/{item_id}", 204), ("GET", "/items/{item_id}/text", 200),
        ("PUT", "/items/{item_id}/data", 200), ("GET", "/items/{item_id}/data", 200)]
    assert routes.entries[0][4] is show_item  # the decorator returns the function itself


def test_a_handler_is_callable_without_an_app(shelf: Shelf) -> None:
    class FakeRequest:
        path_params = {"item_id": "a"}

    req = Req(FakeRequest(), None)  # type: ignore[arg-type,unused-ignore]
    assert show_item(req, svc=shelf) == {"item": {"id": "a", "name": "first"}}


def test_include_binds_every_route_to_the_service(client: TestClient, shelf: Shelf) -> None:
    router = Router()
    router.include(routes, shelf)
    names = {getattr(route, "name", "") for route in router.routes}
    assert {"show_item", "create_item", "delete_item", "item_text", "put_data",
            "get_data"} <= names
    resp = client.get("/items/a")
    assert resp.status_code == 200
    assert resp.json() == {"item": {"id": "a", "name": "first"}}
    assert client.get("/items/zz").status_code == 404


def test_sync_handler_gets_the_json_body_and_the_route_status(client: TestClient,
                                                              shelf: Shelf) -> None:
    resp = client.post("/items", json={"item": {"name": "bolt"}})
    assert resp.status_code == 201
    assert resp.json() == {"item": {"id": "b", "name": "bolt"}}
    assert shelf.items["b"]["name"] == "bolt"
    bad = client.post("/items", content=b"{not json")
    assert bad.status_code == 400
    assert "not valid JSON" in bad.json()["NeutronError"]["message"]
    assert client.post("/items", content=b"").status_code == 400


def test_none_is_204_and_a_response_is_sent_as_is(client: TestClient, shelf: Shelf) -> None:
    resp = client.delete("/items/a")
    assert resp.status_code == 204 and resp.content == b""
    assert "a" not in shelf.items
    shelf.items["c"] = {"id": "c", "name": "cog"}
    text = client.get("/items/c/text")
    assert (text.status_code, text.text) == (200, "cog")
    assert text.headers["content-type"].startswith("text/plain")


def test_async_handler_reads_the_body_itself(client: TestClient, shelf: Shelf) -> None:
    resp = client.put("/items/a/data", content=b"12345")
    assert resp.status_code == 200 and resp.json() == {"size": 5}
    empty = client.put("/items/a/data", content=b"")
    assert empty.status_code == 204 and empty.content == b""
    data = client.get("/items/a/data")
    assert data.content == b"xxxxx"
    assert data.headers["content-type"] == "application/octet-stream"
    client.get("/items/a")
    # The sync handler ran in a worker thread, the async one on the event loop.
    assert shelf.on_loop == {"sync": False, "async": True}


def test_async_handler_dict_is_sent_with_the_route_status() -> None:
    table = Routes()

    @table.add("POST", "/things", status=201)
    async def make_thing(req: Req, svc: Shelf) -> dict[str, Any]:
        return {"made": True}

    router = Router()
    router.include(table, Shelf())
    resp = TestClient(create_app("test", router.routes, neutron_error)).post("/things")
    assert (resp.status_code, resp.json()) == (201, {"made": True})


def test_several_methods_share_one_route_so_405_names_them_all() -> None:
    table = Routes()

    @table.add(("GET", "POST"), "/both")
    async def both(req: Req, svc: Shelf) -> Response:
        return PlainTextResponse(req.request.method)

    @table.add(("PUT", "DELETE"), "/sync")
    def sync_both(req: Req, svc: Shelf) -> dict[str, Any]:
        return {"method": req.request.method, "body": req.body}

    router = Router()
    router.include(table, Shelf())
    client = TestClient(create_app("test", router.routes, neutron_error))
    assert client.get("/both").text == "GET"
    assert client.post("/both").text == "POST"
    refused = client.put("/both")
    assert refused.status_code == 405
    assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    # The JSON body is read for PUT, not for DELETE.
    assert client.put("/sync", json={"a": 1}).json() == {"method": "PUT", "body": {"a": 1}}
    assert client.delete("/sync").json() == {"method": "DELETE", "body": None}


# ---- restarts: draining on SIGTERM ---------------------------------------------------


def test_a_draining_process_marks_its_answers(client: TestClient) -> None:
    assert longpoll.DRAINING_HEADER not in client.get("/items/a").headers
    longpoll.drain()
    try:
        resp = client.get("/items/a")
        assert resp.status_code == 200  # requests still get their answer
        assert resp.headers[longpoll.DRAINING_HEADER] == "true"
    finally:
        longpoll.undrain()
    assert longpoll.DRAINING_HEADER not in client.get("/items/a").headers


def test_sigterm_drains_the_long_polls_next_to_the_handler_in_place() -> None:
    """What the lifespan does under uvicorn: its SIGTERM handler still runs, and the
    long-polls of the process are drained as well."""
    seen: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))

        async def main() -> tuple[bool, bool]:
            assert drain_on_sigterm()
            assert drain_on_sigterm()  # twice: wrapped once only
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler)
            handler(signal.SIGTERM, None)
            before = longpoll.draining()
            await asyncio.sleep(0)  # the drain is scheduled on the loop
            return before, longpoll.draining()

        assert asyncio.run(main()) == (False, True)
        assert seen == [signal.SIGTERM]  # once, though drain_on_sigterm ran twice
    finally:
        longpoll.undrain()
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_off_the_main_thread_signals_are_left_alone() -> None:
    answers: list[bool] = []
    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=lambda: answers.append(asyncio.run(_drain())))
    thread.start()
    thread.join(10)
    assert answers == [False]
    assert signal.getsignal(signal.SIGTERM) is before


async def _drain() -> bool:
    return drain_on_sigterm()


def test_a_socket_handed_over_by_the_process_manager_is_taken_over() -> None:
    """systemd's protocol: LISTEN_PID is the process, LISTEN_FDS=1, the socket is fd 3;
    a LISTEN_PID of another process (a parent's variables) is not taken."""
    script = ("import os; from stratus.common.app import inherited_socket; "
              "s = inherited_socket(); "
              "print(s.getsockname()[1] if s else None, os.environ.get('LISTEN_FDS'))")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(8)
        port, fd = held.getsockname()[1], held.fileno()
        env = {**os.environ, "LISTEN_FDS": "1"}
        ran = [subprocess.run(
            ["sh", "-c", f'LISTEN_PID={pid} exec "$0" -c "$1"', sys.executable, script],
            env=env, capture_output=True, text=True, pass_fds=(3,), timeout=60,
            preexec_fn=lambda: os.dup2(fd, 3)) for pid in ("$$", "1")]
    assert [r.stdout.split() for r in ran] == [[str(port), "None"], ["None", "None"]], ran


# ---- is_contention ------------------------------------------------------------------


class FakePgError(Exception):
    """What psycopg raises: an error carrying its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def locked_sqlite_error(path: Path) -> sqlite3.OperationalError:
    """A real 'database is locked' from SQLite: a write while another connection
    holds an exclusive lock (no busy timeout)."""
    holder = sqlite3.connect(path, timeout=0, isolation_level=None)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        holder.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        holder.execute("BEGIN EXCLUSIVE")
        try:
            other.execute("INSERT INTO t VALUES (1)")
        except sqlite3.OperationalError as exc:
            return exc
        raise AssertionError("the second connection was not locked out")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        other.close()


def test_contention_is_decided_on_the_driver_code(tmp_path: Path) -> None:
    locked = locked_sqlite_error(tmp_path / "locked.sqlite")
    assert locked.sqlite_errorcode & 0xFF == 5  # SQLITE_BUSY
    assert is_contention(locked)
    wrapped = sa.exc.OperationalError("INSERT INTO t VALUES (1)", {}, locked)
    assert is_contention(wrapped)
    assert not is_unavailable(wrapped)  # a lost race is not an outage
    with pytest.raises(sqlite3.OperationalError) as other:
        sqlite3.connect(":memory:").execute("SELECT * FROM no_such_table")
    assert not is_contention(other.value)
    assert is_unavailable(sa.exc.OperationalError("SELECT", {}, other.value))


def test_contention_through_sqlalchemy_on_a_locked_database(tmp_path: Path) -> None:
    path = tmp_path / "engine.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with pytest.raises(sa.exc.OperationalError) as err, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert is_contention(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()


@pytest.mark.parametrize(("sqlstate", "retry"), [
    ("40001", True),   # serialization_failure
    ("40P01", True),   # deadlock_detected
    ("23505", False),  # unique_violation: an IntegrityError, not contention
    ("57P01", False),  # admin_shutdown: an outage
])
def test_contention_from_a_postgresql_sqlstate(sqlstate: str, retry: bool) -> None:
    assert is_contention(FakePgError(sqlstate)) is retry
    assert is_contention(sa.exc.OperationalError("UPDATE", {}, FakePgError(sqlstate))) is retry


def test_the_message_text_decides_nothing() -> None:
    assert not is_contention(Exception("database is locked"))
    assert not is_contention(sa.exc.OperationalError("x", {}, Exception("deadlock detected")))


# ---- Database.transaction -----------------------------------------------------------


class TxBase(Base):
    __abstract__ = True
    metadata = sa.MetaData()


class Thing(TxBase):
    __tablename__ = "things"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/tx.sqlite", "test")
    TxBase.metadata.create_all(database.engine)
    with database.session() as s:
        s.add(Thing(id=1, name="taken"))
    yield database
    database.dispose()


def contention() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("UPDATE things", {}, FakePgError("40001"))


def names(db: Database) -> list[str]:
    with db.session() as s:
        return sorted(s.scalars(sa.select(Thing.name)))


def test_transaction_retries_contention_and_runs_the_hooks(db: Database) -> None:
    calls: list[str] = []

    def work(s: Session) -> str:
        calls.append("work")
        s.add(Thing(name=f"try-{len([c for c in calls if c == 'work'])}"))
        if calls.count("work") < 3:
            s.flush()
            raise contention()
        return "done"

    def before_commit(s: Session) -> None:
        calls.append("before_commit")
        # work's rows are flushed and visible inside the same transaction
        assert s.scalar(sa.select(sa.func.count()).select_from(Thing)) == 2

    def after_commit(s: Session) -> None:
        calls.append("after_commit")

    result = db.transaction(work, begin=lambda s: calls.append("begin"),
                            before_commit=before_commit, after_commit=after_commit)
    assert result == "done"
    assert calls == ["begin", "work", "begin", "work", "begin", "work", "before_commit",
                     "after_commit"]
    assert names(db) == ["taken", "try-3"]  # the lost attempts were rolled back


def test_transaction_retries_an_integrity_error_with_fresh_values(db: Database) -> None:
    tried: list[str] = []

    def work(s: Session) -> int:
        name = ["taken", "taken", "free"][len(tried)]
        tried.append(name)
        thing = Thing(name=name)
        s.add(thing)
        s.flush()
        return thing.id

    assert db.transaction(work) == 2
    assert tried == ["taken", "taken", "free"]
    assert names(db) == ["free", "taken"]


def test_transaction_conflict_after(db: Database) -> None:
    tried: list[int] = []

    def work(s: Session) -> None:
        tried.append(1)
        s.add(Thing(name="taken"))

    with pytest.raises(Conflict) as err:
        db.transaction(work, attempts=10, conflict_after=3)
    assert err.value.status == 409
    assert "conflicted with concurrent changes" in err.value.message
    assert len(tried) == 3
    tried.clear()
    with pytest.raises(Conflict):
        db.transaction(work, attempts=4)  # default: an IntegrityError on every attempt
    assert len(tried) == 4


def test_transaction_gives_503_when_contention_outlasts_the_attempts(db: Database) -> None:
    tried: list[int] = []
    after: list[int] = []

    def work(s: Session) -> None:
        tried.append(1)
        raise contention()

    with pytest.raises(ServiceUnavailable) as err:
        db.transaction(work, attempts=5, after_commit=lambda s: after.append(1))
    assert err.value.status == 503
    assert err.value.message == "The test database is too busy; try again."
    assert len(tried) == 5 and after == []


def test_transaction_does_not_retry_other_errors(db: Database) -> None:
    tried: list[int] = []

    def outage(s: Session) -> None:
        tried.append(1)
        raise sa.exc.OperationalError("SELECT", {}, FakePgError("08006"))

    with pytest.raises(ServiceUnavailable, match="database is unavailable"):
        db.transaction(outage)
    assert len(tried) == 1

    def not_found(s: Session) -> None:
        tried.append(1)
        s.add(Thing(name="never"))
        raise NotFound("nope")

    with pytest.raises(NotFound):
        db.transaction(not_found)
    assert len(tried) == 2
    assert names(db) == ["taken"]


# ---- timeutil ---------------------------------------------------------------------


def test_utcnow_is_naive_utc_in_whole_seconds_unless_precise() -> None:
    now = timeutil.utcnow()
    assert now.tzinfo is None and now.microsecond == 0
    assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)
    precise = [timeutil.utcnow(precise=True) for _ in range(50)]
    assert precise[0].tzinfo is None
    assert any(p.microsecond for p in precise)


def test_from_timestamp_and_isotime() -> None:
    assert timeutil.from_timestamp(0) == datetime(1970, 1, 1)
    assert timeutil.from_timestamp(86400.5) == datetime(1970, 1, 2, 0, 0, 0, 500000)
    value = datetime(2026, 1, 2, 3, 4, 5, 123456)
    assert timeutil.isotime(value) == "2026-01-02T03:04:05Z"
    assert timeutil.isotime(value, precise=True) == "2026-01-02T03:04:05.123456Z"
    assert timeutil.isotime(datetime(2026, 1, 2), precise=True) == "2026-01-02T00:00:00.000000Z"
    assert timeutil.isotime(0.25) == "1970-01-01T00:00:00Z"
    assert timeutil.isotime(0.25, precise=True) == "1970-01-01T00:00:00.250000Z"
    assert timeutil.isotime(None) is None


def test_new_ids() -> None:
    ids = {timeutil.new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                            r"[0-9a-f]{12}", i) for i in ids)
    hex_ids = {timeutil.new_hex_id() for _ in range(100)}
    assert len(hex_ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in hex_ids)
