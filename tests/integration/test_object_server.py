"""stratus-object as a real process next to a real stratus-identity (its catalog has the
object-store endpoint), with three devices under a temporary directory: the
``openstack container|object`` commands and openstacksdk's object calls, a body cut
short of its Content-Length, and stratus-object-replicator restoring a replica."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import ADMIN_PASSWORD, BIN, IdentityServer
from object_api import ObjectServer
from stratus.object.diskfile import MARKER, Device

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectServer]:
    root = tmp_path_factory.mktemp(f"zob-object-{request.param}")
    url = ""
    if request.param == "postgresql":
        pg = request.getfixturevalue("postgres")
        url = pg.create_database(f"zob_object_{os.getpid()}_{root.name.replace('-', '_')}")
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    srv = ObjectServer(root / "object", identity, database_url=url)
    try:
        srv.prepare()
        srv.start()
        yield srv
    finally:
        srv.stop()
        identity.stop()
    assert "Traceback" not in srv.log(), srv.log()[-3000:]


def osc(identity: IdentityServer, cwd: Path, *args: str) -> Any:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(identity.clouds_yaml()),
           "OS_CLOUD": "stratus"}
    for key in ("OS_AUTH_URL", "OS_TOKEN", "OS_PASSWORD", "OS_USERNAME"):
        env.pop(key, None)
    wants_json = any(a in ("create", "list", "show") for a in args[:2])
    cmd = [str(BIN / "openstack"), *args, *(["-f", "json"] if wants_json else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                          cwd=cwd)
    assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
    return json.loads(proc.stdout) if wants_json and proc.stdout.strip() else proc.stdout


def test_openstack_container_and_object_commands(server: ObjectServer, tmp_path: Path) -> None:
    ident = server.identity
    made = osc(ident, tmp_path, "container", "create", "zob-osc")
    assert made[0]["container"] == "zob-osc"
    assert "zob-osc" in [c["Name"] for c in osc(ident, tmp_path, "container", "list")]
    (tmp_path / "hello.txt").write_bytes(b"hello object store\n")
    made = osc(ident, tmp_path, "object", "create", "zob-osc", "hello.txt")
    assert made[0]["object"] == "hello.txt"
    assert [o["Name"] for o in osc(ident, tmp_path, "object", "list", "zob-osc")] == [
        "hello.txt"]
    shown = osc(ident, tmp_path, "object", "show", "zob-osc", "hello.txt")
    assert shown["content-length"] == "19"
    osc(ident, tmp_path, "object", "save", "--file", "back.txt", "zob-osc", "hello.txt")
    assert (tmp_path / "back.txt").read_bytes() == b"hello object store\n"
    shown = osc(ident, tmp_path, "container", "show", "zob-osc")
    assert shown["object_count"] in ("1", 1)
    osc(ident, tmp_path, "object", "delete", "zob-osc", "hello.txt")
    osc(ident, tmp_path, "container", "delete", "zob-osc")
    assert "zob-osc" not in [c["Name"] for c in osc(ident, tmp_path, "container", "list")]


def test_openstacksdk_object_calls(server: ObjectServer, tmp_path: Path) -> None:
    import openstack

    os.environ["OS_CLIENT_CONFIG_FILE"] = str(server.identity.clouds_yaml())
    try:
        conn = openstack.connect(cloud="stratus")
        conn.object_store.create_container(name="zob-sdk")
        conn.object_store.upload_object(container="zob-sdk", name="a/b", data=b"sdk bytes")
        assert conn.object_store.download_object("a/b", container="zob-sdk") == b"sdk bytes"
        names = [o.name for o in conn.object_store.objects("zob-sdk")]
        assert names == ["a/b"]
        conn.object_store.delete_object("a/b", container="zob-sdk")
        conn.object_store.delete_container("zob-sdk")
        conn.close()
    finally:
        os.environ.pop("OS_CLIENT_CONFIG_FILE", None)


def _token_and_account(server: ObjectServer) -> tuple[str, str]:
    token = server.identity.token()
    body = httpx.get(f"{server.identity.url}/v3/auth/tokens",
                     headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()
    return token, f"AUTH_{body['token']['project']['id']}"


def test_body_shorter_than_its_length_stores_nothing(server: ObjectServer) -> None:
    token, account = _token_and_account(server)
    h = {"X-Auth-Token": token}
    assert httpx.put(f"{server.url}/v1/{account}/zob-cut", headers=h).status_code in (201, 202)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall((f"PUT /v1/{account}/zob-cut/o HTTP/1.1\r\nHost: x\r\n"
                   f"X-Auth-Token: {token}\r\nContent-Length: 100\r\n\r\n").encode()
                  + b"only ten b")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        while s.recv(4096):
            pass
    assert httpx.get(f"{server.url}/v1/{account}/zob-cut/o", headers=h).status_code == 404
    assert httpx.delete(f"{server.url}/v1/{account}/zob-cut", headers=h).status_code == 204


def test_replicator_restores_a_replica_after_a_device_returns(server: ObjectServer) -> None:
    token, account = _token_and_account(server)
    h = {"X-Auth-Token": token}
    url = f"{server.url}/v1/{account}/zob-rep"
    assert httpx.put(url, headers=h).status_code in (201, 202)
    devices = [Device(i, server.root / f"dev{i}") for i in range(3)]
    (devices[0].path / MARKER).unlink()  # an unmounted disk
    try:
        assert httpx.put(f"{url}/o", headers=h, content=b"while down").status_code == 201
        assert httpx.get(f"{url}/o", headers=h).content == b"while down"
    finally:
        (devices[0].path / MARKER).touch()
    server.replicate_once()
    held = [d for d in devices if any((d.path / "objects").rglob("*.data"))]
    assert len(held) == 3
    for f in (devices[1].path / "objects").rglob("*.data"):
        f.unlink()  # a replica lost from disk
    server.replicate_once()
    assert all(any((d.path / "objects").rglob("*.data")) for d in devices)
    assert httpx.delete(f"{url}/o", headers=h).status_code == 204
    server.replicate_once()
    assert httpx.get(f"{url}/o", headers=h).status_code == 404
    assert httpx.delete(url, headers=h).status_code == 204


def test_container_and_object_module_logic(server: ObjectServer, tmp_path: Path,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    """cloud_container and cloud_object's convergence against the real service: check
    mode, the real run, the second run unchanged, a metadata-only change, a delete."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from compute_module_fakes import collections_root, compute_utils

    roots = collections_root(tmp_path_factory)
    next(roots)
    try:
        cl = compute_utils("stratus_client")
        ou = compute_utils("stratus_object")
        client = cl.StratusClient(cl.load_cloud(
            "stratus", clouds_yaml=str(server.identity.clouds_yaml())))
        client.authenticate()
        cont = {"name": "zob-mod", "state": "present", "metadata": {"Owner": "ops"},
                "delete_metadata_keys": None, "read_ACL": None, "write_ACL": None,
                "public": True, "delete_with_all_objects": False}

        def run_c(p: dict[str, Any], check: bool = False) -> dict[str, Any]:
            return dict(ou.ContainerConvergence.connect(client, p, check).run())

        assert run_c(cont, check=True)["changed"] is True
        assert ou.ObjectStoreApi(client).container("zob-mod") is None
        made = run_c(cont)
        assert made["changed"] and made["container"]["read_ACL"] == ".r:*,.rlistings"
        assert run_c(cont)["changed"] is False
        obj = {"container": "zob-mod", "name": "dir/o.txt", "filename": None,
               "data": "text body", "content_type": None, "metadata": {"k": "v"},
               "state": "present"}

        def run_o(p: dict[str, Any], check: bool = False) -> dict[str, Any]:
            return dict(ou.ObjectConvergence.connect(client, p, check).run())

        assert run_o(obj, check=True)["object"] is None
        up = run_o(obj)
        assert up["changed"] and up["object"]["metadata"] == {"k": "v"}
        assert run_o(obj)["changed"] is False
        assert httpx.get(f"{server.url}/v1/AUTH_{client.project_id}/zob-mod/dir/o.txt"
                         ).text == "text body"  # public: no token needed
        meta_only = run_o({**obj, "metadata": {"k": "w"}})
        assert meta_only["changed"] and meta_only["diff"]["after"] == {"metadata.k": "w"}
        (tmp_path / "f").write_text("file body")
        assert run_o({**obj, "data": None, "filename": str(tmp_path / "f")})["changed"]
        gone = run_c({**cont, "state": "absent", "delete_with_all_objects": True})
        assert gone["changed"] and ou.ObjectStoreApi(client).container("zob-mod") is None
    finally:
        next(roots, None)


