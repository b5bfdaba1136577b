"""The container and account databases of the storage devices (object/dbs.py): merge by
timestamp, tombstones, listing parameters, replication rows, crash safety."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stratus.object import dbs
from stratus.object.dbs import Db, DbError, DbMissing, ListParams

pytestmark = pytest.mark.unit


def ts(n: float) -> str:
    return "%016.5f" % (1_700_000_000 + n)


def obj(name: str, t: float, size: int = 1, deleted: int = 0, **kw: object) -> dict:
    return {"name": name, "timestamp": ts(t), "size": size, "etag": "e" * 32,
            "content_type": "text/plain", "deleted": deleted, **kw}


def container(tmp_path: Path, name: str = "c") -> Db:
    db = Db(tmp_path / name / "x.db", "container")
    db.merge_info({"account": "AUTH_a", "container": "c", "put_timestamp": ts(0)})
    return db


def test_missing_database_and_bad_input(tmp_path: Path) -> None:
    db = Db(tmp_path / "none.db", "container")
    with pytest.raises(DbMissing):
        db.info()
    with pytest.raises(DbMissing):
        db.merge_rows([obj("a", 1)])
    assert not db.exists()
    db = container(tmp_path)
    with pytest.raises(DbError, match="name"):
        db.merge_rows([{"name": "", "timestamp": ts(1)}])
    with pytest.raises(DbError, match="timestamp"):
        db.merge_rows([{"name": "a"}])
    with pytest.raises(DbError, match="size"):
        db.merge_rows([obj("a", 1, size="x")])  # type: ignore[arg-type]
    with pytest.raises(DbError, match="op"):
        dbs.call(tmp_path, "container", 0, "ab", "drop", {})
    with pytest.raises(DbError, match="kind"):
        Db(tmp_path / "y.db", "bucket")


def test_newest_row_wins_in_any_order_and_tombstones_stay(tmp_path: Path) -> None:
    a, b = container(tmp_path, "a"), container(tmp_path, "b")
    rows = [obj("o", 1, size=10), obj("o", 3, deleted=1, size=0), obj("o", 2, size=20),
            obj("p", 1, size=5)]
    assert a.merge_rows(rows) == 3  # the row at ts 2 comes after the tombstone: it loses
    b.merge_rows(list(reversed(rows)))
    assert a.digest() == b.digest()
    info = a.info()
    assert (info["objects"], info["bytes"]) == (1, 5)
    assert [r["name"] for r in a.listing(ListParams(limit=10))] == ["p"]
    tomb = [r for r in a.rows_since(0) if r["name"] == "o"]
    assert tomb[0]["deleted"] == 1 and tomb[0]["timestamp"] == ts(3)
    # an older PUT replicated later does not bring the object back
    assert a.merge_rows([obj("o", 2.5)]) == 0
    assert a.info()["objects"] == 1
    # a newer PUT does
    a.merge_rows([obj("o", 4, size=7)])
    assert (a.info()["objects"], a.info()["bytes"]) == (2, 12)


def test_metadata_update_keeps_data_and_loses_to_newer_put(tmp_path: Path) -> None:
    db = container(tmp_path)
    db.merge_rows([obj("o", 1, size=3)])
    db.merge_rows([obj("o", 1, size=3, content_type="image/png", meta_timestamp=ts(2),
                       delete_at=99)])
    (row,) = db.rows_since(0)
    assert row["content_type"] == "image/png" and row["delete_at"] == 99
    assert db.expired(100, 10) == [("o", ts(1))]
    db.merge_rows([obj("o", 3, size=4)])
    (row,) = db.rows_since(0)
    assert row["content_type"] == "text/plain" and row["delete_at"] is None


def test_info_merge_timestamps_and_metadata_keys(tmp_path: Path) -> None:
    db = container(tmp_path)
    db.merge_info({"account": "AUTH_a", "container": "c", "put_timestamp": ts(1),
                   "meta": {"x-container-meta-a": ["1", ts(1)],
                            "x-container-meta-b": ["2", ts(1)]}})
    db.merge_info({"account": "AUTH_a", "container": "c",
                   "meta": {"x-container-meta-a": ["old", ts(0.5)],
                            "x-container-meta-b": ["", ts(2)]}})
    info = db.info()
    assert dbs.live_meta(info["meta"]) == {"x-container-meta-a": "1"}
    assert not info["deleted"]
    db.merge_info({"account": "AUTH_a", "container": "c", "delete_timestamp": ts(3)})
    assert db.info()["deleted"]
    db.merge_info({"account": "AUTH_a", "container": "c", "put_timestamp": ts(4)})
    info = db.info()
    assert not info["deleted"] and info["created_at"] == ts(0)


def test_account_rows_merge_stats_and_deletes(tmp_path: Path) -> None:
    acct = Db(tmp_path / "a.db", "account")
    acct.merge_info({"account": "AUTH_a", "put_timestamp": ts(0)})
    row = {"name": "c", "timestamp": ts(1), "put_timestamp": ts(1), "stats_timestamp": ts(2),
           "object_count": 3, "bytes_used": 30}
    acct.merge_rows([row])
    acct.merge_rows([{**row, "stats_timestamp": ts(1.5), "object_count": 1}])  # older stats
    acct.merge_rows([{"name": "d", "timestamp": ts(1), "put_timestamp": ts(1)}])
    info = acct.info()
    assert (info["containers"], info["objects"], info["bytes"]) == (2, 3, 30)
    assert [r["name"] for r in acct.listing(ListParams(limit=10))] == ["c", "d"]
    acct.merge_rows([{"name": "d", "timestamp": ts(5), "delete_timestamp": ts(5)}])
    assert acct.info()["containers"] == 1
    assert [r["name"] for r in acct.listing(ListParams(limit=10))] == ["c"]
    acct.merge_rows([{"name": "d", "timestamp": ts(4), "put_timestamp": ts(4)}])
    assert acct.info()["containers"] == 1  # the delete is newer


NAMES = ["a", "a/1", "a/2", "b", "b/x/1", "c"]


@pytest.mark.parametrize(("params", "expected"), [
    ({}, NAMES),
    ({"limit": 2}, ["a", "a/1"]),
    ({"marker": "a/2"}, ["b", "b/x/1", "c"]),
    ({"end_marker": "b"}, ["a", "a/1", "a/2"]),
    ({"prefix": "a/"}, ["a/1", "a/2"]),
    ({"delimiter": "/"}, ["a", "a/", "b", "b/", "c"]),
    ({"delimiter": "/", "prefix": "b/"}, ["b/x/"]),
    ({"reverse": True}, list(reversed(NAMES))),
    ({"reverse": True, "marker": "b", "limit": 2}, ["a/2", "a/1"]),
    ({"reverse": True, "delimiter": "/"}, ["c", "b/", "b", "a/", "a"]),
])
def test_listing_parameters(tmp_path: Path, params: dict, expected: list[str]) -> None:
    db = container(tmp_path)
    db.merge_rows([obj(n, 1) for n in NAMES] + [obj("zz", 2, deleted=1)])
    got = db.listing(ListParams(**{"limit": 100, **params}))
    assert [r.get("name", r.get("subdir")) for r in got] == expected


def test_rows_since_and_sync_points(tmp_path: Path) -> None:
    db = container(tmp_path)
    db.merge_rows([obj("a", 1), obj("b", 1)])
    first = db.rows_since(0)
    assert [r["name"] for r in first] == ["a", "b"]
    db.set_sync_point("peer", first[-1]["seq"])
    db.merge_rows([obj("a", 2, deleted=1)])
    assert [r["name"] for r in db.rows_since(db.sync_point("peer"))] == ["a"]
    assert db.sync_point("other") == 0


def test_reclaim_drops_old_tombstones_only(tmp_path: Path) -> None:
    db = container(tmp_path)
    db.merge_rows([obj("old", 1, deleted=1), obj("live", 1)])
    assert db.reclaim(now=1_700_000_000 + dbs.RECLAIM_AGE + 10) == 1
    assert [r["name"] for r in db.rows_since(0)] == ["live"]


def test_a_failed_write_leaves_the_last_committed_state(tmp_path: Path) -> None:
    db = container(tmp_path)
    db.merge_rows([obj("a", 1)])
    with pytest.raises(DbError):
        db.merge_rows([obj("b", 1), {"name": "bad"}])  # the second row is malformed
    assert [r["name"] for r in db.listing(ListParams(limit=10))] == ["a"]
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_call_and_device_walk(tmp_path: Path) -> None:
    new = {"info": {"account": "AUTH_a", "container": "c", "put_timestamp": ts(0)}}
    with pytest.raises(DbMissing):  # a write makes a database only when asked to
        dbs.call(tmp_path, "container", 3, "ab" * 16, "merge_info", new)
    with pytest.raises(DbMissing):
        dbs.call(tmp_path, "container", 3, "ab" * 16, "merge_rows",
                 {**new, "rows": [obj("o", 1)]})
    assert not list(dbs.local_dbs(tmp_path, "container"))
    info = dbs.call(tmp_path, "container", 3, "ab" * 16, "merge_info",
                    {**new, "create": True})
    assert info["objects"] == 0
    dbs.call(tmp_path, "container", 3, "ab" * 16, "merge_rows",
             {"rows": [obj("o", 1, delete_at=5)]})
    assert [p for p, _h, _db in dbs.local_dbs(tmp_path, "container")] == [3]
    assert dbs.device_expired(tmp_path, 10, 10) == [
        {"account": "AUTH_a", "container": "c", "name": "o", "timestamp": ts(1)}]
    with pytest.raises(DbMissing):
        dbs.call(tmp_path, "container", 3, "cd" * 16, "info", {})
