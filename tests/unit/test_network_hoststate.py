"""The host-state extension: what a host's network agent gets, in the agent's own model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from network_api import ADMIN, ALICE, NetApi, in_process
from stratus.agent.network_model import HostState

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as client:
        yield client


def test_host_state_for_a_compute_host_and_a_network_node(api: NetApi) -> None:
    ext = api.network(name="public", **{"router:external": True,
                                        "provider:network_type": "flat",
                                        "provider:physical_network": "public"})
    api.subnet(ext["id"], "172.24.4.0/24", enable_dhcp=False)
    net = api.network(token=ALICE, name="app")
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE, dns_nameservers=["10.0.0.1"])
    vm1 = api.port(net["id"], ALICE)
    vm2 = api.port(net["id"], ALICE)
    for port, host in ((vm1, "cmp1"), (vm2, "cmp2")):
        api.ok("PUT", f"/v2.0/ports/{port['id']}", json={"port": {
            "binding:host_id": host, "device_owner": "compute:nova", "device_id": "vm"}})
    router = api.router(ALICE, external_gateway_info={"network_id": ext["id"]})
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
           json={"subnet_id": sub["id"]})
    fip = api.ok("POST", "/v2.0/floatingips", ALICE, json={"floatingip": {
        "floating_network_id": ext["id"], "port_id": vm1["id"]}})["floatingip"]
    for host, ip, node in (("cmp1", "192.0.2.11", False), ("cmp2", "192.0.2.12", False),
                           ("net1", "192.0.2.10", True)):
        api.ok("PUT", f"/v2.0/stratus-agent/hosts/{host}", json={"host": {
            "underlay_ip": ip, "network_node": node}})

    doc = api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1")
    state = HostState.from_dict(doc)  # what the agent does with it
    assert state.host == "cmp1" and state.tunnel_peers == ["192.0.2.10", "192.0.2.12"]
    assert [p.id for p in state.ports] == [vm1["id"]]
    port = state.ports[0]
    assert port.mac_address == vm1["mac_address"] and port.ips == [
        vm1["fixed_ips"][0]["ip_address"]]
    assert [n.id for n in state.networks] == [net["id"]]
    assert state.networks[0].segmentation_type == "vxlan" and state.networks[0].mtu == 1450
    assert state.dhcp_servers == [] and state.routers == []
    group = state.security_group(port.security_groups[0])
    assert group is not None and group.name == "default"
    # The default group's members (both VMs) are resolved for its remote-group rules.
    assert sorted(group.member_ips) == sorted(
        p["fixed_ips"][0]["ip_address"] for p in (vm1, vm2))

    node = HostState.from_dict(api.ok("GET", "/v2.0/stratus/host-state",
                                      params={"host": "net1"}))
    assert node.ports == [] and {n.id for n in node.networks} == {net["id"], ext["id"]}
    dhcp = node.dhcp_servers[0]
    assert dhcp.network_id == net["id"] and dhcp.fixed_ips[0].ip_address == "10.0.0.2"
    leases = {h.mac_address: h.ip_address for h in dhcp.hosts}
    assert leases[vm1["mac_address"]] == vm1["fixed_ips"][0]["ip_address"]
    (r,) = node.routers
    assert r.id == router["id"] and r.enable_snat
    assert [i.ip_address for i in r.interfaces] == ["10.0.0.1"] and r.interfaces[0].prefixlen == 24
    assert r.gateway is not None and r.gateway.network_id == ext["id"]
    assert [(f.floating_ip_address, f.fixed_ip_address) for f in r.floating_ips] == [
        (fip["floating_ip_address"], vm1["fixed_ips"][0]["ip_address"])]
    hosts = api.ok("GET", "/v2.0/stratus-agent/hosts")["hosts"]
    assert [(h["host"], h["underlay_ip"], h["network_node"]) for h in hosts] == [
        ("cmp1", "192.0.2.11", False), ("cmp2", "192.0.2.12", False), ("net1", "192.0.2.10", True)]
    assert api.call("GET", "/v2.0/stratus-agent/hosts", ALICE).status_code == 403
    # An agent that only polls registers itself with the query.
    polled = api.ok("GET", "/v2.0/stratus/host-state", params={
        "host": "cmp3", "underlay_ip": "192.0.2.13", "network_node": "false"})
    assert "192.0.2.13" not in polled["tunnel_peers"]
    assert "192.0.2.13" in api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1")["tunnel_peers"]
    # Overriding the role for one call.
    assert api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1",
                  params={"network_node": "true"})["routers"]


def test_host_state_is_admin_only_and_checks_input(api: NetApi) -> None:
    assert api.call("GET", "/v2.0/stratus-agent/hosts/cmp1", ALICE).status_code == 403
    assert api.call("PUT", "/v2.0/stratus-agent/hosts/cmp1", ALICE, json={"host": {
        "underlay_ip": "192.0.2.1"}}).status_code == 403
    assert api.call("PUT", "/v2.0/stratus-agent/hosts/cmp1", ADMIN, json={"host": {
        "underlay_ip": "nope"}}).status_code == 400
    assert api.call("GET", "/v2.0/stratus/host-state", ADMIN).status_code == 400
    empty = HostState.from_dict(api.ok("GET", "/v2.0/stratus-agent/hosts/nobody"))
    assert empty.ports == [] and empty.networks == []


def test_port_status_follows_the_agent_reports(api: NetApi) -> None:
    net = api.network(token=ALICE, name="app")
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    vm1, vm2 = api.port(net["id"], ALICE), api.port(net["id"], ALICE)
    assert vm1["status"] == "DOWN"
    for port in (vm1, vm2):
        bound = api.ok("PUT", f"/v2.0/ports/{port['id']}", json={"port": {
            "binding:host_id": "cmp1", "device_owner": "compute:nova", "device_id": "vm"}})
        assert bound["port"]["status"] == "DOWN"  # bound, but not plugged yet

    def status(port_id: str) -> str:
        return str(api.ok("GET", f"/v2.0/ports/{port_id}", ALICE)["port"]["status"])

    def report(host: str, active: list[str], down: list[str]) -> dict[str, list[str]]:
        return dict(api.ok("PUT", f"/v2.0/stratus-agent/hosts/{host}/ports", json={
            "ports": {"active": active, "down": down}})["ports"])

    # Another host cannot make cmp1's port ACTIVE.
    assert report("cmp2", [vm1["id"]], []) == {"active": [], "down": []}
    assert status(vm1["id"]) == "DOWN"
    assert report("cmp1", [vm1["id"]], [vm2["id"]]) == {"active": [vm1["id"]], "down": []}
    assert status(vm1["id"]) == "ACTIVE" and status(vm2["id"]) == "DOWN"
    # Level-triggered: the same report changes nothing; a port left out goes DOWN.
    assert report("cmp1", [vm1["id"]], []) == {"active": [], "down": []}
    assert report("cmp1", [vm2["id"]], []) == {"active": [vm2["id"]], "down": [vm1["id"]]}
    # Administratively down or moved to another host: DOWN until that host reports it.
    assert api.ok("PUT", f"/v2.0/ports/{vm2['id']}", ALICE, json={"port": {
        "admin_state_up": False}})["port"]["status"] == "DOWN"
    report("cmp1", [vm2["id"]], [])
    assert status(vm2["id"]) == "DOWN"
    report("cmp1", [vm1["id"]], [])
    moved = api.ok("PUT", f"/v2.0/ports/{vm1['id']}", json={"port": {"binding:host_id": "cmp2"}})
    assert moved["port"]["status"] == "DOWN"
    report("cmp1", [vm1["id"]], [])
    assert status(vm1["id"]) == "DOWN"
    report("cmp2", [vm1["id"]], [])
    assert status(vm1["id"]) == "ACTIVE"

    # DHCP and router ports: only a registered network node reports them.
    router = api.router(ALICE)
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
           json={"subnet_id": sub["id"]})
    infra = [p["id"] for p in api.ok("GET", "/v2.0/ports", params={
        "network_id": net["id"], "device_owner": ["network:dhcp", "network:router_interface"]}
        )["ports"]]
    assert len(infra) == 2
    report("cmp1", infra, [])
    assert {status(i) for i in infra} == {"DOWN"}
    api.ok("PUT", "/v2.0/stratus-agent/hosts/net1", json={"host": {"network_node": True}})
    assert sorted(report("net1", infra, [])["active"]) == sorted(infra)
    assert {status(i) for i in infra} == {"ACTIVE"}
    assert report("net1", [], infra[:1])["down"] == infra[:1]
    assert status(vm1["id"]) == "ACTIVE"  # a network node's report leaves cmp2's ports alone

    body: object
    for body in ({"ports": {"active": "x"}}, {"ports": {"up": []}}, {"active": []},
                 {"ports": {"active": [1]}}):
        bad = api.call("PUT", "/v2.0/stratus-agent/hosts/cmp1/ports", ADMIN, json=body)
        assert bad.status_code == 400, body
    assert api.call("PUT", "/v2.0/stratus-agent/hosts/cmp1/ports", ALICE, json={
        "ports": {"active": []}}).status_code == 403