def test_listing_order_is_byte_order(server: ObjectServer) -> None:
    token, account = _token_and_account(server)
    h = {"X-Auth-Token": token}
    url = f"{server.url}/v1/{account}/zob-order"
    assert httpx.put(url, headers=h).status_code in (201, 202)
    names = ["a", "B", "\u00e9", "Z", "a-b", "a/b"]
    for name in names:
        assert httpx.put(f"{url}/{name}", headers=h, content=b"").status_code == 201
    listed = httpx.get(url, headers=h).text.splitlines()
    assert listed == sorted(names, key=lambda n: n.encode())
    for name in names:
        assert httpx.delete(f"{url}/{name}", headers=h).status_code == 204
    assert httpx.delete(url, headers=h).status_code == 204


def swift(server: ObjectServer, cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
    env.update(OS_AUTH_URL=f"{server.identity.url}/v3", OS_USERNAME="admin",
               OS_PASSWORD=ADMIN_PASSWORD, OS_PROJECT_NAME="admin",
               OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
               OS_IDENTITY_API_VERSION="3", OS_AUTH_VERSION="3")
    proc = subprocess.run([str(BIN / "swift"), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"swift {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.mark.skipif(not (BIN / "swift").exists(), reason="python-swiftclient not installed")
def test_python_swiftclient(server: ObjectServer, tmp_path: Path) -> None:
    (tmp_path / "up").mkdir()
    big = os.urandom(250_000)
    (tmp_path / "up" / "big.bin").write_bytes(big)
    (tmp_path / "up" / "small.txt").write_text("small\n")
    swift(server, tmp_path / "up", "upload", "zob-swift", "small.txt")
    swift(server, tmp_path / "up", "upload", "--segment-size", "100000", "zob-swift",
          "big.bin")
    listed = swift(server, tmp_path, "list", "zob-swift").split()
    assert "big.bin" in listed and "small.txt" in listed
    token, account = _token_and_account(server)
    small_url = f"{server.url}/v1/{account}/zob-swift/small.txt"
    before = httpx.head(small_url, headers={"X-Auth-Token": token}).headers["x-timestamp"]
    swift(server, tmp_path / "up", "upload", "--skip-identical", "zob-swift", "small.txt")
    after = httpx.head(small_url, headers={"X-Auth-Token": token}).headers["x-timestamp"]
    assert after == before  # identical: not uploaded again
    stat = swift(server, tmp_path, "stat", "zob-swift", "big.bin")
    assert "250000" in stat and "X-Static-Large-Object: True" in stat, stat
    (tmp_path / "down").mkdir()
    swift(server, tmp_path / "down", "download", "zob-swift", "big.bin")
    assert (tmp_path / "down" / "big.bin").read_bytes() == big
    swift(server, tmp_path, "upload", "--use-dlo", "--segment-size", "100000",
          "zob-swift", str(tmp_path / "up" / "big.bin"), "--object-name", "dlo.bin")
    assert "Manifest" in swift(server, tmp_path, "stat", "zob-swift", "dlo.bin")
    swift(server, tmp_path / "down", "download", "zob-swift", "dlo.bin")
    assert (tmp_path / "down" / "dlo.bin").read_bytes() == big
    swift(server, tmp_path, "delete", "zob-swift")
    swift(server, tmp_path, "delete", "zob-swift_segments")
    assert "zob-swift" not in swift(server, tmp_path, "list").split()
