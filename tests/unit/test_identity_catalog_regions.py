"""Regions made with a chosen id (PUT) and by the endpoints that name them, as
Keystone does (Tempest's endpoint and region tests rely on both)."""

from __future__ import annotations

import pytest

from identity_api import Api

pytestmark = pytest.mark.unit


def test_put_region_with_its_id(api: Api) -> None:
    resp = api.call("PUT", "/v3/regions/rg-1", json={"region": {"description": "d"}})
    assert resp.status_code == 201, resp.text
    assert resp.json()["region"]["id"] == "rg-1"
    assert resp.json()["region"]["description"] == "d"
    assert api.call("PUT", "/v3/regions/rg-1", json={"region": {}}).status_code == 409
    clash = api.call("PUT", "/v3/regions/rg-2", json={"region": {"id": "other"}})
    assert clash.status_code == 400
    member = api.member("mo")
    assert api.call("PUT", "/v3/regions/rg-3", member["token"],
                    json={"region": {}}).status_code == 403


def test_an_endpoint_naming_a_new_region_makes_it(api: Api) -> None:
    svc = api.create("service", type="thing", name="thing")
    made = api.call("POST", "/v3/endpoints", json={"endpoint": {
        "service_id": svc["id"], "interface": "public", "url": "http://x:1",
        "region": "rg-new"}})
    assert made.status_code == 201, made.text
    assert made.json()["endpoint"]["region_id"] == "rg-new"
    assert api.call("GET", "/v3/regions/rg-new").status_code == 200
    ep_id = made.json()["endpoint"]["id"]
    moved = api.call("PATCH", f"/v3/endpoints/{ep_id}", json={"endpoint": {"region": "rg-b"}})
    assert moved.status_code == 200 and moved.json()["endpoint"]["region_id"] == "rg-b"
    assert api.call("GET", "/v3/regions/rg-b").status_code == 200


def test_project_tags_one_by_one_and_all_at_once(api: Api) -> None:
    proj = api.create("project", name="tagged", tags=["a"])
    base = f"/v3/projects/{proj['id']}/tags"
    assert api.call("PUT", f"{base}/b").status_code == 201
    assert api.call("GET", f"{base}/b").status_code == 204
    assert api.call("HEAD", f"{base}/b").status_code == 204
    assert api.call("GET", base).json()["tags"] == ["a", "b"]
    got = api.call("PUT", base, json={"tags": ["x", "y", "x"]})
    assert got.status_code == 200 and got.json()["tags"] == ["x", "y"]
    assert api.call("DELETE", f"{base}/x").status_code == 204
    assert api.call("GET", f"{base}/x").status_code == 404
    assert api.call("DELETE", f"{base}/x").status_code == 404
    assert api.call("PUT", f"{base}/a,b").status_code == 400
    assert api.call("PUT", base, json={"tags": [f"t{i}" for i in range(81)]}).status_code == 400
    assert api.call("DELETE", base).status_code == 204
    assert api.call("GET", base).json()["tags"] == []
    assert api.call("GET", f"/v3/projects/{proj['id']}").json()["project"]["tags"] == []
    other = api.member("tagless")
    assert api.call("GET", base, other["token"]).status_code == 403
    assert api.call("PUT", f"/v3/projects/{other['project']['id']}/tags/z",
                    other["token"]).status_code == 403


def test_implied_role_check_and_show(api: Api) -> None:
    prior, implied = api.create("role", name="prior-r"), api.create("role", name="implied-r")
    path = f"/v3/roles/{prior['id']}/implies/{implied['id']}"
    assert api.call("HEAD", path).status_code == 404
    assert api.call("PUT", path).status_code == 201
    assert api.call("HEAD", path).status_code == 204
    shown = api.call("GET", path).json()["role_inference"]
    assert shown["prior_role"]["id"] == prior["id"]
    assert shown["implies"]["id"] == implied["id"]


def test_user_in_a_missing_domain_is_404(api: Api) -> None:
    resp = api.call("POST", "/v3/users", json={"user": {"name": "x", "domain_id": "nope"}})
    assert resp.status_code == 404


def test_domain_roles_imply_but_are_not_effective(api: Api) -> None:
    dom_role = api.create("role", name="dom-r", domain_id="default")
    member = api.role_id("member")
    # A global role may not imply a domain role; the other way is fine.
    assert api.call("PUT", f"/v3/roles/{member}/implies/{dom_role['id']}").status_code == 403
    assert api.call("PUT", f"/v3/roles/{dom_role['id']}/implies/{member}").status_code == 201
    pat = api.create("user", name="pat", password="pw")
    proj = api.create("project", name="pat-p")
    assert api.call("PUT", f"/v3/projects/{proj['id']}/users/{pat['id']}/roles/"
                    f"{dom_role['id']}").status_code == 204
    eff = api.call("GET", "/v3/role_assignments", params={
        "effective": "", "user.id": pat["id"]}).json()["role_assignments"]
    assert dom_role["id"] not in {a["role"]["id"] for a in eff}
    assert member in {a["role"]["id"] for a in eff}
    tok = api.issue("pat", "pw", "pat-p").json()["token"]
    assert {r["name"] for r in tok["roles"]} == {"member", "reader"}
