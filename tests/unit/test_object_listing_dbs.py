"""The listings in the devices' databases through stratus-object in process (three local
devices): a container database replica that is down keeps the update pending until it
is back, the database replicator converges a replica that missed a delete, and the move
of an existing deploy's central listings (once, recorded, retried while a replica is
down)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from object_api import ALICE, ObjectApi, in_process
from stratus.contracts.object import Ring
from stratus.object import dbs
from stratus.object.consistency import replicate
from stratus.object.dbapi import db_call
from stratus.object.diskfile import MARKER, Device
from stratus.object.migrate import migrate_listings, moved
from stratus.object.pending import PENDING_DIR, update_listings
from stratus.object.ring import ensure

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


def _grow_ring(api: ObjectApi) -> tuple[Ring, int]:
    """A 4th device (its own zone) added the way ``ring.ensure`` adds one: (the new
    ring, the new device's id); the ring file is replaced, the service re-reads it."""
    old, _devices = api.core.store.rings.get()
    dev = Device(len(old.devices), api.root / f"dev{len(old.devices)}")
    dev.prepare()
    specs = [f"{d.host}:{d.zone}:{d.path}" for d in old.devices]
    _changed, new = ensure(api.root / "ring.json", [*specs, f"hostn:9:{dev.path}"],
                           old.part_power, 3)
    stat = (api.root / "ring.json").stat()
    os.utime(api.root / "ring.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert api.core.store.rings.get()[0].version == old.version + 1
    return new, dev.id


def _name_first_on(ring: Ring, dev_id: int, where: Callable[[str], int]) -> str:
    for i in range(5000):
        if ring.primaries(where(f"c{i}"))[0].id == dev_id:
            return f"c{i}"
    raise AssertionError(f"device {dev_id} is no partition's first primary")


def test_writes_after_a_ring_change_make_no_near_empty_database(tmp_path: Path) -> None:
    """Issue 14's gap: a container POST, an object PUT and an account row update made
    between a ring change and the replicator's pass, where the new device becomes the
    container's (and the account's) first primary: listings and counts stay whole (the
    new device's copy is made by the replicator, not by those writes)."""
    acct = "AUTH_p-alice"
    with in_process(tmp_path) as api:
        # the ring to come (its placement does not depend on what is stored)
        preview = tmp_path / "preview"
        preview.mkdir()
        shutil.copyfile(tmp_path / "ring.json", preview / "ring.json")
        old = api.core.store.rings.get()[0]
        _c, future = ensure(preview / "ring.json",
                            [*(f"{d.host}:{d.zone}:{d.path}" for d in old.devices),
                             f"hostn:9:{tmp_path / 'dev3'}"], old.part_power, 3)
        cont = _name_first_on(future, 3, lambda n: future.partition(acct, n))
        assert api.client.put(f"{A}/{cont}", headers=H).status_code == 201
        for name in ("a", "b"):
            assert api.client.put(f"{A}/{cont}/{name}", headers=H,
                                  content=b"123").status_code == 201
        ring, new_id = _grow_ring(api)
        assert new_id == 3 and ring.assignment == future.assignment
        new_dev = next(d for d in api.devices() if d.id == new_id)

        def whole(names: list[str]) -> None:
            assert _names(api, cont) == names
            r = api.client.head(f"{A}/{cont}", headers=H)
            assert (r.headers["x-container-object-count"],
                    r.headers["x-container-bytes-used"],
                    r.headers.get("x-container-meta-color")) == \
                (str(len(names)), str(3 * len(names)), "blue")
            listing = api.client.get(A, headers=H, params={"format": "json"}).json()
            assert [(e["name"], e["count"]) for e in listing] == [(cont, len(names))]

        # the window: a POST (metadata), a PUT of the existing container, an object PUT
        assert api.client.post(f"{A}/{cont}", headers={
            **H, "X-Container-Meta-Color": "blue"}).status_code == 204
        assert api.client.put(f"{A}/{cont}", headers=H).status_code == 202
        assert api.client.put(f"{A}/{cont}/c", headers=H, content=b"456").status_code == 201
        t = api.core.listings.target(acct, cont)
        assert t.devices[0].id == new_id
        whole(["a", "b", "c"])
        assert not list(dbs.local_dbs(new_dev.path, "container"))  # nothing made there
        assert api.client.delete(f"{A}/{cont}", headers=H).status_code == 409
        assert _pending(api)  # the new primary's row waits for its database
        report = replicate(api.core.store.rings)
        assert not report.errors
        assert update_listings(api.core) >= 1 and not _pending(api)
        info = db_call(new_dev, t.kind, t.part, t.hash, "info")
        assert (info["objects"], info["filling"]) == (3, False)
        assert dbs.live_meta(info["meta"]) == {"meta-color": "blue"}
        whole(["a", "b", "c"])
        # the new device alone serves the listing now
        for d in api.devices():
            if d.id != new_id:
                (d.path / MARKER).unlink()
        try:
            assert _names(api, cont) == ["a", "b", "c"]
        finally:
            for d in api.devices():
                d.prepare()


def test_a_copy_the_replicator_is_filling_is_not_read(tmp_path: Path) -> None:
    """A database the replicator made on a peer but has not filled (a pass killed
    midway) answers as missing to reads until a complete copy's pass ends it."""
    with in_process(tmp_path) as api:
        assert api.client.put(f"{A}/c", headers=H).status_code == 201
        assert api.client.put(f"{A}/c/o", headers=H, content=b"x").status_code == 201
        t = api.core.listings.target("AUTH_p-alice", "c")
        first = t.devices[0]
        info = db_call(first, t.kind, t.part, t.hash, "info")
        shutil.rmtree(Path(first.path) / "containers" / str(t.part) / t.hash)
        raw = {k: info[k] for k in ("account", "container", "created_at", "put_timestamp",
                                    "delete_timestamp", "policy", "meta")}
        db_call(first, t.kind, t.part, t.hash, "merge_info",
                {"info": raw, "create": True, "filling": True})  # and then killed
        assert _names(api, "c") == ["o"]
        assert api.client.head(f"{A}/c", headers=H).headers["x-container-object-count"] \
            == "1"
        assert db_call(first, t.kind, t.part, t.hash, "digest")["filling"]
        assert not replicate(api.core.store.rings).errors
        info = db_call(first, t.kind, t.part, t.hash, "info")
        assert (info["objects"], info["filling"]) == (1, False)
