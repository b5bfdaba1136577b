"""The identity API in-process: behaviour a Keystone client relies on."""

from __future__ import annotations

import pytest

from identity_api import PASSWORD, Api

pytestmark = pytest.mark.unit


def test_version_discovery(api: Api) -> None:
    root = api.client.get("/")
    assert root.status_code == 300
    assert root.json()["versions"]["values"][0]["id"] == "v3.14"
    v3 = api.client.get("/v3")
    assert v3.json()["version"]["links"][0]["href"] == "http://testserver/v3/"
    assert v3.headers["x-openstack-request-id"].startswith("req-")


def test_request_id_is_echoed_when_well_formed(api: Api) -> None:
    rid = "req-12345678-1234-1234-1234-123456789abc"
    assert api.client.get("/v3", headers={"x-openstack-request-id": rid}).headers[
        "x-openstack-request-id"] == rid
    bad = api.client.get("/v3", headers={"x-openstack-request-id": "req-evil\nx"})
    assert bad.headers["x-openstack-request-id"] != "req-evil\nx"


def test_password_token_carries_scope_roles_and_catalog(api: Api) -> None:
    resp = api.issue("admin", PASSWORD, "admin")
    tok = resp.json()["token"]
    assert tok["methods"] == ["password"]
    assert tok["project"]["name"] == "admin"
    assert tok["project"]["domain"] == {"id": "default", "name": "Default"}
    assert {r["name"] for r in tok["roles"]} == {"admin", "member", "reader"}
    ident = next(s for s in tok["catalog"] if s["type"] == "identity")
    assert {e["interface"] for e in ident["endpoints"]} == {"public", "internal"}
    assert tok["expires_at"].endswith("Z")


def test_unscoped_domain_scoped_and_rescoped_tokens(api: Api) -> None:
    admin_id = api.call("GET", "/v3/users", params={"name": "admin"}).json()["users"][0]["id"]
    unscoped_body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": admin_id, "password": PASSWORD}}}, "scope": "unscoped"}}
    resp = api.client.post("/v3/auth/tokens", json=unscoped_body)
    assert resp.status_code == 201
    assert "project" not in resp.json()["token"] and "catalog" not in resp.json()["token"]
    unscoped = resp.headers["X-Subject-Token"]
    # An unscoped token cannot read the catalog but can list the user's projects.
    assert api.call("GET", "/v3/auth/catalog", unscoped).status_code == 403
    projects = api.call("GET", "/v3/auth/projects", unscoped).json()["projects"]
    assert [p["name"] for p in projects] == ["admin"]
    # Rescope with the token method; the new token never outlives the old one.
    rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    resp = api.client.post("/v3/auth/tokens", json=rescope)
    assert resp.status_code == 201, resp.text
    tok = resp.json()["token"]
    assert tok["methods"] == ["password", "token"] and tok["project"]["name"] == "admin"
    # Domain scope needs a role on the domain.
    dom_body = {"auth": {"identity": unscoped_body["auth"]["identity"],
                         "scope": {"domain": {"id": "default"}}}}
    assert api.client.post("/v3/auth/tokens", json=dom_body).status_code == 401
    role = api.role_id("admin")
    assert api.call("PUT", f"/v3/domains/default/users/{admin_id}/roles/{role}"
                    ).status_code == 204
    resp = api.client.post("/v3/auth/tokens", json=dom_body)
    assert resp.status_code == 201 and resp.json()["token"]["domain"]["id"] == "default"
    domains = api.call("GET", "/v3/auth/domains", unscoped).json()["domains"]
    assert [d["id"] for d in domains] == ["default"]


