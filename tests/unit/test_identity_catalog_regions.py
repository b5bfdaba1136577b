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
