"""Metadata definitions (``/v2/metadefs``) through the image app, in process (sqlite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from image_api import ImageApi, image_client, make_service

pytestmark = pytest.mark.unit
NSS = "/v2/metadefs/namespaces"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ImageApi]:
    service = make_service(tmp_path)
    with image_client(service) as client:
        yield client
    service.db.dispose()


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if status != 204 else None


def refused(resp: Any, status: int, words: str) -> None:
    assert resp.status_code == status, resp.text
    assert words in resp.json()["message"], resp.json()


def make_ns(api: ImageApi, name: str = "zim-ns", as_: str = "admin", **attrs: Any) -> Any:
    return ok(api.call("POST", NSS, as_, json={"namespace": name, **attrs}), 201)


def test_namespace_life_as_tempest_runs_it(api: ImageApi) -> None:
    rtype = ok(api.call("GET", "/v2/metadefs/resource_types"))["resource_types"][0]["name"]
    made = make_ns(api, visibility="public", description="Tempest", display_name="zim",
                   resource_type_associations=[{"name": rtype}], protected=True)
    assert made["visibility"] == "public" and made["protected"] is True
    assert made["owner"] == "p-admin" and made["self"] == f"{NSS}/zim-ns"
    assert made["resource_type_associations"][0]["name"] == rtype
    assert "zim-ns" in [n["namespace"] for n in ok(api.call("GET", NSS))["namespaces"]]
    assert ok(api.call("GET", f"{NSS}/zim-ns"))["display_name"] == "zim"
    refused(api.call("DELETE", f"{NSS}/zim-ns"), 403, "protected")
    updated = ok(api.call("PUT", f"{NSS}/zim-ns", json={
        "namespace": "zim-ns", "visibility": "private", "protected": False,
        "description": "Tempest", "display_name": "zim"}))
    assert updated["visibility"] == "private" and updated["protected"] is False
    ok(api.call("DELETE", f"{NSS}/zim-ns"), 204)
    refused(api.call("GET", f"{NSS}/zim-ns"), 404, "zim-ns")


def test_visibility_and_who_may_write(api: ImageApi) -> None:
    make_ns(api, "zim-pub", visibility="public")
    refused(api.call("POST", NSS, "alice", json={"namespace": "zim-x", "visibility": "public"}),
            403, "only admins write public")
    mine = make_ns(api, "zim-alice", "alice")
    assert mine["owner"] == "p-alice" and mine["visibility"] == "private"
    # bob sees the public one, never alice's private one
    names = [n["namespace"] for n in ok(api.call("GET", NSS, "bob"))["namespaces"]]
    assert "zim-pub" in names and "zim-alice" not in names
    refused(api.call("GET", f"{NSS}/zim-alice", "bob"), 404, "zim-alice")
    refused(api.call("DELETE", f"{NSS}/zim-alice", "bob"), 404, "zim-alice")
    # alice reads the public one but may not change it nor add to it
    ok(api.call("GET", f"{NSS}/zim-pub", "alice"))
    refused(api.call("PUT", f"{NSS}/zim-pub", "alice", json={"namespace": "zim-pub"}), 403,
            "not authorized")
    refused(api.call("POST", f"{NSS}/zim-pub/tags/t", "alice"), 403, "not authorized")
    # ... nor publish hers, nor give it away; a reader of her project may not write it
    refused(api.call("PUT", f"{NSS}/zim-alice", "alice",
                     json={"namespace": "zim-alice", "visibility": "public"}), 403, "public")
    refused(api.call("PUT", f"{NSS}/zim-alice", "alice",
                     json={"namespace": "zim-alice", "owner": "p-bob"}), 403, "Only admins")
    ok(api.call("GET", f"{NSS}/zim-alice", "carol"))
    refused(api.call("POST", f"{NSS}/zim-alice/tags/t", "carol"), 403, "not authorized")
    ok(api.call("POST", f"{NSS}/zim-alice/tags/t", "alice"), 201)
    ok(api.call("DELETE", f"{NSS}/zim-alice", "alice"), 204)
    assert [n["namespace"] for n in ok(api.call("GET", f"{NSS}?visibility=public",
                                                "alice"))["namespaces"]] == ["zim-pub"]


def test_bad_requests_are_400s_naming_the_field_and_leave_nothing(api: ImageApi) -> None:
    refused(api.call("POST", NSS, json={"display_name": "x"}), 400, "'namespace'")
    refused(api.call("POST", NSS, json={"namespace": "a/b"}), 400, "'/'")
    refused(api.call("POST", NSS, json={"namespace": "x", "visibility": "shared"}), 400,
            "'visibility'")
    refused(api.call("POST", NSS, json={"namespace": "x", "protected": "yes"}), 400,
            "'protected'")
    refused(api.call("POST", NSS, json={"namespace": "x", "colour": 1}), 400, "'colour'")
    refused(api.call("POST", NSS, json={"namespace": "x", "objects": [
        {"name": "o", "properties": {"p": {"type": "colour"}}}]}), 400, "'type'")
    refused(api.call("POST", NSS, json={"namespace": "x", "tags": [{"name": "t"},
                                                                   {"name": "t"}]}), 409, "t")
    refused(api.call("GET", f"{NSS}?limit=0"), 400, "'limit'")
    refused(api.call("GET", f"{NSS}?sort_dir=up"), 400, "'sort_dir'")
    assert ok(api.call("GET", NSS))["namespaces"] == []
    make_ns(api)
    refused(api.call("POST", NSS, json={"namespace": "zim-ns"}), 409, "already exists")
    refused(api.call("POST", f"{NSS}/zim-ns/properties", json={"name": "p", "type": "string"}),
            400, "'title'")
    refused(api.call("POST", f"{NSS}/zim-ns/properties", json={
        "name": "p", "title": "P", "type": "string", "maxLength": -1}), 400, "'maxLength'")
    refused(api.call("POST", f"{NSS}/zim-ns/objects", json={"description": "d"}), 400, "'name'")
    refused(api.call("POST", f"{NSS}/zim-ns/tags", json={"tags": "t"}), 400, "'tags'")
    refused(api.call("POST", f"{NSS}/zim-ns/resource_types", json={"prefix": "x"}), 400,
            "'name'")
    full = ok(api.call("GET", f"{NSS}/zim-ns"))
    assert not {"objects", "properties", "tags", "resource_type_associations"} & set(full)


def test_objects_properties_tags_and_associations(api: ImageApi) -> None:
    make_ns(api)
    base = f"{NSS}/zim-ns"
    obj = ok(api.call("POST", f"{base}/objects", json={
        "name": "cpu", "description": "CPU", "required": ["cores"],
        "properties": {"cores": {"type": "integer", "minimum": 1}}}), 201)
    assert obj["self"] == f"{base}/objects/cpu" and obj["properties"]["cores"]["minimum"] == 1
    renamed = ok(api.call("PUT", f"{base}/objects/cpu", json={"name": "vcpu"}))
    assert renamed["name"] == "vcpu" and renamed["created_at"] == obj["created_at"]
    assert [o["name"] for o in ok(api.call("GET", f"{base}/objects"))["objects"]] == ["vcpu"]
    refused(api.call("GET", f"{base}/objects/cpu"), 404, "cpu")

    enum = ["qemu", "kvm"]
    prop = ok(api.call("POST", f"{base}/properties", json={
        "name": "hv", "title": "Hypervisor", "type": "string", "enum": enum}), 201)
    assert prop == {"name": "hv", "title": "Hypervisor", "type": "string", "enum": enum}
    refused(api.call("POST", f"{base}/properties", json=prop), 409, "already exists")
    new = ok(api.call("PUT", f"{base}/properties/hv",
                      json={"title": "HV", "type": "string", "enum": enum, "name": "hv"}))
    assert new["title"] == "HV"
    listed = ok(api.call("GET", f"{base}/properties"))["properties"]
    assert listed == {"hv": {"title": "HV", "type": "string", "enum": enum}}

    tags = ok(api.call("POST", f"{base}/tags", json={"tags": [{"name": "a"}, {"name": "b"}]}),
              201)["tags"]
    assert [t["name"] for t in tags] == ["a", "b"]
    ok(api.call("POST", f"{base}/tags", json={"tags": [{"name": "c"}]},
                headers={"X-Openstack-Append": "True"}), 201)
    ok(api.call("POST", f"{base}/tags/d"), 201)
    refused(api.call("POST", f"{base}/tags/d"), 409, "already exists")
    assert ok(api.call("PUT", f"{base}/tags/d", json={"name": "e"}))["name"] == "e"
    refused(api.call("PUT", f"{base}/tags/a", json={"name": "b"}), 409, "already exists")
    names = sorted(t["name"] for t in ok(api.call("GET", f"{base}/tags"))["tags"])
    assert names == ["a", "b", "c", "e"]
    ok(api.call("POST", f"{base}/tags", json={"tags": [{"name": "z"}]}), 201)  # replaces
    assert [t["name"] for t in ok(api.call("GET", f"{base}/tags"))["tags"]] == ["z"]

    assoc = ok(api.call("POST", f"{base}/resource_types",
                        json={"name": "OS::Glance::Image", "prefix": "hw_"}), 201)
    assert assoc["name"] == "OS::Glance::Image" and assoc["prefix"] == "hw_"
    ok(api.call("POST", f"{base}/resource_types", json={"name": "OS::Zim::Thing"}), 201)
    types = [t["name"] for t in ok(api.call("GET", "/v2/metadefs/resource_types"))[
        "resource_types"]]
    assert "OS::Zim::Thing" in types and "OS::Nova::Flavor" in types
    found = ok(api.call("GET", f"{NSS}?resource_types=OS::Zim::Thing"))["namespaces"]
    assert [n["namespace"] for n in found] == ["zim-ns"]

    # a protected namespace keeps its contents
    ok(api.call("PUT", base, json={"namespace": "zim-ns", "protected": True}))
    for path in ("objects/vcpu", "properties/hv", "tags/z", "resource_types/OS::Zim::Thing",
                 "tags"):
        refused(api.call("DELETE", f"{base}/{path}"), 403, "protected")
    ok(api.call("PUT", base, json={"namespace": "zim-ns", "protected": False}))
    ok(api.call("DELETE", f"{base}/resource_types/OS::Zim::Thing"), 204)
    refused(api.call("DELETE", f"{base}/resource_types/OS::Zim::Thing"), 404, "OS::Zim::Thing")
    ok(api.call("DELETE", f"{base}/tags"), 204)
    assert ok(api.call("GET", f"{base}/tags"))["tags"] == []
    ok(api.call("DELETE", f"{base}/properties/hv"), 204)
    assert ok(api.call("GET", f"{base}/properties"))["properties"] == {}


def test_rename_and_paging(api: ImageApi) -> None:
    for i in range(3):
        make_ns(api, f"zim-{i}")
    ok(api.call("POST", f"{NSS}/zim-0/tags/t"), 201)
    refused(api.call("PUT", f"{NSS}/zim-0", json={"namespace": "zim-1"}), 409, "already exists")
    moved = ok(api.call("PUT", f"{NSS}/zim-0", json={"namespace": "zim-9"}))
    assert moved["self"] == f"{NSS}/zim-9" and moved["tags"][0]["name"] == "t"
    page = ok(api.call("GET", f"{NSS}?limit=2&sort_key=namespace&sort_dir=asc"))
    assert [n["namespace"] for n in page["namespaces"]] == ["zim-1", "zim-2"]
    rest = ok(api.call("GET", page["next"] + "&sort_key=namespace&sort_dir=asc"))
    assert [n["namespace"] for n in rest["namespaces"]] == ["zim-9"] and "next" not in rest
    refused(api.call("GET", f"{NSS}?marker=nope"), 400, "marker")