def test_validate_check_and_revoke(api: Api) -> None:
    alice = api.member("alice")
    tok = alice["token"]
    got = api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": tok})
    assert got.status_code == 200 and got.json()["token"]["user"]["name"] == "alice"
    assert got.headers["X-Subject-Token"] == tok
    assert api.call("HEAD", "/v3/auth/tokens", headers={"X-Subject-Token": tok}
                    ).status_code == 200
    # Alice may validate her own token but not the admin's.
    assert api.call("GET", "/v3/auth/tokens", tok, headers={"X-Subject-Token": tok}
                    ).status_code == 200
    assert api.call("GET", "/v3/auth/tokens", tok, headers={"X-Subject-Token": api.admin}
                    ).status_code == 403
    assert api.call("DELETE", "/v3/auth/tokens", headers={"X-Subject-Token": tok}
                    ).status_code == 204
    assert api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": tok}
                    ).status_code == 404
    assert api.call("GET", "/v3/auth/catalog", tok).status_code == 401
    # Other tokens of the same user are not affected by revoking one.
    assert api.call("GET", "/v3/auth/catalog", api.token("alice", "pw", "alice")
                    ).status_code == 200


def test_password_change_disable_and_delete_revoke_tokens(api: Api) -> None:
    bob = api.member("bob", password="old-pw")
    uid = bob["user"]["id"]
    resp = api.call("POST", f"/v3/users/{uid}/password", bob["token"],
                    json={"user": {"password": "new-pw", "original_password": "wrong"}})
    assert resp.status_code == 401
    resp = api.call("POST", f"/v3/users/{uid}/password", bob["token"],
                    json={"user": {"password": "new-pw", "original_password": "old-pw"}})
    assert resp.status_code == 204
    assert api.call("GET", "/v3/auth/catalog", bob["token"]).status_code == 401
    assert api.issue("bob", "old-pw", "bob").status_code == 401
    fresh = api.token("bob", "new-pw", "bob")
    assert api.call("PATCH", f"/v3/users/{uid}", json={"user": {"enabled": False}}
                    ).status_code == 200
    assert api.call("GET", "/v3/auth/catalog", fresh).status_code == 401
    assert api.issue("bob", "new-pw", "bob").status_code == 401
    assert api.call("PATCH", f"/v3/users/{uid}", json={"user": {"enabled": True}}
                    ).status_code == 200
    fresh = api.token("bob", "new-pw", "bob")
    assert api.call("DELETE", f"/v3/users/{uid}").status_code == 204
    assert api.call("GET", "/v3/auth/catalog", fresh).status_code == 401


def test_disabling_a_project_revokes_its_tokens_and_blocks_scoping(api: Api) -> None:
    carol = api.member("carol")
    pid = carol["project"]["id"]
    assert api.call("PATCH", f"/v3/projects/{pid}", json={"project": {"enabled": False}}
                    ).status_code == 200
    assert api.call("GET", "/v3/auth/catalog", carol["token"]).status_code == 401
    assert api.issue("carol", "pw", "carol").status_code == 401
    api.call("PATCH", f"/v3/projects/{pid}", json={"project": {"enabled": True}})
    # Re-enabling does not resurrect old tokens, but new ones work.
    assert api.call("GET", "/v3/auth/catalog", carol["token"]).status_code == 401
    assert api.issue("carol", "pw", "carol").status_code == 201


def test_removing_the_last_role_invalidates_scoped_tokens(api: Api) -> None:
    dave = api.member("dave")
    pid, uid = dave["project"]["id"], dave["user"]["id"]
    role = api.role_id("member")
    assert api.call("DELETE", f"/v3/projects/{pid}/users/{uid}/roles/{role}").status_code == 204
    assert api.call("GET", "/v3/auth/catalog", dave["token"]).status_code == 401


