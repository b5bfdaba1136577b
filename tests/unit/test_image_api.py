"""The image API in process: shapes, visibility, updates, listing, tags, members, actions."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from image_api import ImageApi, image_client, make_service
from stratus.image.core import Settings

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) missing"),
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ImageApi]:
    service = make_service(tmp_path, Settings(quota_images_per_project=20))
    with image_client(service) as client:
        yield client
    service.db.dispose()


def error(resp: Any, status: int) -> str:
    """The message of a Glance-shaped error, after checking its status and shape."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"].startswith(str(status)) and body["title"]
    return str(body["message"])


def test_version_discovery(api: ImageApi) -> None:
    root = api.client.get("/")
    assert root.status_code == 300
    versions = root.json()["versions"]
    assert versions[0] == {
        "id": "v2.12", "status": "CURRENT",
        "links": [{"rel": "self", "href": "http://testserver/v2/"}],
    }
    assert {v["id"] for v in versions} == {f"v2.{minor}" for minor in range(13)}
    assert api.client.get("/versions").json() == root.json()


def test_every_api_call_needs_a_valid_token(api: ImageApi) -> None:
    assert "requires authentication" in error(api.client.get("/v2/images"), 401)
    error(api.call("GET", "/v2/images", as_="nobody"), 401)
    error(api.call("PUT", "/v2/images/x/file", as_="nobody",
                   headers={"Content-Type": "application/octet-stream"}), 401)
    error(api.call("GET", "/v2/images/x/file", as_="nobody"), 401)


def test_create_gives_a_queued_shared_image_of_the_callers_project(api: ImageApi) -> None:
    img = api.create("alice", name="deb", min_ram=512, tags=["a", "b", "a"], os_distro="debian")
    assert img["status"] == "queued" and img["visibility"] == "shared"
    assert img["owner"] == "p-alice" and img["protected"] is False and img["os_hidden"] is False
    assert img["min_ram"] == 512 and img["min_disk"] == 0 and img["tags"] == ["a", "b"]
    assert img["os_distro"] == "debian"
    for key in ("size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value"):
        assert img[key] is None
    assert img["self"] == f"/v2/images/{img['id']}" and img["file"].endswith("/file")
    assert img["created_at"].endswith("Z") and img["schema"] == "/v2/schemas/image"
    assert api.show(img["id"], "alice") == img


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"disk_format": "vhd"}, 400, "allowed: raw, qcow2, vmdk, iso"),
        ({"container_format": "docker"}, 400, "allowed: bare, ovf"),
        ({"visibility": "everyone"}, 400, "allowed: public, private, shared, community"),
        ({"min_disk": -1}, 400, "'min_disk' must be an integer"),
        ({"min_ram": "1"}, 400, "'min_ram' must be an integer"),
        ({"protected": "yes"}, 400, "'protected' must be true or false"),
        ({"name": "x" * 256}, 400, "at most 255 characters"),
        ({"tags": "a"}, 400, "'tags' must be a list"),
        ({"tags": ["a/b"]}, 400, "Invalid tag"),
        ({"os_distro": 7}, 400, "Property 'os_distro' must be a string"),
        ({"id": "not-a-uuid"}, 400, "'id' must be a UUID"),
        ({"status": "active"}, 403, "Attribute 'status' is read-only"),
        ({"checksum": "0" * 32}, 403, "Attribute 'checksum' is read-only"),
        ({"os_glance_x": "1"}, 403, "Attribute 'os_glance_x' is reserved"),
        ({"visibility": "public"}, 403, "publicize"),
        ({"owner": "p-bob"}, 403, "Only an admin may create an image owned by another"),
        ({"tags": [f"t{i}" for i in range(129)]}, 413, "at most 128 tags"),
        ({f"p{i}": "v" for i in range(129)}, 413, "at most 128 custom properties"),
    ],
)
def test_create_refuses_bad_attributes_and_makes_nothing(
    api: ImageApi, body: dict[str, Any], status: int, words: str
) -> None:
    assert words in error(api.call("POST", "/v2/images", "alice", json=body), status)
    assert api.call("GET", "/v2/images", "alice").json()["images"] == []


