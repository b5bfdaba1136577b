"""The image service's object-storage backend (stratus.image.objectstore) against the object
API in process (tests/object_api.py: the real stratus-object app on three devices, fake
tokens): a commit stores one object with the upload's md5, reads come back whole or from an
offset, damaged bytes are noticed, garbage collection spares young and referenced objects,
a refused PUT keeps nothing, and ``[image] store`` is checked at start."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from object_api import ALICE, ObjectApi, in_process
from stratus.common.clients import ApiClient, StaticToken
from stratus.common.config import Config, ConfigError
from stratus.image import objectstore
from stratus.image.app import build_store
from stratus.image.objectstore import ObjectStore, ServiceAccount, StoreUnavailable
from stratus.image.store import FileStore, Upload

pytestmark = [pytest.mark.unit]

ACCOUNT = "/v1/AUTH_p-alice"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ObjectApi]:
    (tmp_path / "object").mkdir()
    with in_process(tmp_path / "object") as api:
        yield api


def store_on(api: ObjectApi, root: Path, token: str = ALICE) -> ObjectStore:
    account = ServiceAccount("http://testserver", "http://identity.invalid", StaticToken(token))
    account._client = ApiClient(f"http://testserver{ACCOUNT}", StaticToken(token),
                                http=api.client, service="object storage")
    store = ObjectStore(root, account, "zob-images")
    store.ensure()
    return store


def upload(store: ObjectStore, data: bytes) -> Upload:
    up = store.begin(len(data) + 1, "zob-owner")
    up.write(data)
    up.finish()
    return up


def test_commit_stores_one_object_and_reads_it_back(api: ObjectApi, tmp_path: Path) -> None:
    store = store_on(api, tmp_path / "images")
    data = os.urandom(3 * 1024 * 1024 + 7)
    up = upload(store, data)
    key = store.commit(up)
    assert len(key) == 128 and key.endswith(up.sha512[:64])
    assert not up.path.exists(), "the staged file is removed once the object is stored"
    assert list(store.keys()) == [key]
    assert store.head(key) == (len(data), up.checksum)
    fh, size = store.open(key)
    assert size == len(data) and fh.read() == data
    fh.close()
    fh, _ = store.open(key)
    fh.seek(1_000_000)
    assert fh.read(10) == data[1_000_000:1_000_010]
    fh.close()
    # the same content again is another object: no two images share one
    assert store.commit(upload(store, data)) != key
    assert store.remove(key) and not store.remove(key)
    with pytest.raises(FileNotFoundError):
        store.open(key)


def test_damaged_object_is_not_sent_as_good_data(api: ObjectApi, tmp_path: Path) -> None:
    store = store_on(api, tmp_path / "images")
    data = os.urandom(200_000)
    key = store.commit(upload(store, data))
    for dev in api.devices():
        for path in Path(dev.path).rglob("*.data"):
            raw = bytearray(path.read_bytes())
            raw[100] ^= 0xFF
            path.write_bytes(bytes(raw))
    fh, size = store.open(key)
    assert size == len(data), "the size is right: only the bytes are damaged"
    with pytest.raises(OSError, match="md5"):
        while fh.read(65536):
            pass
    fh.close()


def test_garbage_collection_spares_young_and_referenced_objects(
        api: ObjectApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_on(api, tmp_path / "images")
    kept = store.commit(upload(store, b"referenced"))
    orphan = store.commit(upload(store, b"orphan"))
    assert store.collect_garbage([kept]) == [], "a young object may be an upload in progress"
    monkeypatch.setattr(objectstore, "GARBAGE_AGE", -60.0)
    assert store.collect_garbage([kept]) == [orphan]
    assert list(store.keys()) == [kept]


def test_refused_put_keeps_nothing(api: ObjectApi, tmp_path: Path) -> None:
    store = store_on(api, tmp_path / "images", token="tok-nobody")
    up = upload(store, b"data nobody may store")
    with pytest.raises(StoreUnavailable, match="object storage"):
        store.commit(up)
    assert not up.path.exists()
    assert list(FileStore(tmp_path / "images").tmp.iterdir()) == []


def test_store_setting_is_checked(tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text(f"[image]\nimages_dir = {tmp_path}/images\nstore = swift\n")
    with pytest.raises(ConfigError, match="use file or object"):
        build_store(Config.load(str(conf)))
    conf.write_text(f"[image]\nimages_dir = {tmp_path}/images\nstore = object\n")
    with pytest.raises(ConfigError, match="object_url, username, password"):
        build_store(Config.load(str(conf)))
    conf.write_text(f"[image]\nimages_dir = {tmp_path}/images\n")
    assert isinstance(build_store(Config.load(str(conf))), FileStore)
