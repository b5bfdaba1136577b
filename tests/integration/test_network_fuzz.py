"""No malformed request makes the network API answer 5xx, on SQLite and PostgreSQL.

In-process against the real database engines, like the identity fuzz test:
every route gets odd path values, and every body field gets odd values
(None, numbers, lists, NUL bytes, 70,000-character strings...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fuzz import requests_for
from helpers import Postgres
from network_api import ADMIN, ALICE, NetApi, in_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIELDS = {
    "network": ["name", "admin_state_up", "shared", "router:external", "provider:network_type",
                "provider:physical_network", "provider:segmentation_id", "mtu",
                "port_security_enabled", "project_id"],
    "subnet": ["network_id", "cidr", "ip_version", "gateway_ip", "allocation_pools",
               "dns_nameservers", "host_routes", "enable_dhcp", "name"],
    "port": ["network_id", "mac_address", "fixed_ips", "device_id", "device_owner",
             "security_groups", "allowed_address_pairs", "port_security_enabled",
             "binding:host_id", "name"],
    "router": ["external_gateway_info", "routes", "admin_state_up", "name", "subnet_id",
               "port_id"],
    "floatingip": ["floating_network_id", "port_id", "fixed_ip_address",
                   "floating_ip_address", "subnet_id"],
    "security_group": ["name", "stateful", "description"],
    "security_group_rule": ["security_group_id", "direction", "ethertype", "protocol",
                            "port_range_min", "port_range_max", "remote_ip_prefix",
                            "remote_group_id"],
    "quota": ["network", "port", "subnet"],
}
ENTITIES = {"security-groups": "security_group", "security-group-rules": "security_group_rule",
            "quotas": "quota", "floatingips": "floatingip", "add_router_interface": "router",
            "remove_router_interface": "router"}
EXTRA_VALUES = ["10.0.0.0/33", [{"x": 1}], 2**40]
SHAPED_ODD = [None, 7, True, {}, "\x00", "x" * 70000]


def entity_key(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    last = parts[-1] if parts else ""
    return ENTITIES.get(last, last[:-1] if last.endswith("s") else last)


def shaped(routes: list[Any], valid: dict[str, str]) -> Iterator[tuple[str, str, Any]]:
    # Bodies shaped like real ones, one field odd at a time, on real objects.
    for route in routes:
        methods = sorted((getattr(route, "methods", None) or set()) & {"POST", "PUT"})
        for method in methods:
            path = route.path
            for param, value in valid.items():
                path = path.replace("{" + param + "}", value)
            key = entity_key(route.path)
            for field in FIELDS.get(key, []):
                for value in [*SHAPED_ODD, *EXTRA_VALUES]:
                    yield method, path, {key: {**valid_body(key, valid), field: value}}
                    if route.path.endswith("_interface"):
                        yield method, path, {field: value}


def valid_body(key: str, valid: dict[str, str]) -> dict[str, Any]:
    return {
        "subnet": {"network_id": valid["network_id"], "cidr": "10.9.0.0/24"},
        "port": {"network_id": valid["network_id"]},
        "floatingip": {"floating_network_id": valid["external_id"]},
        "security_group_rule": {"security_group_id": valid["group_id"],
                                "direction": "ingress"},
    }.get(key, {})


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NetApi]:
    url = None
    if request.param == "postgresql":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"netfuzz_{os.getpid()}")
    with in_process(tmp_path, url=url, raise_server_exceptions=False) as api:
        yield api


def test_no_route_answers_5xx_to_malformed_requests(engine_api: NetApi) -> None:
    api = engine_api
    net = api.network(token=ALICE)
    api.subnet(net["id"], "10.0.0.0/24", ALICE)
    ext = api.network(**{"router:external": True, "provider:network_type": "flat",
                         "provider:physical_network": "public"})
    api.subnet(ext["id"], "172.24.4.0/24", enable_dhcp=False)
    group = api.ok("POST", "/v2.0/security-groups", ALICE,
                   json={"security_group": {"name": "g"}})["security_group"]
    sub = api.subnet(api.network(token=ALICE)["id"], "10.1.0.0/24", ALICE)
    port = api.port(net["id"], ALICE)
    router = api.router(ALICE)
    fip = api.ok("POST", "/v2.0/floatingips", ALICE, json={"floatingip": {
        "floating_network_id": ext["id"]}})["floatingip"]
    valid = {"network_id": net["id"], "external_id": ext["id"], "group_id": group["id"],
             "rule_id": "x", "alias": "router",
             "subnet_id": sub["id"], "port_id": port["id"], "router_id": router["id"],
             "floatingip_id": fip["id"], "project_id": "p-alice"}
    count = 0
    runs = [(ADMIN, list(requests_for(api.client.app.routes))),
            (ALICE, [r for r in requests_for(api.client.app.routes) if r[0] != "POST"]),
            (ADMIN, list(shaped(api.client.app.routes, valid)))]
    for token, requests in runs:
        for method, path, body in requests:
            content = None if body is None else json.dumps(body)
            params = {"sort_key": "\x00", "limit": "x", "fields": "a" * 300, "name": "\x00"}
            resp = api.call(method, path, token, content=content,
                            params=params if method == "GET" else None)
            count += 1
            assert resp.status_code < 500 or (resp.status_code == 503 and (
                "NoNetworkAvailable" in resp.text)), (method, path, body, resp.text)
            if resp.status_code >= 400 and method != "HEAD":
                assert resp.json()["NeutronError"]["message"], (method, path, body)
    assert count > 1500, count
    # The service still works normally afterwards.
    assert api.port(net["id"], ALICE)["fixed_ips"]
