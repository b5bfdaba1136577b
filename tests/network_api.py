"""The network API in-process (starlette TestClient) with a fake token validator.

Tokens are fixed strings: ``ADMIN`` (admin of project "p-admin"), ``ALICE`` and
``BOB`` (members of projects "p-alice" and "p-bob"), ``READER`` (reader of
"p-alice").
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from helpers import BIN, IdentityServer, free_port, stop, wait_http
from stratus.common import db
from stratus.common.auth import AuthContext
from stratus.common.db import Database
from stratus.common.errors import Unauthorized
from stratus.network.app import build_app
from stratus.network.core import NetworkCore, Settings

ADMIN, ALICE, BOB, READER = "tok-admin", "tok-alice", "tok-bob", "tok-reader"
CONTEXTS = {
    ADMIN: AuthContext(user_id="u-admin", project_id="p-admin",
                       roles=frozenset({"admin", "member", "reader"})),
    ALICE: AuthContext(user_id="u-alice", project_id="p-alice",
                       roles=frozenset({"member", "reader"})),
    BOB: AuthContext(user_id="u-bob", project_id="p-bob", roles=frozenset({"member", "reader"})),
    READER: AuthContext(user_id="u-reader", project_id="p-alice", roles=frozenset({"reader"})),
}


def fake_validate(token: str) -> AuthContext:
    ctx = CONTEXTS.get(token)
    if ctx is None:
        raise Unauthorized("The request you have made requires authentication.")
    return ctx


class NetApi:
    """Small helpers over a client that speaks the network API."""

    def __init__(self, client: Any, core: NetworkCore | None = None) -> None:
        self.client = client
        self.core = core

    def call(self, method: str, path: str, token: str = ADMIN, **kw: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token, **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def ok(self, method: str, path: str, token: str = ADMIN, status: int | None = None,
           **kw: Any) -> Any:
        resp = self.call(method, path, token, **kw)
        expected = status or {"POST": 201, "DELETE": 204}.get(method, 200)
        assert resp.status_code == expected, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def network(self, token: str = ADMIN, **attrs: Any) -> dict[str, Any]:
        body = {"name": "net", **attrs}
        return self.ok("POST", "/v2.0/networks", token, json={"network": body})["network"]

    def subnet(self, network_id: str, cidr: str, token: str = ADMIN, **attrs: Any
               ) -> dict[str, Any]:
        body = {"network_id": network_id, "cidr": cidr, "ip_version": 4, **attrs}
        return self.ok("POST", "/v2.0/subnets", token, json={"subnet": body})["subnet"]

    def port(self, network_id: str, token: str = ADMIN, **attrs: Any) -> dict[str, Any]:
        body = {"network_id": network_id, **attrs}
        return self.ok("POST", "/v2.0/ports", token, json={"port": body})["port"]

    def router(self, token: str = ADMIN, **attrs: Any) -> dict[str, Any]:
        body = {"name": "r", **attrs}
        return self.ok("POST", "/v2.0/routers", token, json={"router": body})["router"]


def make_core(url: str, settings: Settings | None = None) -> NetworkCore:
    db.sync("stratus.network", url)
    return NetworkCore(Database(url, "network"), settings or Settings())


@contextmanager
def in_process(tmp_path: Path, settings: Settings | None = None, url: str | None = None,
               raise_server_exceptions: bool = True) -> Iterator[NetApi]:
    core = make_core(url or f"sqlite:///{tmp_path}/network.sqlite", settings)
    app = build_app(core, fake_validate, public_url="http://network.test:9696")
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield NetApi(client, core)
    core.db.dispose()


@dataclass
class NetworkServer:
    """stratus-network in its own process, validating tokens against a real identity."""

    root: Path
    database_url: str
    identity: IdentityServer
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
            "STRATUS_NETWORK__DATABASE_URL": self.database_url,
            "STRATUS_NETWORK__BIND_HOST": "127.0.0.1",
            "STRATUS_NETWORK__BIND_PORT": str(self.port),
            "STRATUS_NETWORK__IDENTITY_URL": f"{self.identity.url}/v3",
            **self.extra_env,
        })
        return env

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        out = subprocess.run([str(BIN / "stratus-manage"), "db", "sync", "network"],
                             env=self.env, capture_output=True, text=True, check=True)
        assert '"changed": true' in out.stdout, out.stdout
        self.identity.manage("catalog", "ensure", "--type", "network", "--name", "neutron",
                             "--public-url", self.url)

    def start(self) -> None:
        log = open(self.root / "network.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-network")], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> str:
        return (self.root / "network.log").read_text(errors="replace")
