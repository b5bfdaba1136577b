"""(Over 500 lines: one three-server cluster is started once and shared by every case here,
and by test_object_rebalance.py's imports.)

Three real stratus-object-server processes, each with its own device under
/tmp/zob-*, behind a real stratus-object proxy and a real stratus-identity (issue 14's
"three storage servers" case). The ring names the devices 127.0.0.1:<port> in zones 1-3
with 3 replicas, so every server holds every object; each server's replicator and auditor
(``stratus-object-replicator --once --jobs ...`` with that server's address) run against
its own device and push to the others over HTTP.

- a PUT while one server is stopped is readable; once it is back its replicator-less
  peers restore its replica;
- a replica deleted from a disk comes back; flipped bytes are quarantined by the auditor
  and replaced; a deleted object does not come back from a server that missed the delete;
- a server killed (SIGKILL at a crash point) in the middle of receiving a PUT leaves no
  object on its disk; with two of three killed the PUT is a 503, nothing is listed and
  the killed servers hold nothing of it;
- a server SIGKILLed (by pid) while it receives a streamed PUT: the PUT succeeds on the
  other two and the killed server holds nothing visible of it; a PUT whose ETag does not
  match its body (422) leaves nothing on any server;
- a request without the shared secret is refused;
- one case with TLS on (the servers serve https; the proxy and replicator verify them).

Processes are stopped by pid; the /tmp/zob-* directory is removed. About 40 s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from helpers import BIN, IdentityServer, free_port, stop, wait_http
from object_api import ObjectServer
from stratus.contracts.object import hash_path
from stratus.object.dbs import Db, db_path
from stratus.object.diskfile import Device, ObjectFile
from stratus.object.ring import ensure, load

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
SECRET = "zob-shared-secret"
# generous: the machine is shared and often loaded (never a timing assertion, only a
# bound on how long a call may take before the test gives up)
HTTP = httpx.Client(timeout=120)
SLOW = "120"  # [object_server] timeout of the proxy and replicators, seconds


@dataclass
class StorageServer:
    """One stratus-object-server with its device ``root/dev``."""

    root: Path
    ring_file: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def device(self) -> Device:
        return Device(0, self.root / "dev")

    @property
    def scheme(self) -> str:
        return "https" if "STRATUS_OBJECT_SERVER__TLS_CERT_FILE" in self.extra_env else "http"

    def env(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUS_")}
        env.update({
            "STRATUS_CONFIG_FILE": str(self.root / "stratus.conf"),
            "STRATUS_OBJECT__RING_FILE": str(self.ring_file),
            "STRATUS_OBJECT__DATABASE_URL": f"sqlite:///{self.root}/unused.sqlite",
            "STRATUS_OBJECT_SERVER__BIND_HOST": "127.0.0.1",
            "STRATUS_OBJECT_SERVER__BIND_PORT": str(self.port),
            "STRATUS_OBJECT_SERVER__SECRET": SECRET,
            "STRATUS_OBJECT_SERVER__TIMEOUT": SLOW,
            **self.extra_env, **more})
        return env

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        Device(0, self.root / "dev").prepare()

    def start(self, crash_at: str = "") -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - closed with the process
        env = self.env(STRATUS_DEBUG__CRASH_AT=crash_at)
        self.proc = subprocess.Popen([str(BIN / "stratus-object-server")], env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.scheme}://127.0.0.1:{self.port}/dev/0", proc=self.proc) \
            if self.scheme == "http" else _wait_https(self)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def consistency(self, jobs: str) -> str:
        """One pass of ``jobs`` (replicator, auditor) on this server's device."""
        out = subprocess.run([str(BIN / "stratus-object-replicator"), "--once", "--jobs", jobs],
                             env=self.env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr, out.stderr
        return out.stderr

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_https(srv: StorageServer) -> None:
    ca = srv.extra_env["STRATUS_OBJECT_SERVER__TLS_CA_FILE"]
    for _ in range(300):
        assert srv.proc is not None and srv.proc.poll() is None, srv.log()
        try:
            httpx.get(f"https://127.0.0.1:{srv.port}/dev/0",
                      verify=ssl.create_default_context(cafile=ca), timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(srv.log())


class Proxy(ObjectServer):
    """stratus-object whose ring names the three servers' devices."""

    extra: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.update({"STRATUS_OBJECT_SERVER__SECRET": SECRET,
                    "STRATUS_OBJECT_SERVER__TIMEOUT": SLOW,
                    "STRATUS_OBJECT__SPOOL_DIR": str(self.root / "spool"), **self.extra})
        return env

    def prepare_ring(self, servers: list[StorageServer]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        self.manage("db", "sync", "object")
        ensure(self.root / "ring.json",
               [f"127.0.0.1:{s.port}:{i + 1}:{s.root / 'dev'}" for i, s in enumerate(servers)],
               4, 3)
        self.identity.manage("catalog", "ensure", "--type", "object-store", "--name", "swift",
                             "--public-url", f"{self.url}/v1/AUTH_%(project_id)s")


@dataclass
class Cluster:
    identity: IdentityServer
    proxy: Proxy
    servers: list[StorageServer]
    token: str = ""
    account: str = ""

    @property
    def h(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}

    def url(self, path: str = "") -> str:
        return f"{self.proxy.url}/v1/{self.account}{path}"

    def where(self, container: str, name: str) -> tuple[int, str]:
        ring = load(self.proxy.root / "ring.json")
        return (ring.partition(self.account, container, name),
                hash_path(ring.salt, self.account, container, name))

    def on_disk(self, srv: StorageServer, container: str, name: str) -> ObjectFile | None:
        return srv.device.read(*self.where(container, name))

    def replicate_all(self) -> None:
        for srv in self.servers:
            srv.consistency("replicator")


def _cluster(root: Path, tls_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    servers: list[StorageServer] = []
    proxy = Proxy(root / "proxy", identity)
    proxy.extra = dict(tls_env or {})
    try:
        ring_file = root / "proxy" / "ring.json"
        for i in range(3):
            srv = StorageServer(root / f"srv{i}", ring_file, dict(tls_env or {}))
            srv.prepare()
            servers.append(srv)
        proxy.prepare_ring(servers)
        for srv in servers:
            srv.start()
        proxy.start()
        token = identity.token()
        body = HTTP.get(f"{identity.url}/v3/auth/tokens",
                         headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()
        yield Cluster(identity, proxy, servers, token,
                      f"AUTH_{body['token']['project']['id']}")
    finally:
        proxy.stop()
        for srv in servers:
            srv.stop()
        identity.stop()
    for srv in servers:
        assert "Traceback" not in srv.log(), srv.log()[-3000:]
    assert "Traceback" not in proxy.log(), proxy.log()[-3000:]


@pytest.fixture(scope="module")
def zob_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="zob-", dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(zob_root: Path) -> Iterator[Cluster]:
    yield from _cluster(zob_root / "plain")


def _put(c: Cluster, container: str, name: str, body: bytes) -> int:
    assert HTTP.put(c.url(f"/{container}"), headers=c.h).status_code in (201, 202)
    return HTTP.put(c.url(f"/{container}/{name}"), headers=c.h, content=body,
                     timeout=60).status_code


def _intact(f: ObjectFile | None, body: bytes) -> bool:
    if f is None or f.kind != "data" or f.data_path is None:
        return False
    data = f.data_path.read_bytes()
    return data == body and f.metadata["etag"] == hashlib.md5(body).hexdigest()


def test_secret_is_required(cluster: Cluster) -> None:
    srv = cluster.servers[0]
    base = f"http://127.0.0.1:{srv.port}/dev/0"
    assert HTTP.get(base).status_code == 401
    assert HTTP.get(base, headers={"X-Object-Secret": "wrong"}).status_code == 401
    assert HTTP.get(base, headers={"X-Object-Secret": SECRET}).status_code == 200


def test_put_while_a_server_is_down_then_replicated(cluster: Cluster) -> None:
    down = cluster.servers[2]
    body = os.urandom(300_000)
    down.stop()
    try:
        assert _put(cluster, "zob-down", "obj", body) == 201
        got = HTTP.get(cluster.url("/zob-down/obj"), headers=cluster.h)
        assert got.status_code == 200 and got.content == body
        assert cluster.on_disk(down, "zob-down", "obj") is None
    finally:
        down.start()
    cluster.replicate_all()
    assert _intact(cluster.on_disk(down, "zob-down", "obj"), body)
    # a ranged read through the proxy (the server answers the range)
    got = HTTP.get(cluster.url("/zob-down/obj"), headers={**cluster.h,
                                                             "Range": "bytes=1000-1999"})
    assert got.status_code == 206 and got.content == body[1000:2000]


def test_deleted_replica_comes_back(cluster: Cluster) -> None:
    body = b"zob replica " * 1000
    assert _put(cluster, "zob-rm", "obj", body) == 201
    victim = cluster.servers[1]
    part, h = cluster.where("zob-rm", "obj")
    shutil.rmtree(victim.device.object_dir(part, h))
    assert cluster.on_disk(victim, "zob-rm", "obj") is None
    cluster.replicate_all()
    assert _intact(cluster.on_disk(victim, "zob-rm", "obj"), body)


def test_flipped_bytes_quarantined_and_replaced(cluster: Cluster) -> None:
    body = b"zob audit " * 5000
    assert _put(cluster, "zob-rot", "obj", body) == 201
    victim = cluster.servers[0]
    f = cluster.on_disk(victim, "zob-rot", "obj")
    assert f is not None and f.data_path is not None
    raw = bytearray(f.data_path.read_bytes())
    raw[100] ^= 0xFF
    f.data_path.write_bytes(bytes(raw))
    out = victim.consistency("auditor")
    assert "quarantined" in out
    assert cluster.on_disk(victim, "zob-rot", "obj") is None
    assert list((victim.root / "dev" / "quarantined" / "objects").iterdir())
    cluster.replicate_all()
    assert _intact(cluster.on_disk(victim, "zob-rot", "obj"), body)
    got = HTTP.get(cluster.url("/zob-rot/obj"), headers=cluster.h)
    assert got.content == body


def test_deleted_object_does_not_come_back(cluster: Cluster) -> None:
    body = b"zob gone"
    assert _put(cluster, "zob-del", "obj", body) == 201
    missed = cluster.servers[2]
    missed.stop()
    try:
        assert HTTP.delete(cluster.url("/zob-del/obj"), headers=cluster.h).status_code == 204
    finally:
        missed.start()
    assert _intact(cluster.on_disk(missed, "zob-del", "obj"), body)  # it missed the delete
    cluster.replicate_all()
    cluster.replicate_all()
    for srv in cluster.servers:
        f = cluster.on_disk(srv, "zob-del", "obj")
        assert f is not None and f.kind == "tombstone"
    assert HTTP.get(cluster.url("/zob-del/obj"), headers=cluster.h).status_code == 404
    listing = HTTP.get(cluster.url("/zob-del"), headers=cluster.h)
    assert "obj" not in listing.text.split()


def test_server_killed_mid_put_leaves_no_partial_object(cluster: Cluster) -> None:
    body = os.urandom(2_000_000)
    one, two = cluster.servers[1], cluster.servers[2]
    # one server killed while receiving: the PUT has its quorum on the other two
    one.stop()
    one.start(crash_at="object.server.put.partial")
    assert _put(cluster, "zob-kill", "a", body) == 201
    assert one.proc is not None and one.proc.wait(30) != 0
    one.proc = None
    one.start()
    assert cluster.on_disk(one, "zob-kill", "a") is None
    got = HTTP.get(cluster.url("/zob-kill/a"), headers=cluster.h, timeout=60)
    assert got.content == body
    # two of three killed: no quorum, a 503 and nothing listed or readable
    for srv in (one, two):
        srv.stop()
        srv.start(crash_at="object.server.put.partial")
    assert _put(cluster, "zob-kill", "b", body) == 503
    for srv in (one, two):
        assert srv.proc is not None and srv.proc.wait(30) != 0
        srv.proc = None
        srv.start()
    # the one replica that was stored is complete: as in Swift, a PUT that missed its
    # quorum may still be read whole (never a part of it), and it is not listed
    got = HTTP.get(cluster.url("/zob-kill/b"), headers=cluster.h, timeout=60)
    assert got.status_code == 404 or got.content == body
    assert HTTP.get(cluster.url("/zob-kill"), headers=cluster.h).text.split() == ["a"]
    for srv in (one, two):  # what they had received stays in their tmp/, never visible
        assert cluster.on_disk(srv, "zob-kill", "b") is None


def _pki(root: Path) -> dict[str, str]:
    """openssl: a CA and a certificate for 127.0.0.1; the settings serving and verifying
    with them, for the object servers (and read by the proxy to choose https)."""
    root.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=zob CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "server.key", "-out", "server.crt", "-days", "2",
        "-subj", "/CN=localhost", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return {"STRATUS_OBJECT_SERVER__TLS_CERT_FILE": str(root / "server.crt"),
            "STRATUS_OBJECT_SERVER__TLS_KEY_FILE": str(root / "server.key"),
            "STRATUS_OBJECT_SERVER__TLS_CA_FILE": str(root / "ca.crt"),
            "STRATUS_OBJECT__TLS_CA_FILE": str(root / "ca.crt")}


def test_object_servers_over_tls(zob_root: Path) -> None:
    tls = _pki(zob_root / "pki")
    for c in _cluster(zob_root / "tls", tls):
        body = os.urandom(100_000)
        srv = c.servers[0]
        with pytest.raises(httpx.HTTPError):  # no plain http on the server
            HTTP.get(f"http://127.0.0.1:{srv.port}/dev/0", timeout=5)
        ctx = ssl.create_default_context(cafile=tls["STRATUS_OBJECT_SERVER__TLS_CA_FILE"])
        assert httpx.get(f"https://127.0.0.1:{srv.port}/dev/0", verify=ctx,
                         headers={"X-Object-Secret": SECRET}).status_code == 200
        assert _put(c, "zob-tls", "obj", body) == 201
        assert HTTP.get(c.url("/zob-tls/obj"), headers=c.h).content == body
        part, h = c.where("zob-tls", "obj")
        shutil.rmtree(c.servers[2].device.object_dir(part, h))
        c.servers[0].consistency("replicator")
        assert _intact(c.on_disk(c.servers[2], "zob-tls", "obj"), body)


def _tmp(srv: StorageServer) -> set[Path]:
    return set(srv.device.tmp.glob("*.tmp"))


def _settled(srv: StorageServer, before: set[Path]) -> bool:
    """No temporary file left in the server's tmp/ but those of ``before`` (earlier tests'
    crashes): a cut stream's file is removed when the server sees the body end; poll for
    that, bounded."""
    for _ in range(300):
        if not _tmp(srv) - before:
            return True
        time.sleep(0.1)
    return False


def test_server_sigkilled_during_a_streamed_put(cluster: Cluster) -> None:
    """A real SIGKILL (by pid) while the server is receiving the streamed body: the PUT
    still succeeds on the other two, the killed server holds nothing visible of it."""
    victim = cluster.servers[1]
    assert victim.proc is not None
    assert HTTP.put(cluster.url("/zos-kill"), headers=cluster.h).status_code in (201, 202)
    chunk = os.urandom(1 << 20)
    body = chunk * 6
    before = _tmp(victim)

    def stream() -> Iterator[bytes]:
        for _ in range(3):
            yield chunk
        # the victim has received bytes of this object (its temporary file grows)
        for _ in range(600):
            if any(p.stat().st_size > 0 for p in _tmp(victim) - before):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the object server never received the stream")
        assert victim.proc is not None
        victim.proc.kill()  # SIGKILL, by pid
        victim.proc.wait(30)
        for _ in range(3):
            yield chunk

    resp = HTTP.put(cluster.url("/zos-kill/big"), headers={
        **cluster.h, "Content-Length": str(len(body))}, content=stream())
    victim.proc = None
    assert resp.status_code == 201, resp.text
    assert resp.headers["etag"] == hashlib.md5(body).hexdigest()
    assert cluster.on_disk(victim, "zos-kill", "big") is None
    victim.start()
    got = HTTP.get(cluster.url("/zos-kill/big"), headers=cluster.h)
    assert got.status_code == 200 and got.content == body
    for srv in cluster.servers:
        if srv is not victim:
            assert _intact(cluster.on_disk(srv, "zos-kill", "big"), body)


def test_wrong_etag_leaves_nothing_on_any_server(cluster: Cluster) -> None:
    body = os.urandom(3_000_000)
    assert HTTP.put(cluster.url("/zos-etag"), headers=cluster.h).status_code in (201, 202)
    before = {srv.port: _tmp(srv) for srv in cluster.servers}
    resp = HTTP.put(cluster.url("/zos-etag/obj"), headers={
        **cluster.h, "ETag": hashlib.md5(b"something else").hexdigest()}, content=body)
    assert resp.status_code == 422, resp.text
    assert HTTP.get(cluster.url("/zos-etag/obj"), headers=cluster.h).status_code == 404
    assert "obj" not in HTTP.get(cluster.url("/zos-etag"), headers=cluster.h).text.split()
    for srv in cluster.servers:
        assert cluster.on_disk(srv, "zos-etag", "obj") is None
        assert _settled(srv, before[srv.port]), _tmp(srv) - before[srv.port]


# -- container databases on the servers (issue 14, listings) ---------------------------
def _container_db(c: Cluster, srv: StorageServer, container: str) -> Db:
    ring = load(c.proxy.root / "ring.json")
    part = ring.partition(c.account, container)
    return Db(db_path(srv.root / "dev", "container", part,
                      hash_path(ring.salt, c.account, container)), "container")


def _proxy_pass(c: Cluster, jobs: str) -> None:
    """One pass of the proxy host's consistency jobs (the updater: pending updates)."""
    out = subprocess.run([str(BIN / "stratus-object-replicator"), "--once", "--jobs", jobs],
                         env=c.proxy.env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr


def _names(c: Cluster, container: str) -> list[str]:
    r = HTTP.get(c.url(f"/{container}"), headers=c.h, params={"format": "json"})
    assert r.status_code == 200, r.text
    return [e["name"] for e in r.json()]


def test_listing_with_a_container_replica_down_converges(cluster: Cluster) -> None:
    """Objects PUT while one container database replica is down are listed and counted
    at once (the other replicas); the update waits in the proxy's async_pending and
    reaches the returned server at the updater's next pass. A delete that one server
    missed reaches it by the database replicator, and a listing served by that server
    alone is then right (the deleted row stays a tombstone)."""
    cont = "zol-list"
    assert HTTP.put(cluster.url(f"/{cont}"), headers=cluster.h).status_code == 201
    down = cluster.servers[2]
    down.stop()
    try:
        for name, size in (("a", 10), ("b/1", 20), ("b/2", 30)):
            assert _put(cluster, cont, name, b"z" * size) == 201
        assert _names(cluster, cont) == ["a", "b/1", "b/2"]
        head = HTTP.head(cluster.url(f"/{cont}"), headers=cluster.h)
        assert head.headers["x-container-object-count"] == "3"
        assert head.headers["x-container-bytes-used"] == "60"
        assert _container_db(cluster, down, cont).info()["objects"] == 0
        assert list((cluster.proxy.root / "spool" / "async_pending").glob("*.json"))
        r = HTTP.get(cluster.url(f"/{cont}"), headers=cluster.h,
                     params={"delimiter": "/", "format": "json"})
        assert [e.get("name", e.get("subdir")) for e in r.json()] == ["a", "b/"]
    finally:
        down.start()
    _proxy_pass(cluster, "updater")
    info = _container_db(cluster, down, cont).info()
    assert (info["objects"], info["bytes"]) == (3, 60)
    assert not list((cluster.proxy.root / "spool" / "async_pending").glob("*.json"))
    # a delete the second server misses reaches it through the database replicator
    missed = cluster.servers[1]
    missed.stop()
    try:
        assert HTTP.delete(cluster.url(f"/{cont}/a"), headers=cluster.h).status_code == 204
    finally:
        missed.start()
    assert _container_db(cluster, missed, cont).info()["objects"] == 3
    cluster.replicate_all()
    db = _container_db(cluster, missed, cont)
    assert (db.info()["objects"], db.info()["bytes"]) == (2, 50)
    assert [r["deleted"] for r in db.rows_since(0) if r["name"] == "a"] == [1]
    # the listing and counts with only that server up
    others = [s for s in cluster.servers if s is not missed]
    for srv in others:
        srv.stop()
    try:
        assert _names(cluster, cont) == ["b/1", "b/2"]
        r = HTTP.get(cluster.url(""), headers=cluster.h, params={"format": "json"})
        row = next(e for e in r.json() if e["name"] == cont)
        assert (row["count"], row["bytes"]) == (2, 50)
    finally:
        for srv in others:
            srv.start()
