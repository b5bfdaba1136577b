"""System scope, credentials, policies and trusts on a real stratus-identity
process, on SQLite and on PostgreSQL (migration 0003 applied by ``db sync``):
the system-scoped token Tempest's dynamic credentials rely on, the revocation a
removed system grant writes, how another service's token validator sees a
system-scoped admin, credentials, policies, trusts and trust-scoped tokens.
python-openstackclient drives the same features as an operator would, against
the SQLite server only: its requests do not depend on the engine, and each
client start costs seconds on this machine."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import ADMIN_PASSWORD, BIN, IdentityServer, Postgres
from stratus.common import policy
from stratus.common.auth import RemoteTokenValidator

pytestmark = [pytest.mark.integration]

PREFIX = "tident"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[IdentityServer]:
    root = tmp_path_factory.mktemp(f"{PREFIX}-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root}/identity.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"{PREFIX}_{os.getpid()}_{root.name.replace('-', '_')}")
    srv = IdentityServer(root, url)
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


def clouds(srv: IdentityServer) -> Path:
    """clouds.yaml with a project-scoped admin cloud and a system-scoped one."""
    path = srv.root / "clouds-system.yaml"
    common = (f"      auth_url: {srv.url}/v3\n      username: admin\n"
              f"      password: {ADMIN_PASSWORD}\n      user_domain_name: Default\n")
    path.write_text(
        "clouds:\n"
        "  stratus:\n    auth:\n" + common
        + "      project_name: admin\n      project_domain_name: Default\n"
        "    region_name: RegionOne\n    identity_api_version: 3\n"
        "  stratus-system:\n    auth:\n" + common + "      system_scope: all\n"
        "    region_name: RegionOne\n    identity_api_version: 3\n")
    return path


def osc(srv: IdentityServer, *args: str, cloud: str = "stratus", check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update({"OS_CLIENT_CONFIG_FILE": str(clouds(srv)), "OS_CLOUD": cloud})
    proc = subprocess.run([str(BIN / "openstack"), *args], env=env, capture_output=True,
                          text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
    return proc


def osc_json(srv: IdentityServer, *args: str, cloud: str = "stratus") -> Any:
    return json.loads(osc(srv, *args, "-f", "json", cloud=cloud).stdout)


def admin_api(srv: IdentityServer) -> httpx.Client:
    return httpx.Client(base_url=f"{srv.url}/v3", headers={"X-Auth-Token": srv.token()},
                        timeout=60)


def system_token(srv: IdentityServer, user: str, password: str) -> httpx.Response:
    return httpx.post(f"{srv.url}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"system": {"all": True}}}})


def test_system_scope_grants_tokens_and_revocation(server: IdentityServer) -> None:
    # The bootstrap admin holds admin on the system: a system-scoped admin token.
    resp = system_token(server, "admin", ADMIN_PASSWORD)
    assert resp.status_code == 201, resp.text
    assert resp.json()["token"]["system"] == {"all": True}
    assert {r["name"] for r in resp.json()["token"]["roles"]} == {"admin", "member", "reader"}
    sys_admin = resp.headers["X-Subject-Token"]
    api = httpx.Client(base_url=f"{server.url}/v3", headers={"X-Auth-Token": sys_admin},
                       timeout=60)
    op = api.post("/users", json={"user": {"name": f"{PREFIX}-op", "password": "pw"}})
    assert op.status_code == 201, op.text
    uid = op.json()["user"]["id"]
    reader = api.get("/roles", params={"name": "reader"}).json()["roles"][0]["id"]
    assert api.put(f"/system/users/{uid}/roles/{reader}").status_code == 204
    assert api.head(f"/system/users/{uid}/roles/{reader}").status_code in (200, 204)
    listed = api.get("/role_assignments", params={"scope.system": "all", "user.id": uid})
    assert [(a["role"]["id"], a["scope"]) for a in listed.json()["role_assignments"]] == [
        (reader, {"system": {"all": True}})]
    resp = system_token(server, f"{PREFIX}-op", "pw")
    assert resp.status_code == 201, resp.text
    op_token = resp.headers["X-Subject-Token"]
    # Another service's validator: a system reader reads anywhere and is admin nowhere;
    # the system admin is admin everywhere.
    ctx = RemoteTokenValidator(server.url, cache_seconds=0).validate(op_token)
    assert ctx.system and not ctx.is_admin
    assert policy.allowed(ctx, "reader", "some-project")
    assert not policy.allowed(ctx, "member", "some-project")
    admin_ctx = RemoteTokenValidator(server.url, cache_seconds=0).validate(sys_admin)
    assert admin_ctx.system and admin_ctx.is_admin and policy.allowed(admin_ctx, "admin", "p")
    # Removing the system grant revokes the token at once (a revocation event).
    assert api.delete(f"/system/users/{uid}/roles/{reader}").status_code == 204
    assert api.get("/auth/tokens", headers={"X-Subject-Token": op_token}).status_code == 404
    assert system_token(server, f"{PREFIX}-op", "pw").status_code == 401
    assert api.delete(f"/users/{uid}").status_code == 204
    assert "Traceback" not in server.log()


def test_credentials_and_policies(server: IdentityServer) -> None:
    api = admin_api(server)
    admin_id = api.get("/users", params={"name": "admin"}).json()["users"][0]["id"]
    project = api.get("/projects", params={"name": "admin"}).json()["projects"][0]["id"]
    blob = json.dumps({"access": f"{PREFIX}-ak", "secret": "sk"})
    made = api.post("/credentials", json={"credential": {
        "user_id": admin_id, "project_id": project, "type": "ec2", "blob": blob}})
    assert made.status_code == 201, made.text
    cid = made.json()["credential"]["id"]
    assert [c["id"] for c in api.get("/credentials", params={"type": "ec2"}).json()[
        "credentials"]] == [cid]
    upd = api.patch(f"/credentials/{cid}", json={"credential": {
        "blob": json.dumps({"access": f"{PREFIX}-ak", "secret": "sk2"})}})
    assert upd.status_code == 200 and "sk2" in upd.json()["credential"]["blob"]
    assert api.delete(f"/credentials/{cid}").status_code == 204
    assert api.get("/credentials").json()["credentials"] == []
    pol = api.post("/policies", json={"policy": {"type": "application/json",
                                                 "blob": '{"default": ""}'}})
    assert pol.status_code == 201, pol.text
    pid = pol.json()["policy"]["id"]
    assert [p["id"] for p in api.get("/policies").json()["policies"]] == [pid]
    assert api.delete(f"/policies/{pid}").status_code == 204
    assert api.get(f"/policies/{pid}").status_code == 404


def test_trusts_and_trust_scoped_tokens(server: IdentityServer) -> None:
    api = admin_api(server)
    admin_id = api.get("/users", params={"name": "admin"}).json()["users"][0]["id"]
    project = api.get("/projects", params={"name": "admin"}).json()["projects"][0]["id"]
    trustee = api.post("/users", json={"user": {"name": f"{PREFIX}-trustee", "password": "pw"}})
    assert trustee.status_code == 201, trustee.text
    tee_id = trustee.json()["user"]["id"]
    made = api.post("/OS-TRUST/trusts", json={"trust": {
        "trustor_user_id": admin_id, "trustee_user_id": tee_id, "project_id": project,
        "impersonation": False, "remaining_uses": 2, "roles": [{"name": "member"}]}})
    assert made.status_code == 201, made.text
    trust_id = made.json()["trust"]["id"]
    resp = httpx.post(f"{server.url}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "id": tee_id, "password": "pw"}}},
        "scope": {"OS-TRUST:trust": {"id": trust_id}}}})
    assert resp.status_code == 201, resp.text
    body = resp.json()["token"]
    assert body["OS-TRUST:trust"]["id"] == trust_id and body["user"]["id"] == tee_id
    assert {r["name"] for r in body["roles"]} == {"member", "reader"}
    trust_token = resp.headers["X-Subject-Token"]
    ctx = RemoteTokenValidator(server.url, cache_seconds=0).validate(trust_token)
    assert ctx.trust_id == trust_id and ctx.project_id == project and not ctx.is_admin
    assert api.get(f"/OS-TRUST/trusts/{trust_id}").json()["trust"]["remaining_uses"] == 1
    assert api.delete(f"/OS-TRUST/trusts/{trust_id}").status_code == 204
    assert api.get("/auth/tokens", headers={"X-Subject-Token": trust_token}).status_code == 404
    assert api.delete(f"/users/{tee_id}").status_code == 204
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_openstackclient_system_scope_credentials_and_trusts(server: IdentityServer) -> None:
    tok = osc_json(server, "token", "issue", cloud="stratus-system")
    assert tok["id"] and not tok.get("project_id")
    ctx = RemoteTokenValidator(server.url, cache_seconds=0).validate(tok["id"])
    assert ctx.system and ctx.is_admin
    api = admin_api(server)
    user = api.post("/users", json={"user": {"name": f"{PREFIX}-cli", "password": "pw"}})
    assert user.status_code == 201, user.text
    osc(server, "role", "add", "--system", "all", "--user", f"{PREFIX}-cli", "reader",
        cloud="stratus-system")
    rows = osc_json(server, "role", "assignment", "list", "--system", "all", "--names")
    assert {(r["Role"], r["User"], r["System"]) for r in rows} >= {
        ("admin", "admin@Default", "all"), ("reader", f"{PREFIX}-cli@Default", "all")}
    osc(server, "role", "remove", "--system", "all", "--user", f"{PREFIX}-cli", "reader")
    assert system_token(server, f"{PREFIX}-cli", "pw").status_code == 401
    blob = json.dumps({"access": f"{PREFIX}-cli-ak", "secret": "sk"})
    cred = osc_json(server, "credential", "create", "--type", "ec2", "--project", "admin",
                    f"{PREFIX}-cli", blob)
    assert cred["type"] == "ec2" and json.loads(cred["blob"])["access"] == f"{PREFIX}-cli-ak"
    assert [c["ID"] for c in osc_json(server, "credential", "list")] == [cred["id"]]
    trust = osc_json(server, "trust", "create", "--project", "admin", "--role", "member",
                     "admin", f"{PREFIX}-cli")
    assert trust["project_id"] and trust["is_impersonation"] is False
    assert [t["ID"] for t in osc_json(server, "trust", "list")] == [trust["id"]]
    # Deleting the user takes its credential and the trust with it.
    assert api.delete(f"/users/{user.json()['user']['id']}").status_code == 204
    assert api.get("/credentials").json()["credentials"] == []
    assert api.get(f"/OS-TRUST/trusts/{trust['id']}").status_code == 404
    assert "Traceback" not in server.log()
