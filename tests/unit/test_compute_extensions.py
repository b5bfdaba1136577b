"""GET /v2.1/extensions[/{alias}]: the list in Tempest's schema, Tempest's
test_extensions checks, and every listed collection alias really served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_compute_schemas import check

from compute_api import ADMIN, ALICE, ComputeApi, in_process

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


@pytest.mark.parametrize("version", ["2.1", "2.96"])
def test_list_and_show_as_tempest(api: ComputeApi, version: str) -> None:
    body = check(api.call("GET", "/v2.1/extensions", ALICE, version=version), "extensions",
                 "list_extensions", version)
    names = [x["name"] for x in body["extensions"]]
    assert "Hosts" in names  # Tempest's test_list_extensions
    aliases = [x["alias"] for x in body["extensions"]]
    assert len(aliases) == len(set(aliases))
    shown = api.ok("GET", "/v2.1/extensions/os-consoles", ALICE, version=version)
    assert shown["extension"]["alias"] == "os-consoles"  # Tempest's test_get_extension
    assert shown["extension"] == next(x for x in body["extensions"]
                                      if x["alias"] == "os-consoles")


def test_an_alias_not_served_is_404(api: ComputeApi) -> None:
    for alias in ("os-rescue", "os-shelve", "os-evacuate", "nonsense"):
        resp = api.call("GET", f"/v2.1/extensions/{alias}", ALICE)
        assert resp.status_code == 404 and alias in resp.text


# the collection each listed alias names, answered (not 404) by this API
COLLECTIONS = {
    "os-aggregates": "/v2.1/os-aggregates", "os-availability-zone": "/v2.1/os-availability-zone",
    "os-hosts": "/v2.1/os-hosts", "os-hypervisors": "/v2.1/os-hypervisors",
    "os-keypairs": "/v2.1/os-keypairs", "os-quota-sets": "/v2.1/os-quota-sets/p-alice",
    "os-quota-class-sets": "/v2.1/os-quota-class-sets/default",
    "os-server-groups": "/v2.1/os-server-groups", "os-services": "/v2.1/os-services",
    "os-simple-tenant-usage": "/v2.1/os-simple-tenant-usage",
    "os-migrations": "/v2.1/os-migrations",
    "os-instance_usage_audit_log": "/v2.1/os-instance_usage_audit_log",
    "os-used-limits": "/v2.1/limits", "os-flavor-manage": "/v2.1/flavors",
}


def test_listed_collections_are_served(api: ComputeApi) -> None:
    listed = {x["alias"] for x in api.ok("GET", "/v2.1/extensions", ALICE)["extensions"]}
    assert set(COLLECTIONS) <= listed
    for alias, path in COLLECTIONS.items():
        resp = api.call("GET", path, ADMIN, version="2.1")
        assert resp.status_code == 200, (alias, path, resp.status_code, resp.text)
