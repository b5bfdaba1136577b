"""stratus-object-server's internal API (in-process, a device under tmp_path) through the
client the proxy and the replicators use (:class:`RemoteDevice`), and the ring's
``host:port`` device syntax."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from stratus.object.diskfile import Device
from stratus.object.remote import FILES_HEADER, SECRET_HEADER, RemoteDevice
from stratus.object.ring import parse_device
from stratus.object.server import create_app

pytestmark = [pytest.mark.unit]
H = "0123456789abcdef0123456789abcdef"
TS = "1700000000.00000"


@pytest.fixture()
def device(tmp_path: Path) -> Device:
    dev = Device(7, tmp_path / "dev")
    dev.prepare()
    return dev


@pytest.fixture()
def client(device: Device) -> TestClient:
    return TestClient(create_app(lambda: {7: device}, "s3cret"))


def remote(client: TestClient) -> RemoteDevice:
    return RemoteDevice(7, "http://testserver", client, "s3cret")


def test_put_read_ranges_meta_tombstone(client: TestClient, device: Device,
                                        tmp_path: Path) -> None:
    rdev = remote(client)
    assert rdev.available()
    session_writer = rdev.writer(3, H)
    session_writer.write(b"hello ")
    session_writer.write(b"object")
    session_writer.commit(TS, {"etag": hashlib.md5(b"hello object").hexdigest(), "size": 12})
    local = device.read(3, H)
    assert local is not None and local.kind == "data"
    assert local.data_path is not None and local.data_path.read_bytes() == b"hello object"
    f = rdev.read(3, H)
    assert f is not None and f.timestamp == TS and f.metadata["size"] == 12
    fh = f.open()
    fh.seek(6)
    assert fh.read(3) == b"obj" and fh.read(100) == b"ect"
    fh.close()
    assert rdev.partitions() == [3]
    assert rdev.hashes(3) == device.hashes(3)
    assert rdev.partition_digest(3) == device.partition_digest(3)
    assert rdev.write_meta(3, H, "1700000001.00000", {"user": {"a": "b"}})
    posted = device.read(3, H)
    assert posted is not None and posted.metadata["user"] == {"a": "b"}
    rdev.tombstone(3, H, "1700000002.00000", {"name": "/a/c/o"})
    gone = device.read(3, H)
    assert gone is not None and gone.kind == "tombstone"
    assert not rdev.write_meta(3, H, "1700000003.00000", {})
    assert rdev.read(3, "f" * 32) is None


def test_secret_bad_input_and_unmounted(client: TestClient, device: Device) -> None:
    url = f"/dev/7/objects/1/{H}"
    assert client.get("/dev/7").status_code == 401
    assert client.get("/dev/7", headers={SECRET_HEADER: "nope"}).status_code == 401
    ok = {SECRET_HEADER: "s3cret"}
    assert client.get("/dev/8", headers=ok).status_code == 404
    assert client.get("/dev/7/objects/1/not-a-hash", headers=ok).status_code == 400
    bad = client.put(url, headers={**ok, FILES_HEADER: json.dumps([["../x", 1]])},
                     content=b"x")
    assert bad.status_code == 400 and "names" in bad.text
    short = client.put(url, headers={**ok, FILES_HEADER: json.dumps([[f"{TS}.data", 10]])},
                       content=b"abc")
    assert short.status_code == 400 and "early" in short.text
    assert device.read(1, H) is None and not list(device.tmp.iterdir())
    assert client.post(url + "?ts=yesterday", headers=ok, json={}).status_code == 400
    (device.path / ".stratus-object-device").unlink()
    assert client.get("/dev/7", headers=ok).status_code == 507
    assert not remote(client).available()


def test_ring_device_syntax() -> None:
    local = parse_device("h1:2:/srv/d1", 0)
    assert (local.host, local.port, local.zone, local.path) == ("h1", 0, 2, "/srv/d1")
    served = parse_device("10.0.0.5:6200:3:/srv/d1:2.5", 4)
    assert (served.host, served.port, served.zone, served.weight) == ("10.0.0.5", 6200, 3, 2.5)
    with pytest.raises(ValueError, match="port"):
        parse_device("h:0:1:/srv", 0)
    with pytest.raises(ValueError, match="expected"):
        parse_device("h:1:relative", 0)