def test_create_refuses_bad_bodies_and_readers(api: ImageApi) -> None:
    assert "not valid JSON" in error(
        api.call("POST", "/v2/images", "alice", content=b"{", headers={"Content-Type":
                 "application/json"}), 400)
    assert "JSON object" in error(api.call("POST", "/v2/images", "alice", json=[1]), 400)
    error(api.call("POST", "/v2/images", "carol", json={"name": "r"}), 403)
    img = api.create("alice", id="7d9e7d3c-0e59-4a4e-9a61-5b8e1f1f2f3a")
    assert img["id"] == "7d9e7d3c-0e59-4a4e-9a61-5b8e1f1f2f3a"
    assert "already exists" in error(
        api.call("POST", "/v2/images", "alice", json={"id": img["id"]}), 409)


def test_image_count_quota(api: ImageApi) -> None:
    for i in range(20):
        api.create("bob", name=f"i{i}")
    assert "quota_images_per_project" in error(
        api.call("POST", "/v2/images", "bob", json={"name": "one-too-many"}), 413)
    api.create("alice", name="others-are-not-affected")


def test_private_images_are_invisible_to_other_projects(api: ImageApi) -> None:
    img = api.create("alice", name="secret", visibility="private")
    path = f"/v2/images/{img['id']}"
    for method, suffix, kw in [
        ("GET", "", {}), ("DELETE", "", {}), ("GET", "/file", {}), ("GET", "/members", {}),
        ("PUT", "/tags/x", {}), ("POST", "/actions/deactivate", {}),
    ]:
        assert "No image found" in error(api.call(method, path + suffix, "bob", **kw), 404)
    error(api.patch(img["id"], [{"op": "replace", "path": "/name", "value": "x"}], "bob"), 404)
    assert api.call("GET", "/v2/images", "bob").json()["images"] == []
    assert api.show(img["id"], "carol")["name"] == "secret"  # a reader of the project sees it
    assert api.show(img["id"], "admin")["name"] == "secret"


def test_readers_and_other_projects_cannot_change_visible_images(api: ImageApi) -> None:
    img = api.create("admin", name="pub", visibility="public")
    assert api.show(img["id"], "bob")["name"] == "pub"
    assert "not authorized" in error(
        api.patch(img["id"], [{"op": "replace", "path": "/name", "value": "x"}], "bob"), 403)
    error(api.call("DELETE", f"/v2/images/{img['id']}", "bob"), 403)
    own = api.create("alice", name="mine")
    error(api.patch(own["id"], [{"op": "replace", "path": "/name", "value": "x"}], "carol"), 403)


