"""Bad input gets a clear Keystone-style error with the right code, never a 500."""

from __future__ import annotations

import time

import pytest

from identity_api import PASSWORD, Api
from stratus.identity.core import Identity
from stratus.identity.tokens import TokenPayload

pytestmark = pytest.mark.unit


def error(resp, status: int) -> str:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == status and body["title"] and body["message"]
    return str(body["message"])


@pytest.mark.parametrize("raw,expected", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[]", "'auth'"),
    (b'{"auth": {}}', "methods"),
    (b'{"auth": {"identity": {"methods": ["kerberos"]}}}', "Unsupported auth methods"),
    (b'{"auth": {"identity": {"methods": ["password"], "password": {}}}}', "password"),
    (b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "a"}}}}}',
     "user.password"),
    (b'{"auth": {"identity": {"methods": ["token"], "token": {}}}}', "token"),
])
def test_malformed_auth_requests_are_400(api: Api, raw: bytes, expected: str) -> None:
    resp = api.client.post("/v3/auth/tokens", content=raw)
    assert expected in error(resp, 400)


def test_wrong_password_unknown_user_and_unknown_domain_look_the_same(api: Api) -> None:
    api.create("user", name="hal", password="right")
    messages = {
        error(api.issue("hal", "wrong"), 401),
        error(api.issue("nobody", "right"), 401),
        error(api.issue("hal", "right", domain="no-such-domain"), 401),
        error(api.issue("hal", "right", project="no-such-project"), 401),
        error(api.issue("hal", "right", project="admin"), 401),  # no role there
    }
    assert messages == {"The request you have made requires authentication."}


