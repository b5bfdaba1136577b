"""The object API for tests: in-process (TestClient, fake tokens), or a real
``stratus-object`` next to a real identity.

In-process (unit tests)::

    with in_process(tmp_path) as api:     # 3 devices in 3 zones under tmp_path/devN
        api.client.put("/v1/AUTH_p-alice/c", headers={"X-Auth-Token": ALICE})

Tokens are network_api's fixed strings (ADMIN of "p-admin", ALICE and BOB members of
"p-alice"/"p-bob", READER a reader of "p-alice").

A real process (integration tests)::

    srv = ObjectServer(root, identity)   # devices and ring under root
    srv.prepare()   # db sync object, ring build, catalog: object-store at
                    # <url>/v1/AUTH_%(project_id)s
    srv.start()     # stratus-object on a free port (srv.url)
    ...
    srv.stop()
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from starlette.testclient import TestClient

from helpers import BIN, IdentityServer, free_port, stop, wait_http
from network_api import ADMIN, ALICE, BOB, CONTEXTS, READER
from stratus.common import db
from stratus.common.auth import AuthContext
from stratus.common.db import Database
from stratus.common.errors import Unauthorized
from stratus.object.app import build_app
from stratus.object.core import ObjectService, Settings
from stratus.object.diskfile import Device
from stratus.object.ring import ensure

__all__ = ["ADMIN", "ALICE", "BOB", "READER", "ObjectApi", "ObjectServer", "in_process",
           "make_devices"]


def fake_validate(token: str) -> AuthContext:
    ctx = CONTEXTS.get(token)
    if ctx is None:
        raise Unauthorized("The request you have made requires authentication.")
    return dataclasses.replace(ctx, token=token)


def make_devices(root: Path, count: int = 3, part_power: int = 4) -> Path:
    """``count`` devices (zones 1..count) under ``root`` and their ring; the ring path."""
    specs = []
    for i in range(count):
        dev = Device(i, root / f"dev{i}")
        dev.prepare()
        specs.append(f"host{i}:{i + 1}:{dev.path}")
    ring_file = root / "ring.json"
    ensure(ring_file, specs, part_power, 3)
    return ring_file


@dataclass
class ObjectApi:
    client: TestClient
    core: ObjectService
    root: Path

    def devices(self) -> list[Device]:
        _ring, devices = self.core.store.rings.get()
        return list(devices.values())


@contextmanager
def in_process(root: Path, devices: int = 3) -> Iterator[ObjectApi]:
    url = f"sqlite:///{root}/object.sqlite"
    db.sync("stratus.object", url)
    ring_file = make_devices(root, devices)
    core = ObjectService(Database(url, "object"), Settings(ring_file=str(ring_file)))
    app = build_app(core, fake_validate)
    with TestClient(app) as client:
        yield ObjectApi(client, core, root)
    core.db.dispose()


@dataclass
class ObjectServer:
    """stratus-object in its own process, with its devices, ring and database."""

    root: Path
    identity: IdentityServer
    database_url: str = ""
    devices: int = 3
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "STRATUS_CONFIG_FILE": str(self.root / "stratus.conf"),
            "STRATUS_OBJECT__DATABASE_URL": self.database_url
            or f"sqlite:///{self.root}/object.sqlite",
            "STRATUS_OBJECT__BIND_HOST": "127.0.0.1",
            "STRATUS_OBJECT__BIND_PORT": str(self.port),
            "STRATUS_OBJECT__IDENTITY_URL": f"{self.identity.url}/v3",
            "STRATUS_OBJECT__RING_FILE": str(self.root / "ring.json"),
            "STRATUS_OBJECT__REPLICATOR_INTERVAL": "1",
            "STRATUS_OBJECT__AUDITOR_INTERVAL": "1",
            "STRATUS_OBJECT__EXPIRER_INTERVAL": "1",
        })
        return env

    def manage(self, *args: str) -> str:
        out = subprocess.run([str(BIN / "stratus-manage"), *args], env=self.env,
                             capture_output=True, text=True, check=True)
        return out.stdout

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        self.manage("db", "sync", "object")
        make_devices(self.root, self.devices)
        self.identity.manage("catalog", "ensure", "--type", "object-store", "--name", "swift",
                             "--public-url", f"{self.url}/v1/AUTH_%(project_id)s")

    def start(self) -> None:
        log = open(self.root / "object.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-object")], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/info", proc=self.proc)

    def replicate_once(self) -> str:
        out = subprocess.run([str(BIN / "stratus-object-replicator"), "--once"],
                             env=self.env, capture_output=True, text=True, check=True)
        return out.stderr

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> str:
        return (self.root / "object.log").read_text(errors="replace")