def test_shared_images_and_members(api: ImageApi) -> None:
    img = api.create("alice", name="team", visibility="shared")
    members = f"/v2/images/{img['id']}/members"
    error(api.call("GET", f"/v2/images/{img['id']}", "bob"), 404)
    resp = api.call("POST", members, "alice", json={"member": "p-bob"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "pending" and resp.json()["member_id"] == "p-bob"
    assert "already associated" in error(
        api.call("POST", members, "alice", json={"member": "p-bob"}), 409)
    # A pending member sees the image but does not list it by default.
    assert api.show(img["id"], "bob")["name"] == "team"
    assert api.call("GET", "/v2/images", "bob").json()["images"] == []
    pending = api.call("GET", "/v2/images?member_status=pending", "bob").json()["images"]
    assert [i["id"] for i in pending] == [img["id"]]
    # Only the member accepts; then it is listed.
    error(api.call("PUT", f"{members}/p-bob", "alice", json={"status": "accepted"}), 403)
    error(api.call("PUT", f"{members}/p-bob", "bob", json={"status": "maybe"}), 400)
    resp = api.call("PUT", f"{members}/p-bob", "bob", json={"status": "accepted"})
    assert resp.json()["status"] == "accepted"
    assert [i["id"] for i in api.call("GET", "/v2/images", "bob").json()["images"]] == [img["id"]]
    # The owner sees all members, a member only itself; a member cannot change the image.
    assert len(api.call("GET", members, "alice").json()["members"]) == 1
    assert api.call("GET", members, "bob").json()["members"][0]["member_id"] == "p-bob"
    error(api.patch(img["id"], [{"op": "replace", "path": "/name", "value": "x"}], "bob"), 403)
    error(api.call("DELETE", f"{members}/p-bob", "bob"), 403)
    assert api.call("DELETE", f"{members}/p-bob", "alice").status_code == 204
    error(api.call("GET", f"/v2/images/{img['id']}", "bob"), 404)
    private = api.create("alice", visibility="private")
    assert "Only shared images have members" in error(
        api.call("POST", f"/v2/images/{private['id']}/members", "alice",
                 json={"member": "p-bob"}), 403)


def test_community_images_are_visible_but_listed_only_on_request(api: ImageApi) -> None:
    img = api.create("alice", name="comm", visibility="community")
    assert api.show(img["id"], "bob")["name"] == "comm"
    assert api.call("GET", "/v2/images", "bob").json()["images"] == []
    listed = api.call("GET", "/v2/images?visibility=community", "bob").json()["images"]
    assert [i["id"] for i in listed] == [img["id"]]


def test_patch_changes_core_attributes_properties_and_tags(api: ImageApi) -> None:
    img = api.create("alice", name="a", hw_disk_bus="virtio", tags=["x"])
    resp = api.patch(img["id"], [
        {"op": "replace", "path": "/name", "value": "b"},
        {"op": "replace", "path": "/min_disk", "value": 2},
        {"op": "add", "path": "/os_distro", "value": "debian"},
        {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
        {"op": "add", "path": "/a~1b", "value": "slash"},
        {"op": "replace", "path": "/tags", "value": ["y", "z"]},
        {"op": "replace", "path": "/protected", "value": True},
        {"op": "replace", "path": "/visibility", "value": "private"},
    ], "alice")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == "b" and body["min_disk"] == 2 and body["protected"] is True
    assert body["os_distro"] == "debian" and body["hw_disk_bus"] == "scsi"
    assert body["a/b"] == "slash" and body["tags"] == ["y", "z"]
    assert body["visibility"] == "private"
    resp = api.patch(img["id"], [{"op": "remove", "path": "/os_distro"}], "alice")
    assert "os_distro" not in resp.json()
    assert api.show(img["id"], "alice") == resp.json()


@pytest.mark.parametrize(
    ("ops", "status", "words"),
    [
        ([{"op": "remove", "path": "/nothing"}], 409, "Property nothing does not exist"),
        ([{"op": "replace", "path": "/nothing", "value": "x"}], 409, "does not exist"),
        ([{"op": "replace", "path": "/status", "value": "active"}], 403, "read-only"),
        ([{"op": "replace", "path": "/size", "value": 1}], 403, "read-only"),
        ([{"op": "remove", "path": "/name"}], 403, "cannot be removed"),
        ([{"op": "move", "path": "/name"}], 400, "allowed: add, replace, remove"),
        ([{"op": "replace", "path": "/name"}], 400, "needs a 'value'"),
        ([{"op": "replace", "path": "name", "value": "x"}], 400, "Invalid path"),
        ([{"op": "replace", "path": "/tags/0", "value": "x"}], 400, "top-level"),
        ([{"op": "add", "path": "/k", "value": 1}], 400, "must be a string"),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403, "publicize"),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400, "allowed"),
        ({"op": "replace"}, 400, "JSON list of operations"),
    ],
)
def test_patch_refuses_bad_operations_atomically(
    api: ImageApi, ops: Any, status: int, words: str
) -> None:
    img = api.create("alice", name="keep")
    # A good operation first: it must not be applied when a later one fails.
    body = [{"op": "replace", "path": "/name", "value": "changed"}, *ops] if isinstance(
        ops, list) else ops
    assert words in error(api.patch(img["id"], body, "alice"), status)
    assert api.show(img["id"], "alice")["name"] == "keep"


def test_patch_needs_the_json_patch_media_type(api: ImageApi) -> None:
    img = api.create("alice")
    resp = api.call("PATCH", f"/v2/images/{img['id']}", "alice",
                    json=[{"op": "replace", "path": "/name", "value": "x"}])
    assert "application/openstack-images-v2.1-json-patch" in error(resp, 415)
    assert "application/openstack-images-v2.0-json-patch" in resp.json()["message"]


def test_disk_format_changes_only_while_queued(api: ImageApi) -> None:
    img = api.create("alice", disk_format="raw")
    resp = api.patch(img["id"], [{"op": "replace", "path": "/disk_format", "value": "iso"}],
                     "alice")
    assert resp.json()["disk_format"] == "iso"
    resp = api.patch(img["id"], [{"op": "replace", "path": "/disk_format", "value": "raw"}],
                     "alice")
    assert api.upload(img["id"], b"\x00" * 4096, "alice").status_code == 204
    assert "only be changed while the image is queued" in error(
        api.patch(img["id"], [{"op": "replace", "path": "/disk_format", "value": "qcow2"}],
                  "alice"), 403)


def test_protected_images_cannot_be_deleted(api: ImageApi) -> None:
    img = api.create("alice", protected=True)
    assert "protected and cannot be deleted" in error(
        api.call("DELETE", f"/v2/images/{img['id']}", "alice"), 403)
    api.patch(img["id"], [{"op": "replace", "path": "/protected", "value": False}], "alice")
    assert api.call("DELETE", f"/v2/images/{img['id']}", "alice").status_code == 204
    error(api.call("GET", f"/v2/images/{img['id']}", "alice"), 404)


def test_tags(api: ImageApi) -> None:
    img = api.create("alice")
    tags = f"/v2/images/{img['id']}/tags"
    assert api.call("PUT", f"{tags}/web", "alice").status_code == 204
    assert api.call("PUT", f"{tags}/web", "alice").status_code == 204  # idempotent
    assert api.call("PUT", f"{tags}/db", "alice").status_code == 204
    assert api.show(img["id"], "alice")["tags"] == ["db", "web"]
    assert api.call("DELETE", f"{tags}/web", "alice").status_code == 204
    assert "Tag web not found" in error(api.call("DELETE", f"{tags}/web", "alice"), 404)
    error(api.call("PUT", f"{tags}/{'x' * 256}", "alice"), 400)
    error(api.call("PUT", f"{tags}/x", "carol"), 403)


def test_deactivate_and_reactivate_by_admins_and_the_owners_members(api: ImageApi) -> None:
    img = api.create("alice", visibility="community")
    path = f"/v2/images/{img['id']}"
    assert "status 'queued'" in error(api.call("POST", f"{path}/actions/deactivate"), 403)
    assert api.upload(img["id"], b"\x01" * 8192, "alice").status_code == 204
    for other in ("bob", "carol"):  # another project; a reader of the owner's project
        assert "deactivate_image" in error(
            api.call("POST", f"{path}/actions/deactivate", other), 403)
    assert api.call("POST", f"{path}/actions/deactivate", "alice").status_code == 204
    assert "deactivated" in error(api.call("GET", f"{path}/file", "bob"), 403)
    error(api.call("POST", f"{path}/actions/reactivate", "bob"), 403)
    assert api.call("POST", f"{path}/actions/reactivate", "alice").status_code == 204
    assert api.call("POST", f"{path}/actions/deactivate").status_code == 204
    assert api.call("POST", f"{path}/actions/deactivate").status_code == 204
    assert api.show(img["id"], "alice")["status"] == "deactivated"
    assert "deactivated" in error(api.call("GET", f"{path}/file", "alice"), 403)
    assert api.call("GET", f"{path}/file").content == b"\x01" * 8192  # admins still may
    assert api.call("POST", f"{path}/actions/reactivate").status_code == 204
    assert api.show(img["id"], "alice")["status"] == "active"
    assert api.call("GET", f"{path}/file", "alice").status_code == 200


def test_list_filters(api: ImageApi) -> None:
    a = api.create("alice", name="alpha", tags=["web", "prod"], os_distro="debian")
    b = api.create("alice", name="beta", tags=["web"], disk_format="qcow2", os_distro="fedora")
    c = api.create("alice", name="gamma", protected=True, os_hidden=True)
    api.upload(a["id"], b"\x02" * 10_000, "alice")

    def ids(query: str) -> set[str]:
        resp = api.call("GET", f"/v2/images?{query}", "alice")
        assert resp.status_code == 200, resp.text
        return {i["id"] for i in resp.json()["images"]}

    assert ids("") == {a["id"], b["id"]}  # hidden images only on request
    assert ids("os_hidden=true") == {c["id"]}
    assert ids("name=beta") == {b["id"]}
    assert ids("name=in:alpha,beta") == {a["id"], b["id"]}
    assert ids("status=active") == {a["id"]}
    assert ids("tag=web") == {a["id"], b["id"]}
    assert ids("tag=web&tag=prod") == {a["id"]}
    assert ids("disk_format=qcow2") == {b["id"]}
    assert ids("owner=p-alice") == {a["id"], b["id"]}
    assert ids("os_distro=fedora") == {b["id"]}
    assert ids("size_min=5000") == {a["id"]}
    assert ids("protected=false") == {a["id"], b["id"]}
    assert ids("visibility=private") == set()
    assert ids("created_at=gte:2000-01-01T00:00:00Z") == {a["id"], b["id"]}
    for query, words in [
        ("limit=-1", "at least 0"), ("limit=x", "must be an integer"),
        ("sort_key=colour", "Invalid sort key"), ("sort=name:up", "Invalid sort direction"),
        ("marker=00000000-0000-0000-0000-000000000000", "Invalid marker"),
        ("visibility=everyone", "allowed"), ("member_status=maybe", "allowed"),
        ("protected=perhaps", "true or false"), ("created_at=soon", "<op>:<ISO 8601 time>"),
        ("sort=name&sort_key=name", "either 'sort' or"),
    ]:
        assert words in error(api.call("GET", f"/v2/images?{query}", "alice"), 400)


def test_list_sorting_and_pagination_with_next_links(api: ImageApi) -> None:
    names = ["delta", "alpha", "echo", "charlie", "bravo", "alpha"]
    made = [api.create("alice", name=n, min_ram=i) for i, n in enumerate(names)]
    url: str | None = "/v2/images?sort=name:asc,min_ram:desc&limit=2"
    seen: list[dict[str, Any]] = []
    pages = 0
    while url:
        resp = api.call("GET", url, "alice")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["images"]) <= 2
        seen += body["images"]
        url = body.get("next")
        pages += 1
    assert pages == 3
    assert [(i["name"], i["min_ram"]) for i in seen] == [
        ("alpha", 5), ("alpha", 1), ("bravo", 4), ("charlie", 3), ("delta", 0), ("echo", 2)]
    assert sorted(i["id"] for i in seen) == sorted(i["id"] for i in made)
    by_key = api.call("GET", "/v2/images?sort_key=min_ram&sort_dir=asc", "alice").json()
    assert [i["min_ram"] for i in by_key["images"]] == [0, 1, 2, 3, 4, 5]
    default = api.call("GET", "/v2/images", "alice").json()["images"]
    assert [i["id"] for i in default] == [i["id"] for i in sorted(
        made, key=lambda x: (x["created_at"], x["id"]), reverse=True)]


