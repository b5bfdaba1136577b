"""Deleting an external network that still holds floating IPs, as Neutron (and Tempest's
test_delete_external_networks_with_floating_ip) expect: unassociated ones go with it,
an associated one keeps the network in use (409 NetworkInUse)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from network_api import ADMIN, ALICE, NetApi, in_process
from stratus.network.core import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    settings = Settings(segment_ranges={"vxlan": [(100, 199)]})
    with in_process(tmp_path, settings) as client:
        yield client


def external(api: NetApi, cidr: str) -> dict:
    net = api.network(name="ext", **{"router:external": True,
                                     "provider:network_type": "flat",
                                     "provider:physical_network": "public"})
    api.subnet(net["id"], cidr, enable_dhcp=False)
    return net


def test_unassociated_floating_ips_go_with_the_network(api: NetApi) -> None:
    ext = external(api, "172.24.7.0/24")
    fip = api.ok("POST", "/v2.0/floatingips", ADMIN, json={"floatingip": {
        "floating_network_id": ext["id"]}})["floatingip"]
    assert api.call("DELETE", f"/v2.0/networks/{ext['id']}", ADMIN).status_code == 204
    assert api.call("GET", f"/v2.0/floatingips/{fip['id']}", ADMIN).status_code == 404
    assert api.ok("GET", f"/v2.0/ports?network_id={ext['id']}", ADMIN)["ports"] == []


def test_an_associated_floating_ip_keeps_the_network_in_use(api: NetApi) -> None:
    ext = external(api, "172.24.8.0/24")
    net = api.network(token=ALICE)
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    port = api.port(net["id"], ALICE)
    router = api.router(ALICE, external_gateway_info={"network_id": ext["id"]})
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
           json={"subnet_id": sub["id"]})
    fip = api.ok("POST", "/v2.0/floatingips", ALICE, json={"floatingip": {
        "floating_network_id": ext["id"], "port_id": port["id"]}})["floatingip"]
    busy = api.call("DELETE", f"/v2.0/networks/{ext['id']}", ADMIN)
    assert busy.status_code == 409
    assert busy.json()["NeutronError"]["type"] == "NetworkInUse"
    assert api.ok("GET", f"/v2.0/floatingips/{fip['id']}", ALICE)["floatingip"]["port_id"]
