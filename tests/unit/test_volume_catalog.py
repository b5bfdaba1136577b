"""The identity catalog renders Keystone's templated endpoint URLs with the token's project
(the volume API's catalog URL is ``http://<host>:8776/v3/%(project_id)s``)."""

from __future__ import annotations

import pytest

from identity_api import PASSWORD, Api
from stratus.identity.catalog import endpoint_url

pytestmark = pytest.mark.unit


def test_endpoint_url_substitutes_every_spelling() -> None:
    assert endpoint_url("http://h:8776/v3/%(project_id)s", "p1") == "http://h:8776/v3/p1"
    assert endpoint_url("http://h:8776/v3/$(project_id)s", "p1") == "http://h:8776/v3/p1"
    assert endpoint_url("http://h:8776/v2/%(tenant_id)s", "p1") == "http://h:8776/v2/p1"
    assert endpoint_url("http://h:8774/v2.1", None) == "http://h:8774/v2.1"
    assert endpoint_url("http://h:8776/v3/%(project_id)s", None) is None


def test_tokens_and_the_catalog_carry_the_project(api: Api) -> None:
    svc = api.create("service", type="block-storage", name="cinder")
    region = api.call("GET", "/v3/regions").json()["regions"][0]["id"]
    api.create("endpoint", service_id=svc["id"], interface="public", region_id=region,
               url="http://vol.test:8776/v3/%(project_id)s")
    # The endpoint list keeps the template; a scoped token's catalog renders it.
    listed = api.call("GET", "/v3/endpoints", params={"service_id": svc["id"]}).json()
    assert listed["endpoints"][0]["url"].endswith("/v3/%(project_id)s")
    resp = api.issue("admin", PASSWORD, "admin")
    project = resp.json()["token"]["project"]["id"]
    for catalog in (resp.json()["token"]["catalog"],
                    api.call("GET", "/v3/auth/catalog").json()["catalog"]):
        entry = next(s for s in catalog if s["type"] == "block-storage")
        assert [e["url"] for e in entry["endpoints"]] == [f"http://vol.test:8776/v3/{project}"]