def test_unknown_routes_and_methods_answer_in_glance_shape(api: ImageApi) -> None:
    error(api.call("GET", "/v2/nothing"), 404)
    error(api.call("POST", "/v2/images/x/file"), 405)


PATCH_2_0 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}


def test_patch_2_0_names_the_operation_as_the_members_key(api: ImageApi) -> None:
    img = api.create("alice", name="a", tags=["x"])
    resp = api.call("PATCH", f"/v2/images/{img['id']}", "alice", headers=PATCH_2_0, json=[
        {"replace": "/name", "value": "b"},
        {"add": "/os_distro", "value": "debian"},
        {"replace": "/tags", "value": ["y"]},
    ])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["name"], body["os_distro"], body["tags"]) == ("b", "debian", ["y"])
    resp = api.call("PATCH", f"/v2/images/{img['id']}", "alice", headers=PATCH_2_0,
                    json=[{"remove": "/os_distro"}])
    assert resp.status_code == 200, resp.text
    assert "os_distro" not in resp.json()
    assert api.show(img["id"], "alice") == resp.json()


@pytest.mark.parametrize(
    ("ops", "words"),
    [
        # The 2.1 form is not the 2.0 form (Glance refuses it the same way).
        ([{"op": "replace", "path": "/name", "value": "x"}], "exactly one member"),
        ([{"replace": "/name", "add": "/k", "value": "x"}], "exactly one member"),
        ([{"move": "/name"}], "exactly one member"),
        ([{"replace": "/name"}], "needs a 'value'"),
        ([{"replace": "name", "value": "x"}], "Invalid path"),
        ([{"replace": "/name", "value": "x", "path": "/k"}], "Unknown members"),
        ([{"replace": 3, "value": "x"}], "Invalid path"),
        (["replace"], "must be a JSON object"),
        ({"replace": "/name"}, "JSON list of operations"),
    ],
)
def test_patch_2_0_refuses_bad_operations_atomically(
    api: ImageApi, ops: Any, words: str
) -> None:
    img = api.create("alice", name="keep")
    body = [{"replace": "/name", "value": "changed"}, *ops] if isinstance(ops, list) else ops
    resp = api.call("PATCH", f"/v2/images/{img['id']}", "alice", headers=PATCH_2_0, json=body)
    assert words in error(resp, 400)
    assert api.show(img["id"], "alice")["name"] == "keep"


def test_an_empty_image_id_is_a_404_not_a_redirect(api: ImageApi) -> None:
    for method in ("GET", "DELETE", "PATCH"):
        resp = api.call(method, "/v2/images/", follow_redirects=False)
        assert "No image id" in error(resp, 404)
    assert api.call("GET", "/v2/images").status_code == 200
