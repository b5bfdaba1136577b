"""System scope in the identity API: system grants, system-scoped tokens, the
``scope.system`` filter, revocation when a system grant goes away, and the
policy helper's view of a system-scoped token."""

from __future__ import annotations

from typing import Any

import pytest

from identity_api import PASSWORD, Api
from stratus.common import policy
from stratus.common.auth import AuthContext

pytestmark = pytest.mark.unit

SYSTEM = {"system": {"all": True}}


def system_body(user: str, password: str) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}, "scope": SYSTEM}}


def test_bootstrap_admin_gets_a_system_scoped_token_with_catalog(api: Api) -> None:
    resp = api.client.post("/v3/auth/tokens", json=system_body("admin", PASSWORD))
    assert resp.status_code == 201, resp.text
    tok = resp.json()["token"]
    assert tok["system"] == {"all": True}
    assert "project" not in tok and "domain" not in tok
    assert {r["name"] for r in tok["roles"]} == {"admin", "member", "reader"}
    assert any(s["type"] == "identity" for s in tok["catalog"])
    token = resp.headers["X-Subject-Token"]
    # The system-scoped admin token is an admin token for the identity API.
    assert api.call("GET", "/v3/users", token).status_code == 200
    assert api.call("GET", "/v3/auth/catalog", token).status_code == 200
    listed = api.call("GET", "/v3/role_assignments", params={"scope.system": "all"}).json()
    admin_id = tok["user"]["id"]
    entry = next(a for a in listed["role_assignments"] if a["user"]["id"] == admin_id)
    assert entry["scope"] == SYSTEM
    assert entry["links"]["assignment"].endswith(
        f"/v3/system/users/{admin_id}/roles/{entry['role']['id']}")


def test_system_grant_for_a_user_put_check_list_delete(api: Api) -> None:
    alice = api.member("alice")
    uid, reader = alice["user"]["id"], api.role_id("reader")
    # Without a system grant, no system scope.
    assert api.client.post("/v3/auth/tokens", json=system_body("alice", "pw")).status_code == 401
    base = f"/v3/system/users/{uid}/roles"
    assert api.call("HEAD", f"{base}/{reader}").status_code == 404
    assert api.call("PUT", f"{base}/{reader}").status_code == 204
    assert api.call("PUT", f"{base}/{reader}").status_code == 204  # idempotent
    assert api.call("HEAD", f"{base}/{reader}").status_code in (200, 204)
    assert api.call("GET", f"{base}/{reader}").status_code in (200, 204)
    roles = api.call("GET", base).json()
    assert [r["name"] for r in roles["roles"]] == ["reader"]
    assert roles["links"]["self"].endswith(base)
    # alice may not grant herself more.
    admin_role = api.role_id("admin")
    assert api.call("PUT", f"{base}/{admin_role}", alice["token"]).status_code == 403
    resp = api.client.post("/v3/auth/tokens", json=system_body("alice", "pw"))
    assert resp.status_code == 201, resp.text
    sys_token = resp.headers["X-Subject-Token"]
    assert [r["name"] for r in resp.json()["token"]["roles"]] == ["reader"]
    # The filter sees the grant, and only system grants.
    got = api.call("GET", "/v3/role_assignments",
                   params={"scope.system": "all", "user.id": uid}).json()["role_assignments"]
    assert [(a["role"]["id"], a["scope"]) for a in got] == [(reader, SYSTEM)]
    project_only = api.call("GET", "/v3/role_assignments",
                            params={"scope.project.id": alice["project"]["id"]}).json()
    assert all("project" in a["scope"] for a in project_only["role_assignments"])
    # Removing the grant revokes the system token (a revocation event), and no new one.
    assert api.call("DELETE", f"{base}/{reader}").status_code == 204
    assert api.call("DELETE", f"{base}/{reader}").status_code == 404
    check = api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": sys_token})
    assert check.status_code == 404
    assert api.client.post("/v3/auth/tokens", json=system_body("alice", "pw")).status_code == 401
    # alice's project token is untouched.
    assert api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": alice["token"]}
                    ).status_code == 200


