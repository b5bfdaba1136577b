"""Nova's image proxy (/v2.1/images, /v2.1/images/{id}/metadata) against the real image
API: both services run in-process (starlette TestClient), the compute API's image client
(HttpDownstream) talking to the image app over the TestClient's transport, so what the
image API lets each caller see and change is the real thing. Every response is checked
against Tempest's own schemas (tempest.lib.api_schema.response.compute.v2_1.images)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest
from starlette.testclient import TestClient
from tempest.lib.api_schema.response.compute.v2_1 import images as schemas
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR

from compute_api import ALICE, BOB, ComputeApi, fake_validate, make_core
from image_api import make_service
from stratus.common.clients import ApiClient, ServiceError
from stratus.compute.app import build_app
from stratus.compute.core import Settings
from stratus.compute.downstream import HttpDownstream
from stratus.compute.images_proxy import patch_ops, proxy_error
from stratus.image.app import build_app as build_image_app

pytestmark = pytest.mark.unit
GLANCE = "http://image.test:9292"


class Cloud:
    """The compute API (``api``) in front of the image API (``glance``)."""

    def __init__(self, api: ComputeApi, glance: TestClient) -> None:
        self.api, self.glance = api, glance

    def image(self, token: str = ALICE, data: bytes | None = b"x" * 1024,
              **attrs: Any) -> dict[str, Any]:
        body = {"name": "img", "disk_format": "raw", "container_format": "bare",
                "visibility": "private", **attrs}
        resp = self.glance.post("/v2/images", json=body, headers={"X-Auth-Token": token})
        assert resp.status_code == 201, resp.text
        img = dict(resp.json())
        if data is not None:
            up = self.glance.put(f"/v2/images/{img['id']}/file", content=data, headers={
                "X-Auth-Token": token, "Content-Type": "application/octet-stream"})
            assert up.status_code == 204, up.text
        return img

    def call(self, method: str, path: str, token: str = ALICE, version: str = "2.1",
             **kw: Any) -> httpx.Response:
        return self.api.call(method, path, token, version, **kw)

    def check(self, method: str, path: str, schema: dict[str, Any], token: str = ALICE,
              version: str = "2.1", **kw: Any) -> Any:
        """The call's answer, validated as Tempest validates it."""
        resp = self.call(method, path, token, version, **kw)
        assert resp.status_code in schema["status_code"], (path, resp.status_code, resp.text)
        body = resp.json() if resp.content else None
        if schema.get("response_body"):
            jsonschema.validate(body, schema["response_body"], cls=JSONSCHEMA_VALIDATOR,
                                format_checker=FORMAT_CHECKER)
        else:
            assert not body
        return body


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    image_service = make_service(tmp_path)
    settings = dataclasses.replace(Settings())
    settings.quotas = {**settings.quotas, "metadata_items": 4}
    with TestClient(build_image_app(image_service, fake_validate),
                    raise_server_exceptions=False) as glance:
        ds = HttpDownstream(GLANCE, "http://network.test:9696", None)
        ds._caller_img = ApiClient(GLANCE, None, service="image", http=glance)
        core = make_core(f"sqlite:///{tmp_path}/compute.sqlite", settings,
                         ds)  # type: ignore[arg-type]
        app = build_app(core, fake_validate, public_url="http://compute.test:8774")
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Cloud(ComputeApi(client, core, None), glance)  # type: ignore[arg-type]
        core.db.dispose()
    image_service.db.dispose()


def ids(body: dict[str, Any]) -> list[str]:
    return [i["id"] for i in body["images"]]


def test_show_and_lists_in_novas_shape(cloud: Cloud) -> None:
    img = cloud.image(os_distro="debian", auto_disk_config="true", min_ram=64)
    queued = cloud.image(data=None, name="empty")
    snap = cloud.image(name="snap", instance_uuid="5e1f2c0a-1111-4111-8111-000000000001",
                       image_type="snapshot")
    for version in ("2.1", "2.35"):
        shown = cloud.check("GET", f"/v2.1/images/{img['id']}", schemas.get_image,
                            version=version)["image"]
        assert shown["status"] == "ACTIVE" and shown["progress"] == 100
        assert shown["metadata"] == {"os_distro": "debian", "auto_disk_config": "true"}
        assert shown["minRam"] == 64 and shown["minDisk"] == 0
        assert shown["OS-EXT-IMG-SIZE:size"] == 1024
        assert shown["OS-DCF:diskConfig"] == "AUTO"
        assert shown["created"].endswith("Z") and "server" not in shown
        rels = {link["rel"]: link["href"] for link in shown["links"]}
        assert rels == {"self": f"http://compute.test:8774/v2.1/images/{img['id']}",
                        "bookmark": f"http://compute.test:8774/images/{img['id']}",
                        "alternate": f"{GLANCE}/images/{img['id']}"}
        brief = cloud.check("GET", "/v2.1/images", schemas.list_images, version=version)
        assert set(ids(brief)) == {img["id"], queued["id"], snap["id"]}
        detail = cloud.check("GET", "/v2.1/images/detail", schemas.list_images_details,
                             version=version)
        by_id = {i["id"]: i for i in detail["images"]}
        assert by_id[queued["id"]]["status"] == "SAVING"
        assert by_id[queued["id"]]["progress"] == 25
        assert by_id[queued["id"]]["OS-EXT-IMG-SIZE:size"] is None
        server = by_id[snap["id"]]["server"]
        assert server["id"] == snap["instance_uuid"]
        assert server["links"][0]["href"].endswith(f"/v2.1/servers/{snap['instance_uuid']}")


