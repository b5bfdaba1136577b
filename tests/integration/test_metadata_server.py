"""The real ``stratus-metadata`` process against a small fake compute API (plus identity),
and the real metadata proxy (``python -m stratus.agent.network.metadata_proxy``) in front of it.

The fake compute serves ``POST /v3/auth/tokens`` (the service user's token) and the
compute API's metadata endpoints, checking the service token on each call. The
proxy listens on 127.0.0.1 (no namespace), so the instance it signs for is
127.0.0.1. ``FakeCompute`` and ``MetadataProcess`` are also used by
benchmarks/metadata_requests.py.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import BIN, free_port, stop, wait_http
from stratus.agent.network.metadata_proxy import sign

pytestmark = pytest.mark.integration

SECRET = "smeta-shared-secret"
SERVICE_USER = "stratus-metadata"
SERVICE_PASSWORD = "smeta-service-password"
TOKEN = "smeta-service-token"
NET = "11111111-2222-4333-8444-555555555555"


def instance_doc(ip: str, n: int = 0) -> dict[str, Any]:
    return {
        "uuid": f"{n:08x}-aaaa-4bbb-8ccc-000000000000", "name": f"smeta{n}",
        "hostname": f"smeta{n}", "project_id": "proj", "availability_zone": "nova",
        "launch_index": 0, "created_at": "2026-01-01T00:00:00Z", "meta": {"n": str(n)},
        "keys": [{"name": "ops", "type": "ssh", "data": "ssh-ed25519 AAAAsmeta ops"}],
        "user_data": base64.b64encode(b"#!/bin/sh\necho smeta\n").decode(),
        "password": None, "flavor_name": "m1.tiny",
        "networks": [{"port_id": f"{n:08x}-port-0000", "network_id": NET,
                      "mac_address": "fa:16:3e:5e:00:01", "mtu": 1450, "ip_address": ip,
                      "floating_ip": None,
                      "subnet": {"id": "sub", "cidr": "127.0.0.0/8", "gateway_ip": "127.0.0.254",
                                 "dns_nameservers": ["127.0.0.53"], "host_routes": [],
                                 "enable_dhcp": True}}],
        "vendor_data": {},
    }


class FakeCompute:
    """Identity's token endpoint and the compute API's metadata endpoints, in a thread."""

    def __init__(self, delay: float = 0.0) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.lookups = 0
        self.tokens_issued = 0
        self.delay = delay
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any, headers: dict[str, str] | None = None
                      ) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def authorized(self) -> bool:
                if self.headers.get("X-Auth-Token") != TOKEN:
                    self.reply(401, {"error": {"code": 401, "message": "bad token"}})
                    return False
                return True

            def do_POST(self) -> None:
                body = self.body()
                if self.path != "/v3/auth/tokens":
                    self.reply(404, {"itemNotFound": {"code": 404, "message": "no"}})
                    return
                user = body["auth"]["identity"]["password"]["user"]
                if user["name"] != SERVICE_USER or user["password"] != SERVICE_PASSWORD:
                    self.reply(401, {"error": {"code": 401, "message": "bad credentials"}})
                    return
                with outer.lock:
                    outer.tokens_issued += 1
                self.reply(201, {"token": {}}, {"X-Subject-Token": TOKEN})

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/v2.1/stratus/metadata":
                    self.reply(404, {"itemNotFound": {"code": 404, "message": "no route"}})
                    return
                if not self.authorized():
                    return
                query = dict(urllib.parse.parse_qsl(url.query))
                with outer.lock:
                    outer.lookups += 1
                    doc = outer.docs.get((query.get("network_id", ""), query.get("fixed_ip", "")))
                if outer.delay:
                    time.sleep(outer.delay)
                if doc is None:
                    self.reply(404, {"itemNotFound": {"code": 404, "message": "no instance"}})
                else:
                    self.reply(200, {"instance": doc})

            def do_PUT(self) -> None:
                body = self.body()
                parts = self.path.strip("/").split("/")
                if parts[:3] != ["v2.1", "stratus", "metadata"] or parts[4:] != ["password"]:
                    self.reply(404, {"itemNotFound": {"code": 404, "message": "no route"}})
                    return
                if not self.authorized():
                    return
                with outer.lock:
                    for doc in outer.docs.values():
                        if doc["uuid"] == parts[3]:
                            if doc["password"]:
                                self.reply(409, {"conflictingRequest": {
                                    "code": 409, "message": "password already set"}})
                                return
                            doc["password"] = body["password"]
                            self.reply(204, None)
                            return
                self.reply(404, {"itemNotFound": {"code": 404, "message": "no server"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MetadataProcess:
    """A real ``stratus-metadata`` process, configured through the environment."""

    def __init__(self, compute_url: str, tmp: Path, secret: str = SECRET,
                 cache_ttl: float = 5, negative_ttl: float = 2, workers: int = 1) -> None:
        self.port = free_port()
        self.log_path = tmp / f"metadata-{self.port}.log"
        # An empty config file (a missing one stops the service): the settings below.
        conf = tmp / f"metadata-{self.port}.conf"
        conf.write_text("")
        self.env = {
            **os.environ,
            "STRATUS_CONFIG_FILE": str(conf),
            "STRATUS_METADATA__BIND_HOST": "127.0.0.1",
            "STRATUS_METADATA__BIND_PORT": str(self.port),
            "STRATUS_METADATA__SHARED_SECRET": secret,
            "STRATUS_METADATA__COMPUTE_URL": f"{compute_url}/v2.1",
            "STRATUS_METADATA__IDENTITY_URL": f"{compute_url}/v3",
            "STRATUS_METADATA__USERNAME": SERVICE_USER,
            "STRATUS_METADATA__PASSWORD": SERVICE_PASSWORD,
            "STRATUS_METADATA__CACHE_TTL": str(cache_ttl),
            "STRATUS_METADATA__NEGATIVE_CACHE_TTL": str(negative_ttl),
            "STRATUS_METADATA__COMPUTE_TIMEOUT": "3",
            "STRATUS_METADATA__WORKERS": str(workers),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([str(BIN / "stratus-metadata")], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{self.url}/healthcheck", timeout=60, proc=self.proc)
        except BaseException:
            self.stop()  # never leave a half-started process behind
            raise

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def signed(ip: str, net: str = NET, secret: str = SECRET) -> dict[str, str]:
    return {"X-Forwarded-For": ip, "X-Stratus-Network-ID": net,
            "X-Stratus-Signature": sign(secret, net, ip)}


@pytest.fixture
def compute() -> Iterator[FakeCompute]:
    fake = FakeCompute()
    fake.docs[(NET, "10.0.0.5")] = instance_doc("10.0.0.5", 5)
    fake.docs[(NET, "10.0.0.6")] = instance_doc("10.0.0.6", 6)
    fake.docs[(NET, "127.0.0.1")] = instance_doc("127.0.0.1", 1)
    yield fake
    fake.close()


@pytest.fixture
def metadata(compute: FakeCompute, tmp_path: Path) -> Iterator[MetadataProcess]:
    proc = MetadataProcess(compute.url, tmp_path, cache_ttl=1, negative_ttl=1)
    proc.start()
    yield proc
    proc.stop()


def test_signed_requests_get_their_own_instance(metadata: MetadataProcess,
                                                compute: FakeCompute) -> None:
    with httpx.Client(base_url=metadata.url) as http:
        five = http.get("/openstack/latest/meta_data.json", headers=signed("10.0.0.5"))
        six = http.get("/openstack/latest/meta_data.json", headers=signed("10.0.0.6"))
        assert five.status_code == 200 and six.status_code == 200
        assert five.json()["hostname"] == "smeta5" and six.json()["hostname"] == "smeta6"
        assert five.headers["x-openstack-request-id"].startswith("req-")
        listing = http.get("/latest/meta-data/", headers=signed("10.0.0.5"))
        assert listing.headers["content-type"].startswith("text/plain")
        assert "instance-id" in listing.text.split("\n")
        assert http.get("/latest/meta-data/instance-type",
                        headers=signed("10.0.0.5")).text == "m1.tiny"
        assert http.get("/latest/user-data", headers=signed("10.0.0.5")).content == \
            b"#!/bin/sh\necho smeta\n"
        head = http.head("/openstack/latest/network_data.json", headers=signed("10.0.0.5"))
        assert head.status_code == 200 and head.content == b""
        unknown = http.get("/openstack/latest/meta_data.json", headers=signed("10.0.0.99"))
        assert unknown.status_code == 404
        assert "10.0.0.99" in unknown.json()["itemNotFound"]["message"]
    assert compute.tokens_issued == 1  # the service token is reused
    assert "GET /openstack/latest/meta_data.json" in metadata.log()  # access log


def test_bad_signature_and_missing_headers(metadata: MetadataProcess,
                                          compute: FakeCompute) -> None:
    with httpx.Client(base_url=metadata.url) as http:
        forged = signed("10.0.0.5")
        forged["X-Forwarded-For"] = "10.0.0.6"
        assert http.get("/openstack/latest/meta_data.json", headers=forged).status_code == 403
        wrong = http.get("/latest/meta-data/", headers=signed("10.0.0.5", secret="guess"))
        assert wrong.status_code == 403
        bare = http.get("/openstack/latest/meta_data.json")
        assert bare.status_code == 400
        assert "X-Stratus-Signature" in bare.json()["badRequest"]["message"]
    assert compute.lookups == 0


def test_cache_then_expiry(metadata: MetadataProcess, compute: FakeCompute) -> None:
    with httpx.Client(base_url=metadata.url) as http:
        for path in ("/openstack/latest/meta_data.json", "/openstack/latest/network_data.json",
                     "/latest/meta-data/hostname", "/openstack/latest/user_data"):
            assert http.get(path, headers=signed("10.0.0.5")).status_code == 200
        assert compute.lookups == 1
        compute.docs[(NET, "10.0.0.5")]["hostname"] = "renamed"
        time.sleep(1.3)  # cache_ttl = 1
        assert http.get("/latest/meta-data/hostname", headers=signed("10.0.0.5")).text == \
            "renamed"
        assert compute.lookups == 2


def test_compute_unreachable_is_503(compute: FakeCompute, tmp_path: Path) -> None:
    dead = MetadataProcess(f"http://127.0.0.1:{free_port()}", tmp_path)
    dead.start()
    try:
        resp = httpx.get(f"{dead.url}/openstack/latest/meta_data.json",
                         headers=signed("10.0.0.5"), timeout=30)
        assert resp.status_code == 503
        assert "compute" in resp.json()["serviceUnavailable"]["message"].lower()
        assert "try again" in resp.json()["serviceUnavailable"]["message"]
    finally:
        dead.stop()


def test_password_posted_once(metadata: MetadataProcess, compute: FakeCompute) -> None:
    with httpx.Client(base_url=metadata.url) as http:
        assert http.get("/openstack/latest/password", headers=signed("10.0.0.6")).text == ""
        post = http.post("/openstack/latest/password", headers=signed("10.0.0.6"),
                         content=b"ZW5jcnlwdGVk")
        assert post.status_code == 200, post.text
        assert compute.docs[(NET, "10.0.0.6")]["password"] == "ZW5jcnlwdGVk"
        assert http.get("/openstack/latest/password", headers=signed("10.0.0.6")).text == \
            "ZW5jcnlwdGVk"
        again = http.post("/openstack/latest/password", headers=signed("10.0.0.6"), content=b"x")
        assert again.status_code == 409
        big = http.post("/openstack/latest/password", headers=signed("10.0.0.5"),
                        content=b"x" * 300)
        assert big.status_code == 400
        assert compute.docs[(NET, "10.0.0.5")]["password"] is None


def test_refuses_to_start_without_a_secret(compute: FakeCompute, tmp_path: Path) -> None:
    proc = MetadataProcess(compute.url, tmp_path, secret="")
    result = subprocess.run([str(BIN / "stratus-metadata")], env=proc.env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "shared_secret is empty" in result.stderr


def test_through_the_real_metadata_proxy(metadata: MetadataProcess, compute: FakeCompute,
                                         tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "proxy.json"
    conf.write_text(json.dumps({
        "network_id": NET, "upstream_url": metadata.url, "shared_secret": SECRET,
        "listen_host": "127.0.0.1", "listen_port": port,
        "pid_file": str(tmp_path / "proxy.pid")}))
    conf.chmod(0o600)
    with open(tmp_path / "proxy.log", "wb") as log:
        proxy = subprocess.Popen([sys.executable, "-m", "stratus.agent.network.metadata_proxy",
                                  "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc=proxy)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            md = http.get("/openstack/latest/meta_data.json")
            assert md.status_code == 200, md.text
            assert md.json()["hostname"] == "smeta1"  # 127.0.0.1's instance
            # a guest cannot claim another address: the proxy replaces the headers
            spoof = http.get("/openstack/latest/meta_data.json",
                             headers={"X-Forwarded-For": "10.0.0.5",
                                      "X-Stratus-Signature": "0" * 64})
            assert spoof.json()["hostname"] == "smeta1"
            assert http.get("/latest/meta-data/public-keys/").text == "0=ops"
            versions = http.get("/openstack").text.split("\n")
            assert versions[-1] == "latest"
            assert http.post("/openstack/latest/password", content=b"cHc=").status_code == 200
            assert compute.docs[(NET, "127.0.0.1")]["password"] == "cHc="
    finally:
        stop(proxy)
