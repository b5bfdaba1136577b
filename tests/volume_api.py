"""The volume API for tests: in-process, or a real ``stratus-volume`` next to a real identity.

In-process (unit tests)::

    with in_process(tmp_path) as api:          # TestClient, fake tokens, fake image API
        vol = api.volume(ALICE, size=1)         # POST /v3/p-alice/volumes
        api.register()                          # a storage host "stor1" (POST /v3/storage/hosts)
        api.report(volumes=[vol["id"]])         # the agent reports the volume ready

Tokens are network_api's fixed strings (ADMIN of "p-admin", ALICE and BOB members of
"p-alice"/"p-bob", READER). ``FakeImages`` plays the image API (``IMAGE`` is an active
1 GiB image).

A real process (integration tests, V-agent's and V-compute's tests)::

    srv = VolumeServer(root, database_url, identity, image_url="http://127.0.0.1:9292")
    srv.prepare()   # stratus-manage db sync volume; catalog: block-storage, volumev3 and
                    # volume at <url>/v3/%(project_id)s
    srv.start()     # stratus-volume on a free port (srv.url), tokens checked by identity
    ...
    srv.stop()

``srv.extra_env`` takes more ``STRATUS_VOLUME__<KEY>`` settings (e.g. a short
``EXPORT_TIMEOUT``). ``VolumeClient(srv.url, token)`` is a small httpx helper speaking
microversion 3.60 with the token's project in the path.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from helpers import BIN, IdentityServer, free_port, stop, wait_http
from network_api import ADMIN, ALICE, BOB, CONTEXTS, READER
from stratus.common import db
from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.db import Database
from stratus.common.errors import Unauthorized
from stratus.volume.app import build_app
from stratus.volume.core import Settings, VolumeCore

__all__ = ["ADMIN", "ALICE", "BOB", "IMAGE", "READER", "FakeImages", "VolumeApi",
           "VolumeClient", "VolumeServer", "in_process", "make_core"]
IMAGE = "11111111-1111-4111-8111-111111111111"
HOST = "stor1"
LATEST = {"OpenStack-API-Version": "volume 3.60"}


def fake_validate(token: str) -> AuthContext:
    ctx = CONTEXTS.get(token)
    if ctx is None:
        raise Unauthorized("The request you have made requires authentication.")
    return dataclasses.replace(ctx, token=token)


class FakeImages:
    """The image API in memory."""

    def __init__(self) -> None:
        self.images: dict[str, dict[str, Any]] = {IMAGE: {
            "id": IMAGE, "name": "tiny", "status": "active", "disk_format": "qcow2",
            "container_format": "bare", "size": 1024**3, "min_disk": 0, "min_ram": 0,
            "checksum": "abc", "owner": "p-alice", "visibility": "public"}}

    def get_image(self, token: str, image_id: str) -> dict[str, Any]:
        img = self.images.get(image_id)
        ctx = CONTEXTS[token]
        if img is None or not (img["visibility"] == "public" or ctx.is_admin
                               or img["owner"] == ctx.project_id):
            raise ServiceError("no such image", status=404)
        return dict(img)

    def create_image(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        iid = str(uuid.uuid4())
        self.images[iid] = {**body, "id": iid, "status": "queued", "size": None,
                            "owner": CONTEXTS[token].project_id}
        return dict(self.images[iid])


def project_of(token: str) -> str:
    return str(CONTEXTS[token].project_id)


class VolumeApi:
    """Helpers over a client speaking the volume API (tokens of network_api)."""

    def __init__(self, client: Any, core: VolumeCore | None = None) -> None:
        self.client = client
        self.core = core

    def call(self, method: str, path: str, token: str = ALICE, version: str = "3.60",
             **kw: Any) -> httpx.Response:
        """``path`` relative to ``/v3/<token's project>`` unless it starts with /v3 or is /."""
        if not path.startswith("/v3") and path != "/":
            path = f"/v3/{project_of(token)}{path}"
        headers = {"X-Auth-Token": token, "OpenStack-API-Version": f"volume {version}",
                   **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def ok(self, method: str, path: str, token: str = ALICE, status: int | None = None,
           **kw: Any) -> Any:
        resp = self.call(method, path, token, **kw)
        expected = status or {"POST": 202, "DELETE": 202}.get(method, 200)
        assert resp.status_code == expected, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def volume(self, token: str = ALICE, **attrs: Any) -> dict[str, Any]:
        body = {"size": 1, "name": "vol", **attrs}
        return dict(self.ok("POST", "/volumes", token, json={"volume": body})["volume"])

    def show(self, volume_id: str, token: str = ALICE) -> dict[str, Any]:
        return dict(self.ok("GET", f"/volumes/{volume_id}", token)["volume"])

    def action(self, volume_id: str, body: dict[str, Any], token: str = ALICE,
               version: str = "3.60") -> httpx.Response:
        return self.call("POST", f"/volumes/{volume_id}/action", token, version,
                         json=body)

    def register(self, host: str = HOST, free_gb: int = 100) -> None:
        body = {"host": host, "portal": "192.0.2.10:3260",
                "iqn_prefix": f"iqn.2010-10.org.stratus:st-{host}", "capacity_gb": 100,
                "free_gb": free_gb, "formats": ["raw", "qcow2"]}
        resp = self.call("POST", "/v3/storage/hosts", ADMIN, json=body)
        assert resp.status_code == 200, resp.text

    def state(self, host: str = HOST) -> dict[str, Any]:
        return dict(self.ok("GET", f"/v3/storage/hosts/{host}/state", ADMIN))

    def report(self, host: str = HOST, **inventory: Any) -> dict[str, Any]:
        """Report as the storage agent: ``volumes`` (ids or {id, size_gb, state, fault}),
        ``snapshots`` (ids or dicts), ``exports`` (attachment ids or dicts), ``uploads``."""
        def items(key: str, ident: str) -> list[dict[str, Any]]:
            out = []
            for item in inventory.get(key, []):
                out.append(item if isinstance(item, dict) else {ident: item, "state": "ready"})
            return out

        vols = items("volumes", "id")
        for vol in vols:
            if "size_gb" not in vol and self.core is not None:
                with self.core.db.session() as s:
                    from stratus.volume import models as m
                    row = s.get(m.Volume, vol["id"])
                    vol["size_gb"] = row.size if row is not None else 1
        body = {"volumes": vols, "snapshots": items("snapshots", "id"),
                "exports": items("exports", "attachment_id"),
                "uploads": list(inventory.get("uploads", []))}
        return dict(self.ok("POST", f"/v3/storage/hosts/{host}/report", ADMIN, 200,
                            json=body))

    def converge(self, host: str = HOST) -> dict[str, Any]:
        """Play a perfect storage agent once: report everything the state asks for."""
        st = self.state(host)
        return self.report(
            host, volumes=[{"id": v["id"], "size_gb": v["size_gb"], "state": "ready"}
                           for v in st["volumes"]],
            snapshots=[s["id"] for s in st["snapshots"]],
            exports=[e["attachment_id"] for e in st["exports"]],
            uploads=[{**u, "state": "done"} for u in st["uploads"]])


def make_core(url: str, settings: Settings | None = None,
              images: FakeImages | None = None) -> VolumeCore:
    db.sync("stratus.volume", url)
    return VolumeCore(Database(url, "volume"), settings or Settings(), images or FakeImages())


@contextmanager
def in_process(tmp_path: Path, settings: Settings | None = None, url: str | None = None,
               raise_server_exceptions: bool = True) -> Iterator[VolumeApi]:
    core = make_core(url or f"sqlite:///{tmp_path}/volume.sqlite", settings)
    app = build_app(core, fake_validate, public_url="http://volume.test:8776")
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield VolumeApi(client, core)
    core.db.dispose()


@dataclass
class VolumeServer:
    """stratus-volume in its own process, validating tokens against a real identity."""

    root: Path
    database_url: str
    identity: IdentityServer
    image_url: str = "http://127.0.0.1:9"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "STRATUS_CONFIG_FILE": str(self.root / "stratus.conf"),
            "STRATUS_VOLUME__DATABASE_URL": self.database_url,
            "STRATUS_VOLUME__BIND_HOST": "127.0.0.1",
            "STRATUS_VOLUME__BIND_PORT": str(self.port),
            "STRATUS_VOLUME__IDENTITY_URL": f"{self.identity.url}/v3",
            "STRATUS_VOLUME__IMAGE_URL": self.image_url,
            **self.extra_env,
        })
        return env

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        out = subprocess.run([str(BIN / "stratus-manage"), "db", "sync", "volume"],
                             env=self.env, capture_output=True, text=True, check=True)
        assert '"changed": true' in out.stdout, out.stdout
        for stype, name in (("block-storage", "cinder"), ("volumev3", "cinderv3"),
                            ("volume", "cinderv1")):
            self.identity.manage("catalog", "ensure", "--type", stype, "--name", name,
                                 "--public-url", f"{self.url}/v3/%(project_id)s")

    def start(self) -> None:
        log = open(self.root / "volume.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-volume")], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> str:
        return (self.root / "volume.log").read_text(errors="replace")


class VolumeClient:
    """httpx against a real stratus-volume with a real token (``project`` in the path)."""

    def __init__(self, url: str, token: str, project: str, version: str = "3.60") -> None:
        self.project = project
        self.http = httpx.Client(base_url=url, timeout=60, headers={
            "X-Auth-Token": token, "OpenStack-API-Version": f"volume {version}"})

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        if not path.startswith("/v3") and path != "/":
            path = f"/v3/{self.project}{path}"
        return self.http.request(method, path, **kw)

    def close(self) -> None:
        self.http.close()