def test_filters_and_pages(cloud: Cloud) -> None:
    sid = "5e1f2c0a-1111-4111-8111-000000000002"
    first = cloud.image(name="first", min_ram=128, min_disk=2, color="blue")
    snap = cloud.image(name="snap", instance_uuid=sid, image_type="snapshot")
    queued = cloud.image(data=None, name="queued")

    def listed(query: str, detail: bool = False) -> list[str]:
        path = "/v2.1/images/detail" if detail else "/v2.1/images"
        return ids(cloud.check("GET", f"{path}?{query}", schemas.list_images_details
                               if detail else schemas.list_images))

    assert listed("name=first") == [first["id"]]
    assert set(listed("status=ACTIVE", detail=True)) == {first["id"], snap["id"]}
    assert listed("status=SAVING") == []  # queued shows as SAVING, filters on 'saving'
    assert listed(f"server={sid}") == [snap["id"]]
    assert listed(f"server=http://compute.test:8774/v2.1/servers/{sid}") == [snap["id"]]
    assert listed("type=snapshot", detail=True) == [snap["id"]]
    assert listed("minRam=128") == [first["id"]] and listed("minRam=64") == []
    assert listed("minDisk=2") == [first["id"]]
    assert listed("property-color=blue") == [first["id"]]
    assert set(listed(f"changes-since={first['created_at']}")) == {
        first["id"], snap["id"], queued["id"]}
    assert listed("changes-since=2999-01-01T00:00:00Z") == []
    # pages in the image API's order, a next link while a page is full, followed to the end
    seen: list[str] = []
    path = "/v2.1/images?limit=2"
    while path:
        body = cloud.check("GET", path, schemas.list_images)
        seen += ids(body)
        links = body.get("images_links") or []
        assert len(body["images"]) <= 2
        path = ""
        if links:
            assert links[0]["rel"] == "next"
            url = urlsplit(links[0]["href"])
            path = f"{url.path}?{url.query}"
    order = cloud.glance.get("/v2/images", headers={"X-Auth-Token": ALICE}).json()
    assert seen == [i["id"] for i in order["images"]] and len(seen) == 3
    for bad in ("limit=x", "limit=-1", "minRam=big", "changes-since=yesterday",
                "marker=no-such-image"):
        resp = cloud.call("GET", f"/v2.1/images?{bad}")
        assert resp.status_code == 400, (bad, resp.text)


def test_the_image_api_decides_who_sees_and_deletes(cloud: Cloud) -> None:
    mine = cloud.image()
    public = cloud.image(token="tok-admin", visibility="public", name="pub")
    for method, path in (("GET", f"/v2.1/images/{mine['id']}"),
                         ("DELETE", f"/v2.1/images/{mine['id']}"),
                         ("GET", f"/v2.1/images/{mine['id']}/metadata"),
                         ("POST", f"/v2.1/images/{mine['id']}/metadata")):
        resp = cloud.call(method, path, BOB, json={"metadata": {"a": "b"}})
        assert resp.status_code == 404, (method, path, resp.text)
    assert ids(cloud.check("GET", "/v2.1/images", schemas.list_images, BOB)) == [public["id"]]
    # Bob sees the public image but may not delete or change it: the image API's 403
    assert cloud.call("DELETE", f"/v2.1/images/{public['id']}", BOB).status_code == 403
    assert cloud.call("PUT", f"/v2.1/images/{public['id']}/metadata/k", BOB,
                      json={"meta": {"k": "v"}}).status_code == 403
    protected = cloud.image(protected=True)
    assert cloud.call("DELETE", f"/v2.1/images/{protected['id']}").status_code == 403
    cloud.check("DELETE", f"/v2.1/images/{mine['id']}", schemas.delete)
    assert cloud.call("GET", f"/v2.1/images/{mine['id']}").status_code == 404
    assert cloud.call("DELETE", f"/v2.1/images/{mine['id']}").status_code == 404
    for bad in ("-1", "x" * 40, "not-an-id", ""):
        assert cloud.call("DELETE", f"/v2.1/images/{bad}").status_code == 404, bad


