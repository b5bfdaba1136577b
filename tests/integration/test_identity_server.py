"""stratus-identity as a real process on SQLite and on PostgreSQL.

The same tests run against both engines: python-openstackclient end to end,
concurrent creates, key rotation under a running server, the auth
middleware other services will use, and a database outage (PostgreSQL
stopped under a running server) that must give 503, never 500, and heal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import stratus.identity
from helpers import BIN, IdentityServer, Postgres, password_token
from stratus.common.auth import RemoteTokenValidator
from stratus.common.errors import Unauthorized

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[IdentityServer]:
    root = tmp_path_factory.mktemp(f"identity-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root}/identity.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"identity_{os.getpid()}_{root.name.replace('-', '_')}")
    srv = IdentityServer(root, url)
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


def osc(srv: IdentityServer, *args: str, check: bool = True, **env: str
        ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(srv.clouds_yaml()),
                "OS_CLOUD": "stratus", **env}
    for key in ("OS_AUTH_URL", "OS_TOKEN", "OS_PASSWORD", "OS_USERNAME"):
        if key not in env:
            full_env.pop(key, None)
    proc = subprocess.run([str(BIN / "openstack"), *args], env=full_env, capture_output=True,
                          text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
    return proc


def test_python_openstackclient_end_to_end(server: IdentityServer) -> None:
    tok = json.loads(osc(server, "token", "issue", "-f", "json").stdout)
    assert tok["id"] and tok["project_id"] and tok["user_id"]
    proj = json.loads(osc(server, "project", "create", "osc-proj", "-f", "json").stdout)
    assert proj["name"] == "osc-proj" and proj["domain_id"] == "default"
    user = json.loads(osc(server, "user", "create", "--password", "osc-pw", "--project",
                          "osc-proj", "osc-user", "-f", "json").stdout)
    assert user["name"] == "osc-user" and user["default_project_id"] == proj["id"]
    osc(server, "role", "add", "--project", "osc-proj", "--user", "osc-user", "member")
    rows = json.loads(osc(server, "role", "assignment", "list", "--names", "-f", "json").stdout)
    assert {"Role": "member", "User": "osc-user@Default", "Project": "osc-proj@Default"} in [
        {k: r[k] for k in ("Role", "User", "Project")} for r in rows]
    catalog = json.loads(osc(server, "catalog", "list", "-f", "json").stdout)
    assert [c["Type"] for c in catalog] == ["identity"]
    assert server.url in json.dumps(catalog)
    listed = json.loads(osc(server, "user", "list", "-f", "json").stdout)
    assert {"admin", "osc-user"} <= {u["Name"] for u in listed}
    # The new user gets a token, the admin revokes it, and it stops working.
    utok = json.loads(osc(server, "token", "issue", "-f", "json", "--os-username", "osc-user",
                          "--os-password", "osc-pw", "--os-project-name", "osc-proj").stdout)
    headers = {"X-Auth-Token": utok["id"]}
    assert httpx.get(f"{server.url}/v3/auth/catalog", headers=headers).status_code == 200
    osc(server, "token", "revoke", utok["id"])
    assert httpx.get(f"{server.url}/v3/auth/catalog", headers=headers).status_code == 401
    # A wrong password through the client fails cleanly.
    bad = osc(server, "token", "issue", "--os-password", "wrong", check=False)
    assert bad.returncode != 0 and "401" in bad.stderr
    osc(server, "role", "remove", "--project", "osc-proj", "--user", "osc-user", "member")
    osc(server, "user", "delete", "osc-user")
    osc(server, "project", "delete", "osc-proj")


def test_concurrent_creates_of_one_name_give_one_201_and_409s(server: IdentityServer) -> None:
    admin = server.token()
    for round_no in range(3):
        name = f"race-{round_no}"
        barrier = threading.Barrier(4)
        codes: list[int] = []

        def create(name: str = name, barrier: threading.Barrier = barrier,
                   codes: list[int] = codes) -> None:
            barrier.wait()
            resp = httpx.post(f"{server.url}/v3/users", headers={"X-Auth-Token": admin},
                              json={"user": {"name": name}}, timeout=60)
            codes.append(resp.status_code)

        threads = [threading.Thread(target=create) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [201, 409, 409, 409], codes
        users = httpx.get(f"{server.url}/v3/users", params={"name": name},
                          headers={"X-Auth-Token": admin}).json()["users"]
        assert len(users) == 1
    assert "Traceback" not in server.log()


def test_key_rotation_under_a_running_server(server: IdentityServer) -> None:
    """max_active_keys=3 keeps staged + primary + one secondary, as Keystone does."""
    before = server.token()
    server.manage("fernet-rotate")  # the key that sealed `before` is now the secondary
    time.sleep(2.1)  # the server re-reads the repository at most every 2 s
    after = server.token()
    for tok in (before, after):
        assert httpx.get(f"{server.url}/v3/auth/catalog",
                         headers={"X-Auth-Token": tok}).status_code == 200
    server.manage("fernet-rotate")  # the key of `before` is pruned; `after`'s is secondary
    time.sleep(2.1)
    assert httpx.get(f"{server.url}/v3/auth/catalog",
                     headers={"X-Auth-Token": before}).status_code == 401
    assert httpx.get(f"{server.url}/v3/auth/catalog",
                     headers={"X-Auth-Token": after}).status_code == 200


def test_auth_middleware_validator_against_the_real_server(server: IdentityServer) -> None:
    validator = RemoteTokenValidator(server.url, cache_seconds=30)
    tok = server.token()
    ctx = validator.validate(tok)
    assert ctx.is_admin and ctx.project_name == "admin" and ctx.user_name == "admin"
    with pytest.raises(Unauthorized):
        validator.validate("not-a-token")
    httpx.delete(f"{server.url}/v3/auth/tokens",
                 headers={"X-Auth-Token": tok, "X-Subject-Token": tok})
    assert validator.validate(tok).user_id == ctx.user_id  # cached for cache_seconds
    with pytest.raises(Unauthorized):
        RemoteTokenValidator(server.url, cache_seconds=0).validate(tok)


def test_health_and_request_ids(server: IdentityServer) -> None:
    resp = httpx.get(f"{server.url}/healthcheck")
    assert resp.status_code == 200 and resp.text == "OK"
    resp = httpx.get(f"{server.url}/v3")
    # the access-log line is written after the answer is sent: on a loaded machine the
    # client can read the log first, so look for it for a while
    request_id = resp.headers["x-openstack-request-id"]
    deadline = time.monotonic() + 10
    while request_id not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert request_id in server.log()


@pytest.mark.slow
def test_database_outage_gives_503_then_heals(postgres: Postgres,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """A PostgreSQL of its own, stopped under the running service."""
    pg = Postgres(postgres.root.parent / "outage-cluster")
    pg.init()
    pg.start()
    root = tmp_path_factory.mktemp("identity-outage")
    srv = IdentityServer(root, pg.create_database("identity_outage"))
    try:
        srv.prepare()
        srv.start()
        admin = srv.token()
        pg.stop()
        for method, path, body in (("POST", "/v3/auth/tokens", None),
                                   ("GET", "/v3/projects", None),
                                   ("POST", "/v3/users", {"user": {"name": "x"}})):
            if method == "POST" and path == "/v3/auth/tokens":
                resp = httpx.post(f"{srv.url}{path}", timeout=30, json={"auth": {"identity": {
                    "methods": ["password"], "password": {"user": {
                        "name": "admin", "domain": {"id": "default"}, "password": "x"}}}}})
            else:
                resp = httpx.request(method, f"{srv.url}{path}", json=body, timeout=30,
                                     headers={"X-Auth-Token": admin})
            assert resp.status_code == 503, (path, resp.text)
            assert "database is unavailable" in resp.json()["error"]["message"]
        assert httpx.get(f"{srv.url}/healthcheck", timeout=30).status_code == 503
        pg.start()
        assert httpx.get(f"{srv.url}/v3/projects", headers={"X-Auth-Token": admin},
                         timeout=30).status_code == 200
        assert password_token(srv.url, "admin", "test-admin-secret", "admin")
    finally:
        srv.stop()
        pg.stop()
    assert " 500 " not in srv.log()


def test_stratus_manage_reports_changes_and_errors(server: IdentityServer,
                                                   tmp_path: Path) -> None:
    out = json.loads(server.manage("db", "sync", "identity").stdout)
    # the newest migration (already applied by the fixture, so nothing changes)
    versions = Path(stratus.identity.__file__).parent / "migrations" / "versions"
    head = max(p.name[:4] for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert out == {"changed": False, "revision": head}
    out = json.loads(server.manage("bootstrap", "--public-url", server.url).stdout)
    assert out == {"changed": False}
    out = json.loads(server.manage("catalog", "ensure", "--type", "image", "--name", "glance",
                                   "--public-url", "http://img:9292").stdout)
    assert out == {"changed": True}
    out = json.loads(server.manage("catalog", "ensure", "--type", "image", "--name", "glance",
                                   "--public-url", "http://img:9292").stdout)
    assert out == {"changed": False}
    env = {**server.env, "STRATUS_BOOTSTRAP_PASSWORD": ""}
    proc = subprocess.run([str(BIN / "stratus-manage"), "bootstrap", "--public-url", "http://x"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "STRATUS_BOOTSTRAP_PASSWORD" in proc.stderr


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    """A password login (hundreds of ms of hashing) is in flight when SIGTERM arrives."""
    srv = IdentityServer(tmp_path / "graceful", f"sqlite:///{tmp_path}/graceful.sqlite")
    srv.prepare()
    srv.start()
    assert srv.proc is not None
    results: list[int] = []

    def login() -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "test-admin-secret"}}}}}
        results.append(httpx.post(f"{srv.url}/v3/auth/tokens", json=body, timeout=30
                                  ).status_code)

    try:
        worker = threading.Thread(target=login)
        worker.start()
        time.sleep(0.05)
        srv.proc.terminate()
        worker.join(30)
        assert results == [201]
        # uvicorn drains, then re-raises SIGTERM so the exit status tells how it ended.
        assert srv.proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        srv.stop()
    assert "Finished server process" in srv.log()
