"""stratus-dashboard in its own process over the real API services (tests/stack.py),
project members made through the identity API, and a cookie-keeping HTTP client that
fills in the forms' CSRF tokens as a browser would. Every name made here starts with
``zdb``."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from helpers import BIN, IdentityServer, free_port, stop, wait_http
from stack import ComputeStack, compute_stack

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


@dataclass
class DashboardServer:
    """stratus-dashboard as a real process pointed at ``identity``."""

    root: Path
    identity: IdentityServer
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        env = {"STRATUS_CONFIG_FILE": str(self.root / "stratus.conf"),
               "STRATUS_DASHBOARD__IDENTITY_URL": f"{self.identity.url}/v3",
               "STRATUS_DASHBOARD__BIND_HOST": "127.0.0.1",
               "STRATUS_DASHBOARD__BIND_PORT": str(self.port)}
        log = open(self.root / "dashboard.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-dashboard")],
                                     env={**os.environ, **env}, stdout=log,
                                     stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/healthcheck", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> str:
        return (self.root / "dashboard.log").read_text(errors="replace")


@dataclass
class Member:
    name: str
    password: str
    project_id: str
    user_id: str


def make_member(identity: IdentityServer, stem: str = "zdb") -> Member:
    """A new project and a user with the member role on it (as the admin)."""
    admin = {"X-Auth-Token": identity.token()}
    suffix = secrets.token_hex(3)
    base = f"{identity.url}/v3"
    project = httpx.post(f"{base}/projects", headers=admin, json={"project": {
        "name": f"{stem}-p-{suffix}", "domain_id": "default"}}).json()["project"]
    password = secrets.token_urlsafe(12)
    user = httpx.post(f"{base}/users", headers=admin, json={"user": {
        "name": f"{stem}-u-{suffix}", "domain_id": "default", "password": password,
        "default_project_id": project["id"]}}).json()["user"]
    roles = httpx.get(f"{base}/roles", headers=admin, params={"name": "member"}).json()
    role_id = roles["roles"][0]["id"]
    resp = httpx.put(f"{base}/projects/{project['id']}/users/{user['id']}/roles/{role_id}",
                     headers=admin)
    assert resp.status_code in (200, 204), resp.text
    return Member(user["name"], password, project["id"], user["id"])


def make_flavor(compute_url: str, admin_token: str, name: str) -> str:
    resp = httpx.post(f"{compute_url}/v2.1/flavors", headers={"X-Auth-Token": admin_token},
                      json={"flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 1}})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["flavor"]["id"])


class DashClient:
    """A browser without a browser: keeps cookies, posts forms with their CSRF token."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60, follow_redirects=True)
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kw: Any) -> httpx.Response:
        resp = self.http.get(path, **kw)
        found = CSRF_META.search(resp.text) if "html" in resp.headers.get(
            "content-type", "") else None
        if found and found.group(1):
            self.csrf = found.group(1)
        return resp

    def login(self, user: str, password: str, domain: str = "Default") -> httpx.Response:
        page = self.http.get("/auth/login/")
        token = CSRF_INPUT.search(page.text)
        assert token, page.text
        resp = self.http.post("/auth/login/", data={
            "username": user, "password": password, "domain": domain, "region": "RegionOne",
            "csrfmiddlewaretoken": token.group(1)})
        found = CSRF_META.search(resp.text)
        if found:
            self.csrf = found.group(1)
        return resp

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True,
             **kw: Any) -> httpx.Response:
        body = dict(data or {})
        if csrf:
            body["csrfmiddlewaretoken"] = self.csrf
        return self.http.post(path, data=body, **kw)


@contextmanager
def dashboard_stack(root: Path, volume: bool = False
                    ) -> Iterator[tuple[ComputeStack, DashboardServer]]:
    """The API services (with ``volume``: stratus-volume too, in the catalog, without a
    storage host) and the dashboard; everything stopped by pid afterwards; a traceback
    in the dashboard's log fails the caller."""
    with compute_stack(root) as st:
        vol = None
        if volume:
            from volume_api import VolumeServer

            vol = VolumeServer(root / "volume", f"sqlite:///{root}/volume.sqlite",
                               st.identity, image_url=st.image.url)
            vol.prepare()
            vol.start()
        dash = DashboardServer(root / "dashboard", st.identity)
        try:
            dash.start()
            yield st, dash
            assert "Traceback" not in dash.log(), dash.log()[-3000:]
        finally:
            dash.stop()
            if vol is not None:
                vol.stop()
