"""The listings in the devices' databases through stratus-object in process (three local
devices): a container database replica that is down keeps the update pending until it
is back, the database replicator converges a replica that missed a delete, and the move
of an existing deploy's central listings (once, recorded, retried while a replica is
down)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from object_api import ALICE, ObjectApi, in_process
from stratus.object.consistency import replicate
from stratus.object.dbapi import db_call
from stratus.object.diskfile import MARKER
from stratus.object.migrate import migrate_listings, moved
from stratus.object.pending import PENDING_DIR, update_listings

pytestmark = [pytest.mark.unit]
A = "/v1/AUTH_p-alice"
H = {"X-Auth-Token": ALICE}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ObjectApi]:
    with in_process(tmp_path) as a:
        yield a


def _container_dbs(api: ObjectApi, container: str) -> list[dict]:
    listings = api.core.listings
    t = listings.target("AUTH_p-alice", container)
    return [db_call(d, t.kind, t.part, t.hash, "info") for d in t.devices]


def _pending(api: ObjectApi) -> list[Path]:
    return [p for d in api.devices() for p in (d.path / PENDING_DIR).glob("*.json")]


def _names(api: ObjectApi, container: str) -> list[str]:
    return api.client.get(f"{A}/{container}", headers=H).text.split()


def test_down_replica_gets_the_update_from_the_pending_record(api: ObjectApi) -> None:
    assert api.client.put(f"{A}/c", headers=H).status_code == 201
    down = api.devices()[1]
    (down.path / MARKER).unlink()
    assert api.client.put(f"{A}/c/o", headers=H, content=b"12345").status_code == 201
    assert _names(api, "c") == ["o"]
    assert len(_pending(api)) == 1
    assert update_listings(api.core) == 0  # still down: kept
    down.prepare()
    assert update_listings(api.core) == 1
    assert not _pending(api)
    assert [(i["objects"], i["bytes"]) for i in _container_dbs(api, "c")] == [(1, 5)] * 3
    r = api.client.head(A, headers=H)
    assert (r.headers["x-account-object-count"], r.headers["x-account-bytes-used"]) == \
        ("1", "5")


def test_replicator_converges_a_missed_delete(api: ObjectApi) -> None:
    assert api.client.put(f"{A}/c", headers=H).status_code == 201
    assert api.client.put(f"{A}/c/o", headers=H, content=b"x").status_code == 201
    missed = api.devices()[2]
    (missed.path / MARKER).unlink()
    assert api.client.delete(f"{A}/c/o", headers=H).status_code == 204
    missed.prepare()
    assert [i["objects"] for i in _container_dbs(api, "c")] == [0, 0, 1]
    report = replicate(api.core.store.rings)
    assert report.db_rows_pushed >= 1 and not report.errors
    assert [i["objects"] for i in _container_dbs(api, "c")] == [0, 0, 0]
    # a second pass finds every database in sync
    assert replicate(api.core.store.rings).db_rows_pushed == 0
    assert api.client.delete(f"{A}/c", headers=H).status_code == 204
    assert api.client.get(A, headers=H).status_code == 204


def test_central_listings_move_once(api: ObjectApi) -> None:
    old = api.core.sql_listings
    old.update_account("AUTH_p-alice", {"meta-color": "blue"})
    old.put_container("AUTH_p-alice", "legacy", {"meta-a": "1"})
    for i in range(3):
        old.record_object("AUTH_p-alice", "legacy", f"o{i}", 10, "e" * 32, "text/plain",
                          f"1700000000.0000{i}", None)
    down = api.devices()[0]
    (down.path / MARKER).unlink()
    with pytest.raises(OSError, match="retried"):
        migrate_listings(api.core)
    assert not moved(api.core)
    down.prepare()
    assert migrate_listings(api.core) == {"accounts": 1, "containers": 1, "objects": 3}
    assert moved(api.core)
    assert migrate_listings(api.core) is None
    assert _names(api, "legacy") == ["o0", "o1", "o2"]
    r = api.client.head(f"{A}/legacy", headers=H)
    assert r.headers["x-container-object-count"] == "3"
    assert r.headers["x-container-meta-a"] == "1"
    r = api.client.head(A, headers=H)
    assert r.headers["x-account-meta-color"] == "blue"
    assert r.headers["x-account-object-count"] == "3"
    assert [i["objects"] for i in _container_dbs(api, "legacy")] == [3, 3, 3]
