"""Metadata definitions, schemas and tasks of a real stratus-image behind a real
stratus-identity (on SQLite and on PostgreSQL): what Tempest's metadefs tests do, the
visibility rules seen by a second project's member, and definitions kept across a
restart of the service."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers import IdentityServer, ImageServer, Postgres, password_token

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    root = tmp_path_factory.mktemp("zim-identity")
    srv = IdentityServer(root, f"sqlite:///{root}/identity.sqlite")
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def image_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 identity: IdentityServer) -> Iterator[ImageServer]:
    root = tmp_path_factory.mktemp(f"zim-image-{request.param}")
    url = ""
    if request.param == "postgresql":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"zim_{os.getpid()}_{root.name.replace('-', '_')}")
    srv = ImageServer(root, identity, url)
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


def member_token(identity: IdentityServer) -> str:
    """A member of a new project of its own (made through the identity API)."""
    admin = {"X-Auth-Token": identity.token()}
    suffix = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=f"{identity.url}/v3", headers=admin) as c:
        project = c.post("/projects", json={"project": {"name": f"zim-p-{suffix}"}})
        assert project.status_code == 201, project.text
        user = c.post("/users", json={"user": {"name": f"zim-u-{suffix}",
                                               "password": "zim-secret"}})
        assert user.status_code == 201, user.text
        roles = c.get("/roles", params={"name": "member"}).json()["roles"]
        grant = c.put(f"/projects/{project.json()['project']['id']}/users/"
                      f"{user.json()['user']['id']}/roles/{roles[0]['id']}")
        assert grant.status_code == 204, grant.text
    return password_token(identity.url, f"zim-u-{suffix}", "zim-secret", f"zim-p-{suffix}")


def call(srv: ImageServer, token: str, method: str, path: str, status: int,
         **kw: Any) -> Any:
    resp = httpx.request(method, f"{srv.url}{path}", headers={"X-Auth-Token": token}, **kw)
    assert resp.status_code == status, (method, path, resp.text)
    return resp.json() if resp.content else None


def test_metadefs_through_the_real_service(image_server: ImageServer,
                                           identity: IdentityServer) -> None:
    srv, admin, user = image_server, identity.token(), member_token(identity)
    ns = f"zim-ns-{uuid.uuid4().hex[:8]}"
    base = f"/v2/metadefs/namespaces/{ns}"
    rtype = call(srv, admin, "GET", "/v2/metadefs/resource_types", 200)["resource_types"][0]
    made = call(srv, admin, "POST", "/v2/metadefs/namespaces", 201, json={
        "namespace": ns, "visibility": "public", "protected": True,
        "resource_type_associations": [{"name": rtype["name"]}],
        "objects": [{"name": "cpu", "properties": {"cores": {"type": "integer"}}}],
        "properties": {"hv": {"title": "Hypervisor", "type": "string", "enum": ["kvm"]}},
        "tags": [{"name": "fast"}]})
    assert made["objects"][0]["name"] == "cpu" and made["properties"]["hv"]["enum"] == ["kvm"]

    # the other project's member reads it, may not change it; the service keeps it
    assert call(srv, user, "GET", base, 200)["tags"][0]["name"] == "fast"
    call(srv, user, "PUT", base, 403, json={"namespace": ns, "protected": False})
    call(srv, user, "POST", f"{base}/tags/slow", 403)
    call(srv, admin, "DELETE", base, 403)
    srv.stop()
    srv.start()
    kept = call(srv, admin, "GET", base, 200)
    assert [o["name"] for o in kept["objects"]] == ["cpu"] and kept["protected"] is True

    call(srv, admin, "PUT", f"{base}/objects/cpu", 200, json={"name": "vcpu"})
    call(srv, admin, "PUT", f"{base}/properties/hv", 200,
         json={"name": "hv", "title": "HV", "type": "string"})
    call(srv, admin, "POST", f"{base}/tags", 201, json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert len(call(srv, admin, "GET", f"{base}/tags", 200)["tags"]) == 2
    call(srv, admin, "DELETE", f"{base}/objects/vcpu", 403)  # still protected
    call(srv, admin, "PUT", base, 200, json={"namespace": ns, "visibility": "private",
                                             "protected": False})
    call(srv, user, "GET", base, 404)  # private to the admin project now
    call(srv, admin, "DELETE", base, 204)
    call(srv, admin, "GET", base, 404)

    # a member's own private namespace
    mine = call(srv, user, "POST", "/v2/metadefs/namespaces", 201, json={"namespace": ns})
    assert mine["visibility"] == "private" and mine["owner"] != made["owner"]
    call(srv, user, "DELETE", base, 204)


def test_schemas_tasks_and_an_empty_image_id(image_server: ImageServer,
                                             identity: IdentityServer) -> None:
    srv, admin, user = image_server, identity.token(), member_token(identity)
    for path, name in (("member", "member"), ("members", "members"), ("tasks", "tasks"),
                       ("metadefs/resource_type", "resource_type_association")):
        assert call(srv, user, "GET", f"/v2/schemas/{path}", 200)["name"] == name
    call(srv, user, "GET", "/v2/tasks", 403)
    assert call(srv, admin, "GET", "/v2/tasks", 200)["tasks"] == []
    refused = call(srv, admin, "POST", "/v2/tasks", 400, json={
        "type": "import", "input": {"import_from": "http://zim.invalid/x.qcow2",
                                    "import_from_format": "qcow2",
                                    "image_properties": {"name": "zim"}}})
    assert "does not fetch images" in refused["message"]
    call(srv, admin, "GET", "/v2/images/", 404)
    call(srv, admin, "DELETE", "/v2/images/", 404)