def test_implied_roles_and_groups(api: Api) -> None:
    eve_project = api.create("project", name="eve-proj")
    eve = api.create("user", name="eve", password="pw")
    group = api.create("group", name="ops")
    assert api.call("PUT", f"/v3/groups/{group['id']}/users/{eve['id']}").status_code == 204
    assert api.call("HEAD", f"/v3/groups/{group['id']}/users/{eve['id']}").status_code == 204
    member = api.role_id("member")
    assert api.call("PUT", f"/v3/projects/{eve_project['id']}/groups/{group['id']}/roles/"
                    f"{member}").status_code == 204
    tok = api.issue("eve", "pw", "eve-proj").json()["token"]
    assert {r["name"] for r in tok["roles"]} == {"member", "reader"}  # member implies reader
    eff = api.call("GET", "/v3/role_assignments",
                   params={"effective": "", "user.id": eve["id"], "include_names": "1"}).json()
    names = sorted(a["role"]["name"] for a in eff["role_assignments"])
    assert names == ["member", "reader"]
    assert eff["role_assignments"][0]["scope"]["project"]["name"] == "eve-proj"
    # The loop admin -> member -> reader -> admin is refused.
    reader, admin = api.role_id("reader"), api.role_id("admin")
    loop = api.call("PUT", f"/v3/roles/{reader}/implies/{admin}")
    assert loop.status_code == 400 and "loop" in loop.json()["error"]["message"]
    groups = api.call("GET", f"/v3/users/{eve['id']}/groups", tok and None).json()["groups"]
    assert [g["name"] for g in groups] == ["ops"]


def test_role_assignment_filters(api: Api) -> None:
    api.member("fay")
    everything = api.call("GET", "/v3/role_assignments").json()["role_assignments"]
    # admin on the admin project and on the system (bootstrap), fay on her project.
    assert len(everything) == 3
    assert sum("system" in a["scope"] for a in everything) == 1
    fay_id = api.call("GET", "/v3/users", params={"name": "fay"}).json()["users"][0]["id"]
    only = api.call("GET", "/v3/role_assignments", params={"user.id": fay_id}).json()
    assert [a["user"]["id"] for a in only["role_assignments"]] == [fay_id]
    assert "links" in only["role_assignments"][0]
    none = api.call("GET", "/v3/role_assignments", params={"scope.domain.id": "default"})
    assert none.json()["role_assignments"] == []


def test_lists_filter_by_name_enabled_and_domain(api: Api) -> None:
    api.create("project", name="p-on")
    api.create("project", name="p-off", enabled=False)
    names = lambda **q: [p["name"] for p in api.call(  # noqa: E731
        "GET", "/v3/projects", params=q).json()["projects"]]
    assert names(name="p-on") == ["p-on"]
    assert "p-off" not in names(enabled="true")
    assert names(enabled="false") == ["p-off"]
    assert "p-on" in names(domain_id="default")
    bad = api.call("GET", "/v3/projects", params={"enabled": "maybe"})
    assert bad.status_code == 400 and "enabled" in bad.json()["error"]["message"]


def test_extra_attributes_and_tags_round_trip(api: Api) -> None:
    proj = api.create("project", name="tagged", tags=["a", "b"], owner="ops-team")
    assert proj["tags"] == ["a", "b"] and proj["owner"] == "ops-team"
    upd = api.call("PATCH", f"/v3/projects/{proj['id']}",
                   json={"project": {"description": "x", "tags": ["c"]}}).json()["project"]
    assert (upd["description"], upd["tags"], upd["owner"]) == ("x", ["c"], "ops-team")


def test_domains_lifecycle(api: Api) -> None:
    dom = api.create("domain", name="acme")
    proj = api.create("project", name="web", domain_id=dom["id"])
    user = api.create("user", name="ann", domain_id=dom["id"], password="pw")
    member = api.role_id("member")
    api.call("PUT", f"/v3/projects/{proj['id']}/users/{user['id']}/roles/{member}")
    tok = api.token("ann", "pw", "web", domain=dom["id"])
    refused = api.call("DELETE", f"/v3/domains/{dom['id']}")
    assert refused.status_code == 403 and "disable" in refused.json()["error"]["message"]
    api.call("PATCH", f"/v3/domains/{dom['id']}", json={"domain": {"enabled": False}})
    assert api.call("GET", "/v3/auth/catalog", tok).status_code == 401
    assert api.call("DELETE", f"/v3/domains/{dom['id']}").status_code == 204
    assert api.call("GET", f"/v3/projects/{proj['id']}").status_code == 404
    assert api.call("GET", f"/v3/users/{user['id']}").status_code == 404
    assert api.call("DELETE", "/v3/domains/default").status_code == 403