def test_system_grant_through_a_group(api: Api) -> None:
    bob = api.member("bob")
    group = api.create("group", name="operators")
    uid, gid, admin_role = bob["user"]["id"], group["id"], api.role_id("admin")
    assert api.call("PUT", f"/v3/groups/{gid}/users/{uid}").status_code == 204
    assert api.call("PUT", f"/v3/system/groups/{gid}/roles/{admin_role}").status_code == 204
    assert [r["id"] for r in api.call("GET", f"/v3/system/groups/{gid}/roles").json()["roles"]
            ] == [admin_role]
    resp = api.client.post("/v3/auth/tokens", json=system_body("bob", "pw"))
    assert resp.status_code == 201, resp.text
    token = resp.headers["X-Subject-Token"]
    effective = api.call("GET", "/v3/role_assignments", params={
        "effective": "", "scope.system": "all", "user.id": uid}).json()["role_assignments"]
    assert {a["role"]["name"] for a in effective if "name" in a["role"]} <= {
        "admin", "member", "reader"}
    assert {a["role"]["id"] for a in effective} >= {admin_role}
    assert all(a["scope"] == SYSTEM for a in effective)
    # Removing bob from the group revokes his system token.
    assert api.call("DELETE", f"/v3/groups/{gid}/users/{uid}").status_code == 204
    assert api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": token}
                    ).status_code == 404


def test_system_grant_errors(api: Api) -> None:
    reader = api.role_id("reader")
    assert api.call("PUT", f"/v3/system/users/nobody/roles/{reader}").status_code == 404
    carol = api.create("user", name="carol", password="pw")
    assert api.call("PUT", f"/v3/system/users/{carol['id']}/roles/norole").status_code == 404
    bad = api.call("GET", "/v3/role_assignments", params={"scope.system": "some"})
    assert bad.status_code == 400 and "all" in bad.json()["error"]["message"]
    both = api.call("GET", "/v3/role_assignments",
                    params={"scope.system": "all", "scope.domain.id": "default"})
    assert both.status_code == 400
    wrong = system_body("admin", PASSWORD)
    wrong["auth"]["scope"] = {"system": {"all": False}}
    assert api.client.post("/v3/auth/tokens", json=wrong).status_code == 400


def test_deleting_a_system_granted_role_revokes_system_tokens(api: Api) -> None:
    dave = api.create("user", name="dave", password="pw")
    role = api.create("role", name="auditor")
    member = api.role_id("member")
    for rid in (role["id"], member):
        assert api.call("PUT", f"/v3/system/users/{dave['id']}/roles/{rid}").status_code == 204
    resp = api.client.post("/v3/auth/tokens", json=system_body("dave", "pw"))
    token = resp.headers["X-Subject-Token"]
    assert api.call("DELETE", f"/v3/roles/{role['id']}").status_code == 204
    assert api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": token}
                    ).status_code == 404
    again = api.client.post("/v3/auth/tokens", json=system_body("dave", "pw"))
    assert again.status_code == 201
    assert {r["name"] for r in again.json()["token"]["roles"]} == {"member", "reader"}


def ctx(**kw: Any) -> AuthContext:
    return AuthContext(user_id="u", **kw)


def test_policy_system_admin_is_admin_everywhere_and_system_reader_reads() -> None:
    sys_admin = ctx(system=True, roles=frozenset({"admin", "member", "reader"}))
    assert policy.allowed(sys_admin, "admin", "any-project")
    assert policy.allowed(sys_admin, "admin")
    sys_reader = ctx(system=True, roles=frozenset({"reader"}))
    assert policy.allowed(sys_reader, "reader", "any-project")
    assert not policy.allowed(sys_reader, "member", "any-project")
    assert not policy.allowed(sys_reader, "admin")
    # A project reader still reads only its own project.
    proj_reader = ctx(project_id="p1", roles=frozenset({"reader"}))
    assert policy.allowed(proj_reader, "reader", "p1")
    assert not policy.allowed(proj_reader, "reader", "p2")
    with pytest.raises(Exception, match="compute:delete"):
        policy.enforce(sys_reader, "compute:delete", "member", "p1")


def test_auth_context_from_a_system_token_body_is_admin() -> None:
    body = {"token": {"user": {"id": "u1", "name": "admin", "domain": {"id": "default"}},
                      "system": {"all": True}, "roles": [{"id": "r", "name": "admin"}],
                      "expires_at": "2099-01-01T00:00:00.000000Z", "audit_ids": ["a"]}}
    got = AuthContext.from_token_body(body, "tok")
    assert got.system and got.is_admin and got.project_id is None
