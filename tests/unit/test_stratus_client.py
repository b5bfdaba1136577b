"""The modules' HTTP client (plugins/module_utils/stratus_client.py) against a small local server.

The server plays identity (tokens with a catalog pointing back at itself) and
a service that records what it receives, so the tests see real HTTP: token
renewal after a 401, endpoint choice, error messages of every OpenStack
shape, and file uploads with a Content-Length and chunked.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.unit]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "stratus").mkdir(parents=True)
    (root / "ansible_collections" / "stratus" / "cloud").symlink_to(REPO)
    sys.path.insert(0, str(root))
    yield importlib.import_module(
        "ansible_collections.stratus.cloud.plugins.module_utils.stratus_client")
    sys.path.remove(str(root))


class Recorder:
    def __init__(self) -> None:
        self.tokens_issued = 0
        self.reject_next = False
        self.requests: list[dict[str, Any]] = []
        self.error: tuple[int, Any] | None = None


def make_handler(rec: Recorder, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding") == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/v3/auth/tokens":
                rec.tokens_issued += 1
                rec.requests.append({"auth": json.loads(body)})
                catalog = [{"type": "image", "endpoints": [
                    {"interface": "public", "region_id": "RegionOne", "url": base[0]},
                    {"interface": "internal", "region_id": "RegionOne", "url": base[0] + "/int"},
                    {"interface": "public", "region_id": "Other", "url": base[0] + "/other"},
                ]}]
                token = {"token": {"catalog": catalog, "project": {"id": "p1"},
                                   "user": {"id": "u1"}}}
                self._send(201, token, {"X-Subject-Token": f"tok{rec.tokens_issued}"})
                return
            self._record(body)

        def do_PUT(self) -> None:
            self._record(self._body())

        def do_GET(self) -> None:
            self._record(b"")

        def _record(self, body: bytes) -> None:
            rec.requests.append({"method": self.command, "path": self.path, "body": body,
                                 "headers": dict(self.headers)})
            if rec.reject_next:
                rec.reject_next = False
                self._send(401, {"error": {"message": "expired"}})
            elif rec.error is not None:
                self._send(*rec.error)
            else:
                self._send(200, {"ok": True, "token": self.headers.get("X-Auth-Token")})

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()
    base: list[str] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rec, base))
    base.append(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base[0], rec
    httpd.shutdown()
    httpd.server_close()


def clouds_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "clouds:\n  stratus:\n    auth:\n"
        f"      auth_url: {url}\n      username: admin\n      password: pw\n"
        "      project_name: admin\n      user_domain_id: default\n"
        "      project_domain_id: default\n    region_name: RegionOne\n    interface: public\n"
    )
    return path


def test_load_cloud_merges_the_file_and_explicit_auth(sc: Any, tmp_path: Path) -> None:
    path = clouds_file(tmp_path, "http://id.example:5000")
    config = sc.load_cloud(clouds_yaml=str(path), auth={"password": "other", "username": None})
    assert config.auth["password"] == "other" and config.auth["username"] == "admin"
    assert config.auth_url == "http://id.example:5000/v3" and config.region_name == "RegionOne"
    explicit = sc.load_cloud(auth={"auth_url": "http://x:5000/v3", "username": "u",
                                   "password": "p"})
    assert explicit.auth_url == "http://x:5000/v3" and explicit.interface == "public"
    with pytest.raises(sc.StratusError, match=r"Cloud 'nope' is not in .*it has: stratus"):
        sc.load_cloud(cloud="nope", clouds_yaml=str(path))
    with pytest.raises(sc.StratusError, match="Unknown auth keys: colour"):
        sc.load_cloud(clouds_yaml=str(path), auth={"colour": "blue"})
    with pytest.raises(sc.StratusError, match="Cannot read"):
        sc.load_cloud(clouds_yaml=str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("clouds: [1, 2")
    with pytest.raises(sc.StratusError, match="not valid YAML"):
        sc.load_cloud(clouds_yaml=str(bad))


def test_error_messages_of_every_openstack_shape(sc: Any) -> None:
    assert sc.error_message({"code": "400 Bad Request", "message": "glance"}) == "glance"
    assert sc.error_message({"error": {"code": 401, "message": "keystone"}}) == "keystone"
    assert sc.error_message({"itemNotFound": {"code": 404, "message": "nova"}}) == "nova"
    assert sc.error_message({"NeutronError": {"type": "X", "message": "neutron"}}) == "neutron"
    assert sc.error_message("plain text") == "plain text"
    assert sc.error_message(None) is None


def test_token_catalog_endpoints_and_renewal(sc: Any, tmp_path: Path,
                                             server: tuple[str, Recorder]) -> None:
    url, rec = server
    client = sc.StratusClient(sc.load_cloud(clouds_yaml=str(clouds_file(tmp_path, url))))
    assert client.get("image", "/v2/x") == {"ok": True, "token": "tok1"}
    assert rec.requests[0]["auth"]["auth"]["scope"] == {
        "project": {"name": "admin", "domain": {"id": "default"}}}
    assert client.project_id == "p1"
    assert client.endpoint("image") == url
    assert client.endpoint("image", interface="internal") == url + "/int"
    assert client.endpoint("image", region_name="Other") == url + "/other"
    with pytest.raises(sc.StratusError, match="No public endpoint of service type 'compute'"):
        client.endpoint("compute")
    rec.reject_next = True
    assert client.get("image", "/v2/x", query={"a": ["1", "2"]})["token"] == "tok2"
    assert rec.requests[-1]["path"] == "/v2/x?a=1&a=2"
    rec.error = (409, {"code": "409 Conflict", "title": "Conflict", "message": "in use"})
    with pytest.raises(sc.StratusError) as err:
        client.request("PUT", "image", "/v2/y", body={"k": "v"}, content_type="application/x")
    assert err.value.status == 409 and err.value.message == "in use"
    assert str(err.value) == f"PUT {url}/v2/y answered 409: in use"
    assert rec.requests[-1]["headers"]["Content-Type"] == "application/x"


@pytest.mark.parametrize("chunked", [False, True])
def test_file_uploads_stream_the_exact_bytes(sc: Any, tmp_path: Path, chunked: bool,
                                             server: tuple[str, Recorder]) -> None:
    url, rec = server
    data = os.urandom(3 * 1024 * 1024 + 123)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    client = sc.StratusClient(sc.load_cloud(clouds_yaml=str(clouds_file(tmp_path, url))))
    resp = client.upload_file("image", "/v2/images/i/file", str(path), chunked=chunked,
                              expect=(200,))
    assert resp.status == 200
    sent = rec.requests[-1]
    assert sent["method"] == "PUT" and sent["body"] == data
    assert sent["headers"]["Content-Type"] == "application/octet-stream"
    if chunked:
        assert sent["headers"]["Transfer-Encoding"] == "chunked"
    else:
        assert sent["headers"]["Content-Length"] == str(len(data))
        assert sent["headers"]["X-OpenStack-Image-Size"] == str(len(data))


def test_unreachable_identity_is_one_clear_error(sc: Any) -> None:
    client = sc.StratusClient(sc.load_cloud(auth={"auth_url": "http://127.0.0.1:9",
                                                  "username": "u", "password": "p"}))
    with pytest.raises(sc.StratusError, match=r"POST http://127\.0\.0\.1:9/v3/auth/tokens failed"):
        client.authenticate()