def test_catalog_crud(api: Api) -> None:
    region = api.create("region", id="RegionTwo", description="second")
    svc = api.create("service", type="image", name="glance")
    ep = api.create("endpoint", service_id=svc["id"], interface="public",
                    url="http://img:9292", region_id=region["id"])
    cat = api.call("GET", "/v3/auth/catalog").json()["catalog"]
    image = next(s for s in cat if s["type"] == "image")
    assert image["endpoints"][0]["url"] == "http://img:9292"
    assert api.call("GET", "/v3/endpoints", params={"interface": "public",
                                                    "service_id": svc["id"]}
                    ).json()["endpoints"][0]["id"] == ep["id"]
    assert api.call("PATCH", f"/v3/endpoints/{ep['id']}",
                    json={"endpoint": {"url": "http://img2:9292"}}).json()["endpoint"][
        "url"] == "http://img2:9292"
    assert api.call("DELETE", f"/v3/services/{svc['id']}").status_code == 204
    assert api.call("GET", f"/v3/endpoints/{ep['id']}").status_code == 404
    assert api.call("DELETE", "/v3/regions/RegionTwo").status_code == 204


def test_application_credentials(api: Api) -> None:
    gus = api.member("gus")
    uid = gus["user"]["id"]
    resp = api.call("POST", f"/v3/users/{uid}/application_credentials", gus["token"],
                    json={"application_credential": {"name": "ci",
                                                     "roles": [{"name": "reader"}]}})
    assert resp.status_code == 201, resp.text
    cred = resp.json()["application_credential"]
    assert cred["secret"] and [r["name"] for r in cred["roles"]] == ["reader"]
    body = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred["id"],
                                                             "secret": cred["secret"]}}}}
    tok = api.client.post("/v3/auth/tokens", json=body)
    assert tok.status_code == 201, tok.text
    assert [r["name"] for r in tok.json()["token"]["roles"]] == ["reader"]
    body["auth"]["identity"]["application_credential"]["secret"] = "wrong"
    assert api.client.post("/v3/auth/tokens", json=body).status_code == 401
    listed = api.call("GET", f"/v3/users/{uid}/application_credentials", gus["token"]).json()
    assert "secret" not in listed["application_credentials"][0]
    # Delegating a role one does not hold is refused.
    resp = api.call("POST", f"/v3/users/{uid}/application_credentials", gus["token"],
                    json={"application_credential": {"name": "x", "roles": [{"name": "admin"}]}})
    assert resp.status_code == 403
    assert api.call("DELETE", f"/v3/users/{uid}/application_credentials/{cred['id']}",
                    gus["token"]).status_code == 204


def test_bootstrap_makes_keystones_default_roles_and_a_manager_is_a_member(api: Api) -> None:
    names = {r["name"] for r in api.call("GET", "/v3/roles").json()["roles"]}
    assert {"admin", "manager", "member", "reader", "service"} <= names
    rules = api.call("GET", "/v3/role_inferences").json()["role_inferences"]
    implied = {(r["prior_role"]["name"], i["name"]) for r in rules for i in r["implies"]}
    assert {("manager", "member"), ("member", "reader"), ("admin", "member")} <= implied
    ann_project = api.create("project", name="ann-proj")
    ann = api.create("user", name="ann", password="pw")
    assert api.call("PUT", f"/v3/projects/{ann_project['id']}/users/{ann['id']}/roles/"
                    f"{api.role_id('manager')}").status_code == 204
    tok = api.issue("ann", "pw", "ann-proj").json()["token"]
    assert {r["name"] for r in tok["roles"]} == {"manager", "member", "reader"}
