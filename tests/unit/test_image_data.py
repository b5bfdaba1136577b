"""Image data in process: uploads, downloads, limits, the store, and crash recovery."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from image_api import CALLERS, ImageApi, image_client, make_service, md5, qcow2
from stratus.image import models as m
from stratus.image import transfer
from stratus.image.core import ImageService, Settings
from stratus.image.store import FileStore, Upload, current_owner

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) missing"),
]
LIMIT = 4 * 1024 * 1024


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ImageService]:
    svc = make_service(tmp_path, Settings(max_image_size=LIMIT))
    yield svc
    svc.db.dispose()


@pytest.fixture
def api(service: ImageService) -> Iterator[ImageApi]:
    with image_client(service) as client:
        yield client


def leftovers(store: FileStore) -> tuple[list[str], list[str]]:
    return sorted(p.name for p in store.tmp.iterdir()), sorted(store.keys())


def status(api: ImageApi, image_id: str) -> str:
    return str(api.show(image_id)["status"])


def test_upload_sets_size_hashes_and_download_returns_the_same_bytes(api: ImageApi) -> None:
    data = os.urandom(LIMIT - 5)
    img = api.create("alice", name="blob")
    resp = api.upload(img["id"], data, "alice")
    assert resp.status_code == 204, resp.text
    shown = api.show(img["id"], "alice")
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["virtual_size"] == len(data) and shown["checksum"] == md5(data)
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    got = api.call("GET", f"/v2/images/{img['id']}/file", "alice")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-md5"] == md5(data)
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-length"] == str(len(data))


def test_chunked_upload_without_a_length(api: ImageApi, tmp_path: Path) -> None:
    image = qcow2(tmp_path / "c.qcow2", "8M")
    data = image.read_bytes()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 7000):
            yield data[i : i + 7000]

    img = api.create("alice", disk_format="qcow2")
    assert api.upload(img["id"], chunks(), "alice").status_code == 204
    shown = api.show(img["id"], "alice")
    assert shown["checksum"] == md5(data) and shown["virtual_size"] == 8 * 1024 * 1024


def test_range_requests(api: ImageApi) -> None:
    data = bytes(range(256)) * 64
    img = api.create("alice")
    api.upload(img["id"], data, "alice")
    path = f"/v2/images/{img['id']}/file"
    part = api.call("GET", path, "alice", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert "content-md5" not in part.headers
    tail = api.call("GET", path, "alice", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    open_end = api.call("GET", path, "alice", headers={"Range": "bytes=16000-"})
    assert open_end.content == data[16000:]
    beyond = api.call("GET", path, "alice", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    ignored = api.call("GET", path, "alice", headers={"Range": "lines=1-2"})
    assert ignored.status_code == 200 and ignored.content == data


def test_download_of_an_image_without_data_is_204(api: ImageApi) -> None:
    img = api.create("alice")
    resp = api.call("GET", f"/v2/images/{img['id']}/file", "alice")
    assert resp.status_code == 204 and resp.content == b""


def test_upload_refusals_leave_the_image_queued_and_nothing_stored(
    api: ImageApi, service: ImageService
) -> None:
    img = api.create("alice", disk_format="qcow2")
    resp = api.upload(img["id"], b"not a qcow2" * 100, "alice")
    assert resp.status_code == 400 and "not a qcow2 image" in resp.json()["message"]
    assert status(api, img["id"]) == "queued"
    resp = api.upload(img["id"], b"x", "alice", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415 and "application/octet-stream" in resp.json()["message"]
    no_format = api.create("alice", disk_format=None)
    resp = api.upload(no_format["id"], b"x" * 10, "alice")
    assert resp.status_code == 400 and "disk_format and container_format" in resp.text
    assert leftovers(service.store) == ([], [])
    error = api.upload(img["id"], b"\x00", "carol")
    assert error.status_code == 403


def test_oversize_upload_is_413_before_or_while_reading(
    api: ImageApi, service: ImageService
) -> None:
    img = api.create("alice")
    announced = api.upload(img["id"], b"\x00" * (LIMIT + 1), "alice")
    assert announced.status_code == 413
    assert "maximum image size of 4194304 bytes" in announced.json()["message"]
    assert status(api, img["id"]) == "queued"

    def endless() -> Iterator[bytes]:
        for _ in range(LIMIT // 65536 + 10):
            yield b"\x00" * 65536

    streamed = api.upload(img["id"], endless(), "alice")
    assert streamed.status_code == 413
    assert status(api, img["id"]) == "queued"
    sized = api.upload(img["id"], b"\x00" * 10, "alice",
                       headers={"X-OpenStack-Image-Size": str(LIMIT * 2)})
    assert sized.status_code == 413
    assert leftovers(service.store) == ([], [])
    assert api.upload(img["id"], b"\x00" * LIMIT, "alice").status_code == 204


def test_project_byte_quota(tmp_path: Path) -> None:
    svc = make_service(tmp_path, Settings(quota_bytes_per_project=10_000))
    with image_client(svc) as api:
        first = api.create("alice")
        assert api.upload(first["id"], b"\x01" * 6000, "alice").status_code == 204
        second = api.create("alice")
        resp = api.upload(second["id"], b"\x02" * 6000, "alice")
        assert resp.status_code == 413 and "storage quota of project p-alice" in resp.text
        assert "6000 of 10000 bytes" in resp.json()["message"]
        assert api.upload(second["id"], b"\x02" * 4000, "alice").status_code == 204
        other = api.create("bob")
        assert api.upload(other["id"], b"\x03" * 6000, "bob").status_code == 204


def test_upload_only_to_a_queued_image(api: ImageApi) -> None:
    img = api.create("alice")
    assert api.upload(img["id"], b"\x01" * 512, "alice").status_code == 204
    again = api.upload(img["id"], b"\x02" * 512, "alice")
    assert again.status_code == 409 and "is active" in again.json()["message"]


def test_equal_data_is_stored_once_and_removed_with_its_last_image(
    api: ImageApi, service: ImageService
) -> None:
    data = os.urandom(100_000)
    one, two = api.create("alice"), api.create("bob")
    api.upload(one["id"], data, "alice")
    api.upload(two["id"], data, "bob")
    key = hashlib.sha512(data).hexdigest()
    assert list(service.store.keys()) == [key]
    assert service.store.path_of(key).read_bytes() == data
    assert api.call("DELETE", f"/v2/images/{one['id']}", "alice").status_code == 204
    assert api.call("GET", f"/v2/images/{two['id']}/file", "bob").content == data
    assert api.call("DELETE", f"/v2/images/{two['id']}", "bob").status_code == 204
    assert leftovers(service.store) == ([], [])


def test_image_deleted_during_upload_answers_410_and_keeps_nothing(
    api: ImageApi, service: ImageService
) -> None:
    img = api.create("alice")

    def body() -> Iterator[bytes]:
        yield b"\x01" * 100_000
        service.delete(CALLERS["alice"], img["id"])
        yield b"\x02" * 100_000

    resp = api.upload(img["id"], body(), "alice")
    assert resp.status_code == 410 and "deleted during the upload" in resp.json()["message"]
    assert leftovers(service.store) == ([], [])


def test_store_faults_kill_the_image_but_a_full_store_only_requeues(
    api: ImageApi, service: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = Upload.write

    def failing(code: int) -> Any:
        def write(self: Upload, data: bytes) -> None:
            real_write(self, data)
            raise OSError(code, os.strerror(code))
        return write

    full = api.create("alice")
    monkeypatch.setattr(Upload, "write", failing(errno.ENOSPC))
    resp = api.upload(full["id"], b"\x01" * 1000, "alice")
    assert resp.status_code == 413 and "image store is full" in resp.json()["message"]
    assert status(api, full["id"]) == "queued"

    broken = api.create("alice")
    monkeypatch.setattr(Upload, "write", failing(errno.EIO))
    resp = api.upload(broken["id"], b"\x01" * 1000, "alice")
    assert resp.status_code == 500 and "killed" in resp.json()["message"]
    assert status(api, broken["id"]) == "killed"
    assert leftovers(service.store) == ([], [])
    monkeypatch.setattr(Upload, "write", real_write)
    assert api.upload(broken["id"], b"\x01", "alice").status_code == 409
    assert api.call("DELETE", f"/v2/images/{broken['id']}", "alice").status_code == 204


def test_recovery_requeues_dead_uploads_and_removes_their_leftovers(
    service: ImageService, api: ImageApi
) -> None:
    store = service.store
    dead_owner = f"{current_owner().rsplit('_', 2)[0]}_{2**22 + 7}_1"  # this host, no such pid
    live = api.create("alice", name="live")
    dead = api.create("alice", name="dead")
    kept = api.create("alice", name="kept")
    api.upload(kept["id"], b"\x07" * 4096, "alice")
    with service.db.session() as s:
        s.execute(sa.update(m.Image).where(m.Image.id == dead["id"])
                  .values(status="saving", upload_owner=dead_owner))
        s.execute(sa.update(m.Image).where(m.Image.id == live["id"])
                  .values(status="saving", upload_owner=current_owner()))
    (store.tmp / f"{dead_owner}_abc.part").write_bytes(b"partial")
    (store.tmp / f"{current_owner()}_def.part").write_bytes(b"in progress")
    orphan = "ab" + "c" * 126
    store.path_of(orphan).parent.mkdir()
    store.path_of(orphan).write_bytes(b"renamed but never recorded")

    result = transfer.recover(service)

    assert result == {"requeued": 1, "tmp_removed": 1, "blobs_removed": 1}
    assert status(api, dead["id"]) == "queued"
    assert status(api, live["id"]) == "saving"  # its process (this one) still runs
    assert status(api, kept["id"]) == "active"
    assert leftovers(store) == ([f"{current_owner()}_def.part"],
                                [hashlib.sha512(b"\x07" * 4096).hexdigest()])
    assert api.upload(dead["id"], b"\x08" * 512, "alice").status_code == 204


def test_empty_data_activates_only_an_image_of_volume_snapshots(api: ImageApi) -> None:
    """A volume-backed server's snapshot (compute's createImage) is an image whose data
    is in volume snapshots: its zero-byte upload makes it active; any other image still
    refuses empty data."""
    bdm = '[{"source_type": "snapshot", "snapshot_id": "s8b-snap", "boot_index": 0}]'
    img = api.create("alice", disk_format="qcow2", block_device_mapping=bdm,
                     bdm_v2="True")
    resp = api.upload(img["id"], b"", "alice")
    assert resp.status_code == 204, resp.text
    shown = api.show(img["id"], "alice")
    assert shown["status"] == "active" and shown["size"] == 0
    assert shown["virtual_size"] is None and shown["block_device_mapping"] == bdm
    plain = api.create("alice", disk_format="qcow2")
    resp = api.upload(plain["id"], b"", "alice")
    assert resp.status_code == 400 and "empty" in resp.json()["message"]
    assert status(api, plain["id"]) == "queued"
    # data given to a snapshot image is inspected as usual
    other = api.create("alice", disk_format="qcow2", block_device_mapping=bdm)
    resp = api.upload(other["id"], b"not a qcow2" * 100, "alice")
    assert resp.status_code == 400 and "not a qcow2 image" in resp.json()["message"]
