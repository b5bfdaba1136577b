"""The identity API's OS-TRUST trusts and trust-scoped tokens in-process (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity_api import Api

pytestmark = pytest.mark.unit
BASE = "/v3/OS-TRUST/trusts"


def trust_token(api: Api, user: str, password: str, trust_id: str) -> Any:
    return api.client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"OS-TRUST:trust": {"id": trust_id}}}})


def make_trust(api: Api, trustor: dict[str, Any], trustee: dict[str, Any],
               **extra: Any) -> Any:
    body = {"trustor_user_id": trustor["user"]["id"], "trustee_user_id": trustee["user"]["id"],
            "project_id": trustor["project"]["id"], "impersonation": False,
            "roles": [{"name": "member"}], **extra}
    return api.call("POST", BASE, trustor["token"], json={"trust": body})


def test_trust_lifecycle_and_trust_scoped_token(api: Api) -> None:
    tor, tee = api.member("trustor"), api.member("trustee")
    expires = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0, tzinfo=None)
    expires_str = expires.isoformat() + ".000000Z"
    resp = make_trust(api, tor, tee, expires_at=expires_str)
    assert resp.status_code == 201, resp.text
    trust = resp.json()["trust"]
    assert trust["trustor_user_id"] == tor["user"]["id"]
    assert trust["trustee_user_id"] == tee["user"]["id"]
    assert trust["project_id"] == tor["project"]["id"]
    assert trust["impersonation"] is False and trust["remaining_uses"] is None
    assert trust["expires_at"] == expires_str
    assert [r["name"] for r in trust["roles"]] == ["member"]
    assert "/v3/OS-TRUST/trusts/" in trust["links"]["self"]
    tid = trust["id"]
    # Trustor, trustee and admin see it; its roles are listed and checked.
    for token in (tor["token"], tee["token"], None):
        assert api.call("GET", f"{BASE}/{tid}", token).status_code == 200
    role_id = trust["roles"][0]["id"]
    roles = api.call("GET", f"{BASE}/{tid}/roles", tee["token"]).json()["roles"]
    assert [r["id"] for r in roles] == [role_id]
    assert api.call("GET", f"{BASE}/{tid}/roles/{role_id}").json()["role"]["name"] == "member"
    assert api.call("HEAD", f"{BASE}/{tid}/roles/{role_id}").status_code == 200
    assert api.call("GET", f"{BASE}/{tid}/roles/{api.role_id('admin')}").status_code == 404
    # Lists: the trustor by trustor_user_id, the trustee by trustee_user_id, admin all.
    mine = api.call("GET", BASE, tor["token"], params={"trustor_user_id": tor["user"]["id"]})
    assert [t["id"] for t in mine.json()["trusts"]] == [tid]
    theirs = api.call("GET", BASE, tee["token"], params={"trustee_user_id": tee["user"]["id"]})
    assert [t["id"] for t in theirs.json()["trusts"]] == [tid]
    assert api.call("GET", BASE, tee["token"]).status_code == 403
    assert tid in [t["id"] for t in api.call("GET", BASE).json()["trusts"]]
    # The trustee gets a token on the trustor's project with the trust's roles.
    got = trust_token(api, "trustee", "pw", tid)
    assert got.status_code == 201, got.text
    tok = got.json()["token"]
    assert tok["user"]["id"] == tee["user"]["id"]
    assert tok["project"]["id"] == tor["project"]["id"]
    assert {r["name"] for r in tok["roles"]} == {"member", "reader"}
    assert tok["OS-TRUST:trust"] == {"id": tid, "impersonation": False,
                                     "trustor_user": {"id": tor["user"]["id"]},
                                     "trustee_user": {"id": tee["user"]["id"]}}
    scoped = got.headers["X-Subject-Token"]
    assert api.call("GET", "/v3/auth/tokens", scoped,
                    headers={"X-Subject-Token": scoped}).status_code == 200
    # A trust token is not rescoped, and cannot make another trust.
    rescope = api.client.post("/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": scoped}}}})
    assert rescope.status_code == 401
    # The trustor is the only one to make (and, with admin, delete) it.
    assert api.call("DELETE", f"{BASE}/{tid}", tee["token"]).status_code == 403
    assert api.call("DELETE", f"{BASE}/{tid}", tor["token"]).status_code == 204
    assert api.call("GET", f"{BASE}/{tid}").status_code == 404
    assert api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": scoped}
                    ).status_code == 404
    assert trust_token(api, "trustee", "pw", tid).status_code == 401


def test_impersonation_uses_and_role_checks(api: Api) -> None:
    tor, tee = api.member("ivy"), api.member("jon")
    resp = make_trust(api, tor, tee, impersonation=True, remaining_uses=1)
    assert resp.status_code == 201, resp.text
    tid = resp.json()["trust"]["id"]
    got = trust_token(api, "jon", "pw", tid)
    assert got.status_code == 201, got.text
    assert got.json()["token"]["user"]["id"] == tor["user"]["id"]  # impersonating
    token = got.headers["X-Subject-Token"]
    assert trust_token(api, "jon", "pw", tid).status_code == 401  # used up
    # Only the trustee may use the trust.
    tor_try = trust_token(api, "ivy", "pw", tid)
    assert tor_try.status_code in (401, 403)
    # The trustor losing the delegated role ends the trust's tokens.
    member = api.role_id("member")
    assert api.call("DELETE", f"/v3/projects/{tor['project']['id']}/users/"
                    f"{tor['user']['id']}/roles/{member}").status_code == 204
    assert api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": token}
                    ).status_code == 404


def test_trust_create_errors(api: Api) -> None:
    tor, tee = api.member("kim"), api.member("lee")
    # Someone else may not create a trust on the trustor's behalf (not even an admin).
    body = {"trustor_user_id": tor["user"]["id"], "trustee_user_id": tee["user"]["id"],
            "project_id": tor["project"]["id"], "impersonation": False,
            "roles": [{"name": "member"}]}
    assert api.call("POST", BASE, json={"trust": body}).status_code == 403
    # A role the trustor does not hold.
    assert make_trust(api, tor, tee, roles=[{"name": "admin"}]).status_code == 403
    assert make_trust(api, tor, tee, roles=[{"name": "nosuch"}]).status_code == 404
    assert make_trust(api, tor, tee, trustee_user_id="nobody").status_code == 404
    assert make_trust(api, tor, tee, expires_at="not-a-time").status_code == 400
    assert make_trust(api, tor, tee, expires_at="2000-01-01T00:00:00Z").status_code == 400
    assert make_trust(api, tor, tee, remaining_uses=0).status_code == 400
    assert make_trust(api, tor, tee, allow_redelegation=True).status_code == 400
    no_imp = {k: v for k, v in body.items() if k != "impersonation"}
    resp = api.call("POST", BASE, tor["token"], json={"trust": no_imp})
    assert resp.status_code == 400 and "impersonation" in resp.text
    # Deleting the trustee deletes the trust.
    tid = make_trust(api, tor, tee).json()["trust"]["id"]
    assert api.call("DELETE", f"/v3/users/{tee['user']['id']}").status_code == 204
    assert api.call("GET", f"{BASE}/{tid}").status_code == 404


@pytest.mark.parametrize("path,body", [
    (BASE, {"trust": {"trustor_user_id": 5, "trustee_user_id": [], "impersonation": "x"}}),
    (BASE, {"trust": "nope"}),
    (BASE, [1, 2]),
    ("/v3/credentials", {"credential": {"user_id": {}, "type": 1, "blob": None}}),
    ("/v3/credentials", {"credential": []}),
    ("/v3/policies", {"policy": {"type": None, "blob": {"a": 1}}}),
    ("/v3/projects/none/tags", {"tags": "x"}),
])
def test_bad_bodies_are_4xx_never_500(api: Api, path: str, body: Any) -> None:
    method = "PUT" if path.endswith("/tags") else "POST"
    resp = api.call(method, path, json=body)
    assert 400 <= resp.status_code < 500, resp.text


def test_bad_trust_fields_are_400(api: Api) -> None:
    tor, tee = api.member("mia"), api.member("ned")
    for extra in ({"roles": "member"}, {"roles": [{"name": 3}]}, {"remaining_uses": "2"},
                  {"remaining_uses": True}, {"impersonation": "yes"}):
        resp = make_trust(api, tor, tee, **extra)
        assert resp.status_code == 400, (extra, resp.text)
    scope = api.client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "ned", "domain": {"id": "default"}, "password": "pw"}}},
        "scope": {"OS-TRUST:trust": "x"}}})
    assert scope.status_code == 400
