"""stratus-image as a real process, behind a real stratus-identity.

python-openstackclient drives it end to end with the tiny test guest (on
SQLite and on PostgreSQL); the bad-image corpus made here is refused through
the client and over plain HTTP and never becomes active; a SIGKILL during an
upload leaves no active image and no orphaned data after a restart; and the
service's peak memory stays flat while 256 MiB go through it both ways.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import BIN, IdentityServer, ImageServer, Postgres

pytestmark = [pytest.mark.integration]

IMAGES = Path(__file__).resolve().parents[1] / "images"
MAX_SIZE = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    root = tmp_path_factory.mktemp("image-identity")
    srv = IdentityServer(root, f"sqlite:///{root}/identity.sqlite")
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


def start_image_server(root: Path, identity: IdentityServer, database_url: str = ""
                       ) -> ImageServer:
    srv = ImageServer(root, identity, database_url,
                      extra_env={"STRATUS_IMAGE__MAX_IMAGE_SIZE": str(MAX_SIZE)})
    srv.prepare()
    srv.start()
    return srv


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def image_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    identity: IdentityServer,
) -> Iterator[ImageServer]:
    root = tmp_path_factory.mktemp(f"image-{request.param}")
    url = ""
    if request.param == "postgresql":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"image_{os.getpid()}_{root.name.replace('-', '_')}")
    srv = start_image_server(root, identity, url)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tiny_image() -> Path:
    """The tiny test guest (tests/images/build-tiny.sh, cached by the script)."""
    done = subprocess.run([str(IMAGES / "build-tiny.sh")], capture_output=True, text=True,
                          timeout=1200, check=False)
    assert done.returncode == 0, f"build-tiny.sh failed: {done.stderr[-3000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


def osc(identity: IdentityServer, *args: str, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(identity.clouds_yaml()), OS_CLOUD="stratus")
    proc = subprocess.run([str(BIN / "openstack"), *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    if check:
        assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
    return proc


def osc_json(identity: IdentityServer, *args: str) -> Any:
    return json.loads(osc(identity, *args, "-f", "json").stdout)


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Http:
    """Plain HTTP against the image server with the admin token."""

    def __init__(self, srv: ImageServer) -> None:
        self.url = srv.url
        self.headers = {"X-Auth-Token": srv.identity.token()}

    def create(self, **attrs: Any) -> dict[str, Any]:
        attrs.setdefault("container_format", "bare")
        resp = httpx.post(f"{self.url}/v2/images", json=attrs, headers=self.headers)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def upload(self, image_id: str, content: Any, timeout: float = 120) -> httpx.Response:
        return httpx.put(f"{self.url}/v2/images/{image_id}/file", content=content, timeout=timeout,
                         headers={**self.headers, "Content-Type": "application/octet-stream"})

    def show(self, image_id: str) -> dict[str, Any]:
        resp = httpx.get(f"{self.url}/v2/images/{image_id}", headers=self.headers)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


def store_leftovers(srv: ImageServer) -> tuple[list[str], list[str]]:
    tmp = sorted(p.name for p in (srv.images_dir / "tmp").iterdir())
    blobs = sorted(p.name for p in (srv.images_dir / "blobs").rglob("*") if p.is_file())
    return tmp, blobs


def test_openstack_client_end_to_end(
    image_server: ImageServer, identity: IdentityServer, tiny_image: Path, tmp_path: Path
) -> None:
    created = osc_json(identity, "image", "create", "--file", str(tiny_image), "--disk-format",
                       "qcow2", "--container-format", "bare", "tiny")
    assert created["status"] == "active" and created["name"] == "tiny"
    image_id = created["id"]
    listed = osc_json(identity, "image", "list")
    assert {"ID": image_id, "Name": "tiny", "Status": "active"} in listed
    shown = osc_json(identity, "image", "show", "tiny")
    assert shown["checksum"] == file_md5(tiny_image)
    assert shown["size"] == tiny_image.stat().st_size
    assert shown["disk_format"] == "qcow2" and shown["container_format"] == "bare"
    assert shown["virtual_size"] and shown["virtual_size"] >= shown["size"]

    osc(identity, "image", "set", "--property", "os_distro=busybox", "--property",
        "hw_disk_bus=virtio", "--min-ram", "64", "--tag", "test", "tiny")
    shown = osc_json(identity, "image", "show", "tiny")
    assert shown["properties"]["os_distro"] == "busybox"
    assert shown["properties"]["hw_disk_bus"] == "virtio"
    assert shown["min_ram"] == 64 and shown["tags"] == ["test"]

    saved = tmp_path / "saved.qcow2"
    osc(identity, "image", "save", "--file", str(saved), "tiny")
    assert saved.read_bytes() == tiny_image.read_bytes()
    assert file_md5(saved) == shown["checksum"]

    osc(identity, "image", "delete", "tiny")
    assert osc(identity, "image", "show", image_id, check=False).returncode != 0
    assert all(i["ID"] != image_id for i in osc_json(identity, "image", "list"))
    assert store_leftovers(image_server) == ([], [])


def make_corpus(directory: Path, tiny_image: Path) -> list[tuple[str, Path, str, int, str]]:
    """(name, file, disk_format, expected status, words of the message) per bad image."""
    def qemu_img(*args: str) -> None:
        subprocess.run(["qemu-img", *args], check=True, capture_output=True)

    shadow = directory / "shadow.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", str(shadow), "64M")
    data_file = directory / "datafile.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={directory / 'ext.raw'}",
             str(data_file), "64M")
    truncated = directory / "truncated.qcow2"
    truncated.write_bytes(tiny_image.read_bytes()[: 2 * 1024 * 1024])
    garbage = directory / "garbage.img"
    garbage.write_bytes(os.urandom(3 * 1024 * 1024))
    empty = directory / "empty.img"
    empty.touch()
    oversize = directory / "oversize.raw"
    with open(oversize, "wb") as fh:
        for _ in range(MAX_SIZE // (1 << 20) + 1):
            fh.write(os.urandom(1 << 20))
    return [
        ("bad-shadow", shadow, "qcow2", 400, "backing file"),
        ("bad-datafile", data_file, "qcow2", 400, "external data file"),
        ("bad-declared-raw", tiny_image, "raw", 400, "is a qcow2 image, but disk_format is raw"),
        ("bad-truncated", truncated, "qcow2", 400, "corrupt or truncated"),
        ("bad-garbage", garbage, "qcow2", 400, "not a qcow2 image"),
        ("bad-empty", empty, "raw", 400, "empty (0 bytes)"),
        ("bad-oversize", oversize, "raw", 413, "maximum image size of 33554432 bytes"),
    ]


def test_bad_image_corpus_is_refused_and_never_active(
    identity: IdentityServer, tiny_image: Path, tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    srv = start_image_server(tmp_path_factory.mktemp("image-corpus"), identity)
    try:
        corpus = make_corpus(tmp_path, tiny_image)
        http = Http(srv)
        for name, path, fmt, status, words in corpus:
            # Plain HTTP: the right status and message; the image stays queued.
            img = http.create(name=f"{name}-http", disk_format=fmt)
            with open(path, "rb") as fh:
                resp = http.upload(img["id"], fh)
            assert resp.status_code == status, (name, resp.text)
            body = resp.json()
            assert words in body["message"], (name, body)
            assert body["code"] == f"{status} {body['title']}"
            assert http.show(img["id"])["status"] == "queued", name
            # python-openstackclient: fails with the server's message, keeps nothing.
            proc = osc(identity, "image", "create", "--file", str(path), "--disk-format", fmt,
                       "--container-format", "bare", name, check=False)
            assert proc.returncode != 0, name
            assert words in proc.stderr, (name, proc.stderr)
        images = osc_json(identity, "image", "list", "--long")
        statuses = {i["Name"]: i["Status"] for i in images if i["Name"].startswith("bad-")}
        assert "active" not in statuses.values(), statuses
        assert set(statuses) == {f"{c[0]}-http" for c in corpus}  # the client cleaned up
        assert store_leftovers(srv) == ([], [])
        assert "Traceback" not in srv.log()
        osc(identity, "image", "delete", *[i["ID"] for i in images])
    finally:
        srv.stop()


def test_kill_during_upload_leaves_no_active_image_and_no_data(
    identity: IdentityServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    srv = start_image_server(tmp_path_factory.mktemp("image-crash"), identity)
    try:
        http = Http(srv)
        img = http.create(name="interrupted", disk_format="raw")
        sending = threading.Event()
        stop_sending = threading.Event()

        def slow_body() -> Iterator[bytes]:
            for _ in range(MAX_SIZE // (1 << 20) - 1):
                yield os.urandom(1 << 20)
                sending.set()
                if stop_sending.wait(0.05):
                    return

        result: dict[str, Any] = {}

        def upload() -> None:
            try:
                result["response"] = http.upload(img["id"], slow_body(), timeout=60)
            except httpx.HTTPError as exc:
                result["error"] = exc

        sender = threading.Thread(target=upload)
        sender.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tmp, _blobs = store_leftovers(srv)
            started = http.show(img["id"])["status"] == "saving" and tmp
            if started and (srv.images_dir / "tmp" / tmp[0]).stat().st_size >= 2 << 20:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the upload never reached the store")
        srv.kill()
        stop_sending.set()
        sender.join(60)
        assert "response" not in result, "the killed server answered the upload"
        assert store_leftovers(srv)[0], "the temporary file should outlive the killed process"

        srv.start()
        after = http.show(img["id"])
        assert after["status"] == "queued" and after["size"] is None
        assert store_leftovers(srv) == ([], [])
        assert "recovered after an unclean stop" in srv.log()
        # The same image takes a complete upload afterwards.
        assert http.upload(img["id"], b"\x00" * 65536).status_code == 204
        assert http.show(img["id"])["status"] == "active"
    finally:
        srv.stop()


def serving_pid(parent: int) -> int:
    """The worker that serves the requests: the hand-over parent's child."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise AssertionError(f"process {parent} has no worker")


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_data_streams_through_without_growing_memory(
    identity: IdentityServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    size = 256 * 1024 * 1024
    root = tmp_path_factory.mktemp("image-memory")
    srv = ImageServer(root, identity, extra_env={"STRATUS_IMAGE__MAX_IMAGE_SIZE": str(size)})
    srv.prepare()
    srv.start()
    try:
        http = Http(srv)
        warm = http.create(name="warm-up", disk_format="raw")
        assert http.upload(warm["id"], b"\x01" * (1 << 20)).status_code == 204
        assert srv.proc is not None
        worker = serving_pid(srv.proc.pid)  # the parent only holds the socket
        before = peak_rss_kib(worker)
        chunk = os.urandom(1 << 20)
        digest = hashlib.md5(usedforsecurity=False)

        def body() -> Iterator[bytes]:
            for i in range(size >> 20):
                piece = bytes([i & 0xFF]) + chunk[1:]
                digest.update(piece)
                yield piece

        img = http.create(name="big", disk_format="raw")
        assert http.upload(img["id"], body(), timeout=600).status_code == 204
        assert http.show(img["id"])["checksum"] == digest.hexdigest()
        received = hashlib.md5(usedforsecurity=False)
        with httpx.stream("GET", f"{srv.url}/v2/images/{img['id']}/file", headers=http.headers,
                          timeout=600) as resp:
            assert resp.status_code == 200
            for part in resp.iter_bytes(1 << 20):
                received.update(part)
        assert received.hexdigest() == digest.hexdigest()
        grown_mib = (peak_rss_kib(worker) - before) / 1024
        assert grown_mib < 64, f"the service's peak RSS grew by {grown_mib:.0f} MiB for 256 MiB"
    finally:
        srv.stop()


def test_both_json_patch_media_types_update_an_image(image_server: ImageServer) -> None:
    """2.1 (RFC 6902) and the older 2.0 form Tempest sends both change the image; any
    other media type is a 415 and a 2.1 body sent as 2.0 a 400, and neither changes it."""
    http = Http(image_server)
    img = http.create(name="patch-me", disk_format="raw")
    url = f"{http.url}/v2/images/{img['id']}"

    def patch(media: str, ops: Any) -> httpx.Response:
        return httpx.patch(url, content=json.dumps(ops),
                           headers={**http.headers, "Content-Type": media})

    v20 = "application/openstack-images-v2.0-json-patch"
    v21 = "application/openstack-images-v2.1-json-patch"
    resp = patch(v20, [{"replace": "/name", "value": "by-2.0"}, {"add": "/k1", "value": "v"}])
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "by-2.0" and resp.json()["k1"] == "v"
    resp = patch(v21, [{"op": "replace", "path": "/name", "value": "by-2.1"},
                       {"op": "remove", "path": "/k1"}])
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "by-2.1" and "k1" not in resp.json()
    assert patch(v20, [{"op": "replace", "path": "/name", "value": "x"}]).status_code == 400
    assert patch("application/json", [{"replace": "/name", "value": "x"}]).status_code == 415
    assert http.show(img["id"])["name"] == "by-2.1"
    assert httpx.delete(url, headers=http.headers).status_code == 204


def test_downloads_whole_and_in_ranges_on_one_kept_alive_connection(
    image_server: ImageServer,
) -> None:
    """Over plain http the data goes out with sendfile (the server's zero-copy send):
    whole, in ranges, and again on the same connection."""
    http = Http(image_server)
    data = os.urandom(3 << 20) + b"end of s8h"
    img = http.create(name="ranges", disk_format="raw")
    assert http.upload(img["id"], data).status_code == 204
    url = f"{image_server.url}/v2/images/{img['id']}/file"
    with httpx.Client(headers=http.headers, timeout=60) as client:
        ports = set()
        for wanted, status, expected in (
            (None, 200, data),
            ("bytes=100-199", 206, data[100:200]),
            ("bytes=-10", 206, data[-10:]),
            (f"bytes={len(data) - 3}-", 206, data[-3:]),
            ("bytes=0-0", 206, data[:1]),
            (None, 200, data),
        ):
            with client.stream("GET", url, headers={"Range": wanted} if wanted else {}) as resp:
                body = resp.read()
                ports.add(resp.extensions["network_stream"].get_extra_info("client_addr"))
            assert resp.status_code == status, resp.text
            assert body == expected
            assert resp.headers["content-length"] == str(len(expected))
            if status == 200:
                assert resp.headers["content-md5"] == hashlib.md5(
                    data, usedforsecurity=False).hexdigest()
            else:
                assert resp.headers["content-range"].endswith(f"/{len(data)}")
        assert len(ports) == 1 and None not in ports  # one connection, kept alive
        refused = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{len(data)}"
