"""Subnet pools in-process: the pool resource, subnets allocated from it, Neutron's errors."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from network_api import ADMIN, ALICE, BOB, READER, NetApi, in_process
from stratus.network.subnetpools import first_fit, free_blocks

pytestmark = pytest.mark.unit

N = ipaddress.IPv4Network


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as client:
        yield client


def err(resp: Any, status: int) -> dict[str, str]:
    assert resp.status_code == status, resp.text
    return dict(resp.json()["NeutronError"])


def pool(api: NetApi, token: str = ALICE, **attrs: Any) -> dict[str, Any]:
    body = {"name": "pool", "prefixes": ["10.10.0.0/16"], **attrs}
    return dict(api.ok("POST", "/v2.0/subnetpools", token, json={"subnetpool": body})
                ["subnetpool"])


def from_pool(api: NetApi, net_id: str, pool_id: str | None, token: str = ALICE,
              **attrs: Any) -> Any:
    body: dict[str, Any] = {"network_id": net_id, "ip_version": 4, **attrs}
    if pool_id:
        body["subnetpool_id"] = pool_id
    return api.call("POST", "/v2.0/subnets", token, json={"subnet": body})


def test_first_fit_takes_the_lowest_free_aligned_block() -> None:
    prefixes = [N("10.0.0.0/24")]
    assert first_fit(prefixes, [], 26) == N("10.0.0.0/26")
    assert first_fit(prefixes, [N("10.0.0.0/26")], 26) == N("10.0.0.64/26")
    assert first_fit(prefixes, [N("10.0.0.64/26")], 25) == N("10.0.0.128/25")
    assert first_fit(prefixes, [N("10.0.0.0/25"), N("10.0.0.128/25")], 28) is None
    assert free_blocks([N("10.0.0.0/24")], [N("10.0.0.0/24")]) == []
    assert free_blocks([N("10.0.0.0/24")], [N("10.1.0.0/24")]) == [N("10.0.0.0/24")]


def test_pool_shape_defaults_and_merged_prefixes(api: NetApi) -> None:
    p = pool(api, prefixes=["10.11.1.0/24", "10.11.0.0/24", "10.11.0.128/25"])
    assert p["prefixes"] == ["10.11.0.0/23"]  # merged, as Neutron stores them
    assert (p["min_prefixlen"], p["default_prefixlen"], p["max_prefixlen"]) == (8, 8, 32)
    assert p["ip_version"] == 4 and p["shared"] is False and p["is_default"] is False
    assert p["address_scope_id"] is None and p["default_quota"] is None
    assert p["project_id"] == p["tenant_id"] == "p-alice"
    assert {"created_at", "updated_at", "revision_number", "description", "tags"} <= set(p)
    shown = api.ok("GET", f"/v2.0/subnetpools/{p['id']}", ALICE)["subnetpool"]
    assert shown == p
    assert api.ok("GET", f"/v2.0/subnetpools/{p['id']}?fields=name", ALICE) == {
        "subnetpool": {"name": "pool"}}
    listed = api.ok("GET", "/v2.0/subnetpools?name=pool", ALICE)["subnetpools"]
    assert [x["id"] for x in listed] == [p["id"]]


def test_subnets_take_their_cidr_from_the_pool(api: NetApi) -> None:
    p = pool(api, prefixes=["10.20.0.0/24"], min_prefixlen=26, default_prefixlen=26,
             max_prefixlen=28)
    net = api.network(token=ALICE)
    cidrs = []
    for _ in range(4):
        resp = from_pool(api, net["id"], p["id"])
        assert resp.status_code == 201, resp.text
        sub = resp.json()["subnet"]
        assert sub["subnetpool_id"] == p["id"]
        cidrs.append(sub["cidr"])
    assert cidrs == ["10.20.0.0/26", "10.20.0.64/26", "10.20.0.128/26", "10.20.0.192/26"]
    e = err(from_pool(api, net["id"], p["id"]), 409)
    assert e["type"] == "SubnetAllocationError" and "Insufficient prefix space" in e["message"]
    # Deleting one frees its block; a smaller prefixlen fits there.
    first = api.ok("GET", "/v2.0/subnets?cidr=10.20.0.64/26", ALICE)["subnets"][0]
    api.ok("DELETE", f"/v2.0/subnets/{first['id']}", ALICE)
    resp = from_pool(api, net["id"], p["id"], prefixlen=28)
    assert resp.json()["subnet"]["cidr"] == "10.20.0.64/28"
    # An explicit cidr inside the pool, free: taken as asked.
    resp = from_pool(api, net["id"], p["id"], cidr="10.20.0.80/28")
    assert resp.status_code == 201 and resp.json()["subnet"]["cidr"] == "10.20.0.80/28"


@pytest.mark.parametrize(("attrs", "status", "words"), [
    ({"prefixlen": 24}, 400, "allocates /26 to /28"),
    ({"prefixlen": 30}, 400, "allocates /26 to /28"),
    ({"prefixlen": "x"}, 400, "prefixlen"),
    ({"cidr": "192.168.0.0/26"}, 400, "Cannot allocate requested subnet"),
    ({"cidr": "10.20.0.0/26", "prefixlen": 26}, 400, "cannot both"),
    ({"use_default_subnetpool": True}, 400, "cannot both"),
])
def test_bad_allocation_requests(api: NetApi, attrs: dict[str, Any], status: int,
                                 words: str) -> None:
    p = pool(api, prefixes=["10.20.0.0/24"], min_prefixlen=26, default_prefixlen=26,
             max_prefixlen=28)
    net = api.network(token=ALICE)
    assert words in err(from_pool(api, net["id"], p["id"], **attrs), status)["message"]
    assert api.ok("GET", "/v2.0/subnets", ALICE)["subnets"] == []


def test_overlapping_explicit_cidr_and_missing_pool(api: NetApi) -> None:
    p = pool(api, prefixes=["10.20.0.0/24"], min_prefixlen=24)
    net = api.network(token=ALICE)
    other = api.network(token=ALICE)
    assert from_pool(api, net["id"], p["id"]).status_code == 201
    e = err(from_pool(api, other["id"], p["id"], cidr="10.20.0.0/24"), 409)
    assert "overlaps" in e["message"]
    assert err(from_pool(api, net["id"], "no-such-pool"), 404)["type"] == "SubnetPoolNotFound"
    assert "'cidr' is required" in err(from_pool(api, net["id"], None), 400)["message"]
    assert "only used with subnetpool_id" in err(
        from_pool(api, net["id"], None, prefixlen=24, cidr="10.9.0.0/24"), 400)["message"]


def test_default_pool_is_admin_only_one_per_family_and_used_on_request(api: NetApi) -> None:
    resp = api.call("POST", "/v2.0/subnetpools", ALICE,
                    json={"subnetpool": {"name": "d", "prefixes": ["10.30.0.0/16"],
                                         "is_default": True}})
    assert resp.status_code == 403
    net = api.network(token=ALICE)
    assert "No default subnetpool" in err(
        from_pool(api, net["id"], None, use_default_subnetpool=True), 400)["message"]
    d = pool(api, ADMIN, prefixes=["10.30.0.0/16"], default_prefixlen=24, is_default=True,
             shared=True)
    assert d["is_default"] is True and d["shared"] is True
    e = err(api.call("POST", "/v2.0/subnetpools", ADMIN, json={"subnetpool": {
        "name": "d2", "prefixes": ["10.31.0.0/16"], "is_default": True}}), 400)
    assert "Only one default" in e["message"]
    resp = from_pool(api, net["id"], None, use_default_subnetpool=True)
    assert resp.status_code == 201, resp.text
    assert resp.json()["subnet"]["cidr"] == "10.30.0.0/24"
    assert resp.json()["subnet"]["subnetpool_id"] == d["id"]
    # A shared pool is visible to every project; only the admin may share one.
    assert [x["id"] for x in api.ok("GET", "/v2.0/subnetpools", BOB)["subnetpools"]] == [d["id"]]
    assert api.call("POST", "/v2.0/subnetpools", BOB, json={"subnetpool": {
        "prefixes": ["10.40.0.0/16"], "shared": True}}).status_code == 403


def test_pools_of_other_projects_are_invisible(api: NetApi) -> None:
    p = pool(api)
    assert api.ok("GET", "/v2.0/subnetpools", BOB)["subnetpools"] == []
    for method in ("GET", "PUT", "DELETE"):
        kw = {"json": {"subnetpool": {"name": "x"}}} if method == "PUT" else {}
        resp = api.call(method, f"/v2.0/subnetpools/{p['id']}", BOB, **kw)
        assert err(resp, 404)["type"] == "SubnetPoolNotFound"
    net = api.network(token=BOB)
    assert err(from_pool(api, net["id"], p["id"], BOB), 404)["type"] == "SubnetPoolNotFound"
    assert api.call("POST", "/v2.0/subnetpools", READER, json={"subnetpool": {
        "prefixes": ["10.50.0.0/16"]}}).status_code == 403


def test_update_grows_prefixes_and_checks_bounds(api: NetApi) -> None:
    p = pool(api, prefixes=["10.60.0.0/24"], min_prefixlen=24)
    url = f"/v2.0/subnetpools/{p['id']}"
    up = api.ok("PUT", url, ALICE, json={"subnetpool": {
        "prefixes": ["10.60.0.0/24", "10.61.0.0/24"], "name": "grown", "max_prefixlen": 28,
        "default_prefixlen": 26}})["subnetpool"]
    assert up["prefixes"] == ["10.60.0.0/24", "10.61.0.0/24"] and up["name"] == "grown"
    assert (up["min_prefixlen"], up["default_prefixlen"], up["max_prefixlen"]) == (24, 26, 28)
    assert up["revision_number"] == p["revision_number"] + 1
    e = err(api.call("PUT", url, ALICE, json={"subnetpool": {"prefixes": ["10.61.0.0/24"]}}),
            400)
    assert e["type"] == "IllegalSubnetPoolPrefixUpdate"
    e = err(api.call("PUT", url, ALICE, json={"subnetpool": {"min_prefixlen": 30}}), 400)
    assert e["type"] == "IllegalSubnetPoolPrefixBounds"
    for body in ({"shared": True}, {"ip_version": 4}, {"address_scope_id": "x"},
                 {"bogus": 1}):
        assert api.call("PUT", url, ALICE, json={"subnetpool": body}).status_code == 400
    assert api.ok("GET", url, ALICE)["subnetpool"]["prefixes"] == up["prefixes"]


def test_delete_refused_while_subnets_were_allocated(api: NetApi) -> None:
    p = pool(api, prefixes=["10.70.0.0/24"], min_prefixlen=24)
    net = api.network(token=ALICE)
    sub = from_pool(api, net["id"], p["id"]).json()["subnet"]
    e = err(api.call("DELETE", f"/v2.0/subnetpools/{p['id']}", ALICE), 409)
    assert e["type"] == "SubnetPoolInUse"
    assert "Cannot update read-only attribute subnetpool_id" in err(api.call(
        "PUT", f"/v2.0/subnets/{sub['id']}", ALICE,
        json={"subnet": {"subnetpool_id": None}}), 400)["message"]
    api.ok("DELETE", f"/v2.0/subnets/{sub['id']}", ALICE)
    api.ok("DELETE", f"/v2.0/subnetpools/{p['id']}", ALICE)
    assert api.call("GET", f"/v2.0/subnetpools/{p['id']}", ALICE).status_code == 404


@pytest.mark.parametrize("body", [
    {},
    {"subnetpool": {"name": "no-prefixes"}},
    {"subnetpool": {"prefixes": []}},
    {"subnetpool": {"prefixes": "10.0.0.0/8"}},
    {"subnetpool": {"prefixes": ["10.0.0.1/8"]}},
    {"subnetpool": {"prefixes": ["10.0.0.0/8", "2001:db8::/48"]}},  # one family per pool
    {"subnetpool": {"prefixes": ["2001:db8::/48"], "ip_version": 4}},
    {"subnetpool": {"prefixes": ["2001:db8::/48"], "min_prefixlen": 129}},
    {"subnetpool": {"prefixes": ["10.0.0.0/8"], "ip_version": 6}},
    {"subnetpool": {"prefixes": ["10.0.0.0/8"], "min_prefixlen": 33}},
    {"subnetpool": {"prefixes": ["10.0.0.0/8"], "min_prefixlen": True}},
    {"subnetpool": {"prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "max_prefixlen": 16}},
    {"subnetpool": {"prefixes": ["10.0.0.0/8"], "default_prefixlen": 4}},
    {"subnetpool": {"prefixes": ["10.0.0.0/8"], "default_quota": 5}},
    {"subnetpool": {"prefixes": [None]}},
    {"subnetpool": {"prefixes": ["10.0.0.0/8"], "name": 5}},
])
def test_bad_pool_bodies_are_400(api: NetApi, body: dict[str, Any]) -> None:
    resp = api.call("POST", "/v2.0/subnetpools", ALICE, json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["NeutronError"]["message"]
    assert api.ok("GET", "/v2.0/subnetpools", ALICE)["subnetpools"] == []


def test_ipv6_pool_allocates_64s_and_is_its_familys_default(api: NetApi) -> None:
    """Issue 12: IPv6 pools (Neutron's bounds /64-/128, so /64s unless asked otherwise)."""
    v6 = pool(api, prefixes=["2001:db8:100::/56", "2001:db8:100:100::/56"])
    assert v6["ip_version"] == 6 and v6["prefixes"] == ["2001:db8:100::/55"]  # merged
    assert (v6["min_prefixlen"], v6["default_prefixlen"], v6["max_prefixlen"]) == (64, 64, 128)
    net = api.network(token=ALICE)
    got = []
    for attrs in ({}, {}, {"prefixlen": 80}):
        resp = from_pool(api, net["id"], v6["id"], ip_version=6, **attrs)
        assert resp.status_code == 201, resp.text
        got.append(resp.json()["subnet"]["cidr"])
    assert got == ["2001:db8:100::/64", "2001:db8:100:1::/64", "2001:db8:100:2::/80"]
    sub = from_pool(api, net["id"], v6["id"], ip_version=6, prefixlen=64,
                    ipv6_ra_mode="slaac", ipv6_address_mode="slaac").json()["subnet"]
    assert sub["cidr"] == "2001:db8:100:3::/64" and sub["gateway_ip"] == "2001:db8:100:3::1"
    assert "IPv6" in err(from_pool(api, net["id"], v6["id"]), 400)["message"]  # ip_version 4
    assert err(from_pool(api, net["id"], v6["id"], ip_version=6, prefixlen=48), 400)[
        "type"] == "SubnetAllocationError"
    # one default per family: an IPv4 default and an IPv6 default live side by side
    pool(api, ADMIN, prefixes=["10.20.0.0/16"], is_default=True)
    pool(api, ADMIN, prefixes=["2001:db8:200::/48"], is_default=True, shared=True)
    resp = from_pool(api, net["id"], None, use_default_subnetpool=True, ip_version=6)
    assert resp.status_code == 201, resp.text
    assert resp.json()["subnet"]["cidr"] == "2001:db8:200::/64"
    resp = api.call("PUT", f"/v2.0/subnetpools/{v6['id']}", ALICE, json={"subnetpool": {
        "prefixes": ["10.0.0.0/8"]}})
    assert err(resp, 400)["type"] == "PrefixVersionMismatch"