def test_garbage_expired_and_missing_tokens_are_401(api: Api, identity: Identity) -> None:
    for tok in ("garbage", "gAAAAAB" + "x" * 100, "x" * 3000):
        error(api.call("GET", "/v3/projects", tok), 401)
    assert api.client.get("/v3/projects").status_code == 401
    admin = api.call("GET", "/v3/users", params={"name": "admin"}).json()["users"][0]
    expired = identity.sealer.seal(TokenPayload(
        user_id=admin["id"], methods=["password"], expires_at=time.time() - 1,
        issued_at=time.time() - 10, audit_ids=["expired1"]))
    error(api.call("GET", "/v3/projects", expired), 401)
    msg = error(api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": expired}), 404)
    assert "expired" in msg


def test_missing_and_wrongly_typed_fields(api: Api) -> None:
    assert "'name' is a required" in error(api.call("POST", "/v3/users", json={"user": {}}), 400)
    assert "'user' object" in error(api.call("POST", "/v3/users", json={"name": "x"}), 400)
    assert "true or false" in error(api.call("POST", "/v3/projects", json={
        "project": {"name": "p", "enabled": "yes"}}), 400)
    assert "string" in error(api.call("POST", "/v3/projects", json={"project": {"name": 5}}),
                             400)
    assert "longer than 64" in error(api.call("POST", "/v3/projects", json={
        "project": {"name": "p" * 65}}), 400)
    assert "empty" in error(api.call("POST", "/v3/projects", json={"project": {"name": "  "}}),
                            400)
    assert "tags" in error(api.call("POST", "/v3/projects", json={
        "project": {"name": "p", "tags": "a"}}), 400)
    assert "interface" in error(api.call("POST", "/v3/endpoints", json={"endpoint": {
        "service_id": "x", "interface": "private", "url": "http://a"}}), 400)
    assert "http(s) URL" in error(api.call("POST", "/v3/endpoints", json={"endpoint": {
        "service_id": "x", "interface": "public", "url": "ftp://a"}}), 400)


def test_unknown_references_leave_nothing_behind(api: Api) -> None:
    # A user in a missing domain is a 404, as Keystone answers (Tempest checks it).
    msg = error(api.call("POST", "/v3/users", json={"user": {"name": "u1",
                                                             "domain_id": "nowhere"}}), 404)
    assert "nowhere" in msg and "domain" in msg
    error(api.call("POST", "/v3/users", json={"user": {"name": "u1",
                                                       "default_project_id": "nope"}}), 400)
    assert api.call("GET", "/v3/users", params={"name": "u1"}).json()["users"] == []
    error(api.call("POST", "/v3/projects", json={"project": {"name": "p",
                                                             "parent_id": "nope"}}), 400)
    error(api.call("POST", "/v3/endpoints", json={"endpoint": {
        "service_id": "nope", "interface": "public", "url": "http://a"}}), 400)


def test_duplicates_are_409(api: Api) -> None:
    api.create("user", name="ivy")
    assert "ivy" in error(api.call("POST", "/v3/users", json={"user": {"name": "ivy"}}), 409)
    api.create("project", name="dup")
    error(api.call("POST", "/v3/projects", json={"project": {"name": "dup"}}), 409)
    error(api.call("POST", "/v3/roles", json={"role": {"name": "member"}}), 409)
    error(api.call("POST", "/v3/domains", json={"domain": {"name": "Default"}}), 409)
    other = api.create("user", name="ivy2")
    error(api.call("PATCH", f"/v3/users/{other['id']}", json={"user": {"name": "ivy"}}), 409)
    # The same name in another domain is fine.
    dom = api.create("domain", name="elsewhere")
    api.create("user", name="ivy", domain_id=dom["id"])


def test_not_found_and_wrong_method(api: Api) -> None:
    assert "Could not find user: nope" in error(api.call("GET", "/v3/users/nope"), 404)
    error(api.call("GET", "/v3/no-such-thing"), 404)
    error(api.call("PUT", "/v3/users"), 405)
    error(api.call("DELETE", "/v3/projects/nope/users/nope/roles/nope"), 404)


def test_members_cannot_touch_other_projects_or_admin_apis(api: Api) -> None:
    jack = api.member("jack")
    kim = api.member("kim")
    tok = jack["token"]
    assert api.call("GET", f"/v3/projects/{jack['project']['id']}", tok).status_code == 200
    msg = error(api.call("GET", f"/v3/projects/{kim['project']['id']}", tok), 403)
    assert "identity:get_project" in msg
    error(api.call("PATCH", f"/v3/projects/{kim['project']['id']}", tok,
                   json={"project": {"name": "mine"}}), 403)
    error(api.call("DELETE", f"/v3/projects/{kim['project']['id']}", tok), 403)
    error(api.call("POST", "/v3/users", tok, json={"user": {"name": "sneaky"}}), 403)
    error(api.call("GET", "/v3/users", tok), 403)
    error(api.call("GET", f"/v3/users/{kim['user']['id']}", tok), 403)
    error(api.call("PUT", f"/v3/projects/{kim['project']['id']}/users/{jack['user']['id']}"
                          f"/roles/{api.role_id('admin')}", tok), 403)
    error(api.call("GET", "/v3/role_assignments", tok), 403)
    own = api.call("GET", "/v3/role_assignments", tok, params={"user.id": jack["user"]["id"]})
    assert own.status_code == 200
    assert api.call("GET", f"/v3/users/{jack['user']['id']}", tok).status_code == 200
    error(api.call("POST", f"/v3/users/{kim['user']['id']}/password", tok,
                   json={"user": {"password": "x", "original_password": "wrong"}}), 401)
    # Still the same state afterwards: kim's project untouched.
    assert api.call("GET", f"/v3/projects/{kim['project']['id']}").json()["project"][
        "name"] == "kim"


def test_admin_password_never_appears_in_responses(api: Api) -> None:
    resp = api.issue("admin", PASSWORD, "admin")
    assert PASSWORD not in resp.text
    users = api.call("GET", "/v3/users").text
    assert PASSWORD not in users and "password_hash" not in users and "$argon2" not in users