def test_metadata_as_tempest_uses_it(cloud: Cloud) -> None:
    img = cloud.image(name="meta")
    m = f"/v2.1/images/{img['id']}/metadata"
    cloud.check("PUT", m, schemas.image_metadata,
                json={"metadata": {"os_version": "value1", "os_distro": "value2"}})
    assert cloud.check("GET", m, schemas.image_metadata) == {
        "metadata": {"os_version": "value1", "os_distro": "value2"}}
    body = cloud.check("POST", m, schemas.image_metadata, version="2.38",
                       json={"metadata": {"os_version": "alt1", "architecture": "x86_64"}})
    assert body["metadata"] == {"os_version": "alt1", "os_distro": "value2",
                                "architecture": "x86_64"}
    assert cloud.check("GET", m + "/os_distro", schemas.image_meta_item) == {
        "meta": {"os_distro": "value2"}}
    cloud.check("PUT", m + "/os_version", schemas.image_meta_item,
                json={"meta": {"os_version": "alt"}})
    cloud.check("DELETE", m + "/architecture", schemas.delete)
    assert cloud.check("GET", m, schemas.image_metadata)["metadata"] == {
        "os_version": "alt", "os_distro": "value2"}
    # replace: a key left out is removed
    cloud.check("PUT", m, schemas.image_metadata, json={"metadata": {"only": "this"}})
    glance = cloud.glance.get(f"/v2/images/{img['id']}", headers={"X-Auth-Token": ALICE})
    assert "os_distro" not in glance.json() and glance.json()["only"] == "this"
    # misses and bad bodies
    assert cloud.call("GET", m + "/nope").status_code == 404
    assert cloud.call("DELETE", m + "/nope").status_code == 404
    assert cloud.call("GET", "/v2.1/images/no-such/metadata").status_code == 404
    assert cloud.call("PUT", "/v2.1/images/no-such/metadata/k",
                      json={"meta": {"k": "v"}}).status_code == 404
    for method, path, body in (
            ("PUT", m + "/a", {"meta": {"b": "v"}}),
            ("PUT", m + "/a", {"meta": {"a": "v", "c": "w"}}),
            ("PUT", m + "/a", {"meta": {}}),
            ("PUT", m, {"metadata": {"a": 1}}),
            ("POST", m, {"metadata": {"bad/key": "v"}}),
            ("POST", m, {"metadata": {"a": "v" * 256}}),
            ("POST", m, {"metadata": "text"}),
            ("POST", m, {"metadata": {}, "extra": 1}),
            ("POST", m, {"meta": {"a": "b"}})):
        resp = cloud.call(method, path, json=body)
        assert resp.status_code == 400, (method, path, body, resp.text)
    assert cloud.check("GET", m, schemas.image_metadata)["metadata"] == {"only": "this"}


def test_metadata_quota_is_a_403(cloud: Cloud) -> None:
    img = cloud.image(one="1", two="2", three="3")
    m = f"/v2.1/images/{img['id']}/metadata"
    cloud.check("POST", m, schemas.image_metadata, json={"metadata": {"four": "4"}})
    for method, path, body in (("POST", m, {"metadata": {"five": "5"}}),
                               ("PUT", m + "/five", {"meta": {"five": "5"}}),
                               ("PUT", m, {"metadata": {str(i): "v" for i in range(5)}})):
        resp = cloud.call(method, path, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert "metadata" in resp.json()["forbidden"]["message"]
    # a change within the quota, and a removal, still work
    cloud.check("PUT", m + "/one", schemas.image_meta_item, json={"meta": {"one": "uno"}})
    cloud.check("DELETE", m + "/two", schemas.delete)
    assert cloud.check("GET", m, schemas.image_metadata)["metadata"] == {
        "one": "uno", "three": "3", "four": "4"}


def test_gone_after_their_last_microversion(cloud: Cloud) -> None:
    img = cloud.image()
    for path in ("/v2.1/images", "/v2.1/images/detail", f"/v2.1/images/{img['id']}"):
        assert cloud.call("GET", path, version="2.35").status_code == 200
        assert cloud.call("GET", path, version="2.36").status_code == 404
    assert cloud.call("DELETE", f"/v2.1/images/{img['id']}", version="2.36").status_code \
        == 404
    m = f"/v2.1/images/{img['id']}/metadata"
    assert cloud.call("GET", m, version="2.38").status_code == 200
    assert cloud.call("GET", m, version="2.39").status_code == 404
    assert cloud.call("POST", m, version="2.96", json={"metadata": {}}).status_code == 404
    assert cloud.call("GET", "/v2.1/images", "no-token").status_code == 401


def test_image_api_errors_are_mapped() -> None:
    cases = {404: 404, 403: 403, 409: 409, 400: 400, 413: 403, 500: 503, 0: 503, 429: 503}
    for status, expected in cases.items():
        err = proxy_error(ServiceError("image said no", status=status,
                                       temporary=status == 0 or status >= 429), "i")
        assert err.status == expected, (status, err.status)
    assert "image service" in str(proxy_error(ServiceError("down"), "i"))


def test_patch_ops_are_the_smallest_change() -> None:
    current = {"a": "1", "b": "2", "c/d": "3"}
    assert patch_ops(current, {"a": "1", "b": "two", "e": "5"}, {"c/d", "zz"}) == [
        {"op": "replace", "path": "/b", "value": "two"},
        {"op": "add", "path": "/e", "value": "5"},
        {"op": "remove", "path": "/c~1d"}]
