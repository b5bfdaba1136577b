"""The network API in-process: behaviour Neutron clients rely on, and project isolation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from network_api import ADMIN, ALICE, BOB, READER, NetApi, in_process
from stratus.network.core import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    settings = Settings(segment_ranges={"vxlan": [(100, 199)], "gre": [(1, 5)]})
    with in_process(tmp_path, settings) as client:
        yield client


def err(resp: Any) -> dict[str, str]:
    return resp.json()["NeutronError"]


def public(api: NetApi, cidr: str = "172.24.4.0/24") -> tuple[dict, dict]:
    net = api.network(name="public", **{"router:external": True,
                                        "provider:network_type": "flat",
                                        "provider:physical_network": "public"})
    return net, api.subnet(net["id"], cidr, enable_dhcp=False)


# ---- discovery and auth ----------------------------------------------------------------

def test_version_discovery_and_extensions(api: NetApi) -> None:
    versions = api.client.get("/").json()["versions"]
    assert versions[0]["id"] == "v2.0" and versions[0]["status"] == "CURRENT"
    assert versions[0]["links"][0]["href"] == "http://network.test:9696/v2.0/"
    aliases = {e["alias"] for e in api.ok("GET", "/v2.0/extensions")["extensions"]}
    assert {"router", "external-net", "provider", "security-group", "port-security",
            "binding", "quotas", "allowed-address-pairs", "ext-gw-mode"} <= aliases
    assert api.ok("GET", "/v2.0/extensions/router")["extension"]["alias"] == "router"
    assert api.call("GET", "/v2.0/extensions/nope").status_code == 404


def test_a_missing_or_bad_token_is_401(api: NetApi) -> None:
    resp = api.client.get("/v2.0/networks")
    assert resp.status_code == 401 and err(resp)["type"] == "Unauthorized"
    assert api.call("GET", "/v2.0/networks", "bogus").status_code == 401


# ---- networks --------------------------------------------------------------------------

def test_tenant_network_gets_a_segment_from_the_range_and_the_tunnel_mtu(tmp_path: Path) -> None:
    settings = Settings(segment_ranges={"vxlan": [(100, 102)], "gre": [(1, 5)]})
    with in_process(tmp_path, settings) as api:
        segments_from_range(api)


def segments_from_range(api: NetApi) -> None:
    nets = [api.network(token=ALICE, name=f"n{i}") for i in range(3)]
    assert all("provider:segmentation_id" not in n for n in nets)  # hidden from tenants
    segs = [api.ok("GET", f"/v2.0/networks/{n['id']}")["network"] for n in nets]
    assert sorted(s["provider:segmentation_id"] for s in segs) == [100, 101, 102]
    assert {s["provider:network_type"] for s in segs} == {"vxlan"}
    assert {s["mtu"] for s in segs} == {1450}
    # The range is exhausted: Neutron's 503 NoNetworkAvailable.
    resp = api.call("POST", "/v2.0/networks", ALICE, json={"network": {"name": "n4"}})
    assert resp.status_code == 503 and err(resp)["type"] == "NoNetworkAvailable"
    # Deleting one frees its segment for the next network.
    api.ok("DELETE", f"/v2.0/networks/{nets[1]['id']}", ALICE)
    again = api.network(name="again")
    assert again["provider:segmentation_id"] == segs[1]["provider:segmentation_id"]


def test_provider_options_are_checked(api: NetApi) -> None:
    gre = api.network(**{"provider:network_type": "gre"})
    assert gre["mtu"] == 1458 and 1 <= gre["provider:segmentation_id"] <= 5
    fixed = api.network(**{"provider:network_type": "vxlan", "provider:segmentation_id": 5000})
    assert fixed["provider:segmentation_id"] == 5000
    dup = api.call("POST", "/v2.0/networks", json={"network": {
        "provider:network_type": "vxlan", "provider:segmentation_id": 5000}})
    assert dup.status_code == 409 and "5000 is in use" in err(dup)["message"]
    no_physnet = api.call("POST", "/v2.0/networks", json={"network": {
        "provider:network_type": "flat"}})
    assert no_physnet.status_code == 400 and "physical_network required" in err(
        no_physnet)["message"]
    public(api)
    again = api.call("POST", "/v2.0/networks", json={"network": {
        "provider:network_type": "flat", "provider:physical_network": "public"}})
    assert again.status_code == 409 and err(again)["type"] == "FlatNetworkInUse"
    bad_type = api.call("POST", "/v2.0/networks", json={"network": {
        "provider:network_type": "vlan"}})
    assert bad_type.status_code == 400 and "vlan" in err(bad_type)["message"]
    big = api.call("POST", "/v2.0/networks", json={"network": {"mtu": 1500}})
    assert big.status_code == 400 and "maximum is 1450" in err(big)["message"]
    for attrs in ({"provider:network_type": "gre"}, {"shared": True},
                  {"router:external": True}):
        assert api.call("POST", "/v2.0/networks", ALICE,
                        json={"network": attrs}).status_code == 403
    unknown = api.call("POST", "/v2.0/networks", json={"network": {"colour": "red"}})
    assert unknown.status_code == 400 and "colour" in err(unknown)["message"]


def test_bulk_create_is_all_or_nothing(api: NetApi) -> None:
    made = api.ok("POST", "/v2.0/networks", ALICE, json={"networks": [
        {"name": "b1"}, {"name": "b2"}]})["networks"]
    assert [n["name"] for n in made] == ["b1", "b2"]
    resp = api.call("POST", "/v2.0/networks", ADMIN, json={"networks": [
        {"name": "b3"}, {"name": "b4", "mtu": 99999}]})
    assert resp.status_code == 400
    names = {n["name"] for n in api.ok("GET", "/v2.0/networks", ADMIN)["networks"]}
    assert names == {"b1", "b2"}
    subs = api.ok("POST", "/v2.0/subnets", ALICE, json={"subnets": [
        {"network_id": made[0]["id"], "cidr": "10.1.0.0/24"},
        {"network_id": made[1]["id"], "cidr": "10.2.0.0/24"}]})["subnets"]
    ports = api.ok("POST", "/v2.0/ports", ALICE, json={"ports": [
        {"network_id": made[0]["id"]}, {"network_id": made[1]["id"]}]})["ports"]
    assert [p["fixed_ips"][0]["subnet_id"] for p in ports] == [s["id"] for s in subs]


def test_network_update_and_delete_in_use(api: NetApi) -> None:
    net = api.network(token=ALICE)
    upd = api.ok("PUT", f"/v2.0/networks/{net['id']}", ALICE, json={"network": {
        "name": "renamed", "port_security_enabled": False}})["network"]
    assert upd["name"] == "renamed" and upd["revision_number"] == 2
    assert api.call("PUT", f"/v2.0/networks/{net['id']}", ALICE, json={"network": {
        "shared": True}}).status_code == 403
    api.subnet(net["id"], "10.0.0.0/24", ALICE)
    port = api.port(net["id"], ALICE)
    assert port["port_security_enabled"] is False and port["security_groups"] == []
    busy = api.call("DELETE", f"/v2.0/networks/{net['id']}", ALICE)
    assert busy.status_code == 409 and err(busy)["type"] == "NetworkInUse"
    api.ok("DELETE", f"/v2.0/ports/{port['id']}", ALICE)
    api.ok("DELETE", f"/v2.0/networks/{net['id']}", ALICE)  # the DHCP port goes with it
    assert api.ok("GET", "/v2.0/ports")["ports"] == []


# ---- subnets ---------------------------------------------------------------------------

def test_subnet_validation_messages(api: NetApi) -> None:
    net = api.network(token=ALICE)

    def bad(**attrs: Any) -> str:
        body = {"network_id": net["id"], "cidr": "10.0.0.0/24", **attrs}
        resp = api.call("POST", "/v2.0/subnets", ALICE, json={"subnet": body})
        assert resp.status_code == 400, resp.text
        return err(resp)["message"]

    assert bad(cidr="10.0.0.0/33") == "cidr 10.0.0.0/33 is not a valid IPv4 network."
    assert "needs an IPv6 one" in bad(ip_version=6)
    assert "is not inside the subnet" in bad(gateway_ip="10.9.9.9")
    assert "conflicts with allocation pool" in bad(
        gateway_ip="10.0.0.5", allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.9"}])
    assert "dns nameserver 'x'" in bad(dns_nameservers=["x"])
    assert "duplicate" in bad(dns_nameservers=["1.1.1.1", "1.1.1.1"])
    assert "host route destination" in bad(host_routes=[{"destination": "1.2.3.4",
                                                         "nexthop": "10.0.0.1"}])
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE, gateway_ip=None,
                     dns_nameservers=["10.0.0.1"],
                     host_routes=[{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}])
    assert sub["gateway_ip"] is None
    assert sub["allocation_pools"] == [{"start": "10.0.0.1", "end": "10.0.0.254"}]
    assert "overlaps with another subnet" in bad(cidr="10.0.0.128/25")


def test_subnet_update_and_delete_in_use(api: NetApi) -> None:
    net = api.network(token=ALICE)
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    upd = api.ok("PUT", f"/v2.0/subnets/{sub['id']}", ALICE, json={"subnet": {
        "allocation_pools": [{"start": "10.0.0.100", "end": "10.0.0.110"}],
        "dns_nameservers": ["9.9.9.9"], "name": "s"}})["subnet"]
    assert upd["allocation_pools"] == [{"start": "10.0.0.100", "end": "10.0.0.110"}]
    ro = api.call("PUT", f"/v2.0/subnets/{sub['id']}", ALICE, json={"subnet": {
        "cidr": "10.0.1.0/24"}})
    assert ro.status_code == 400 and "read-only attribute cidr" in err(ro)["message"]
    port = api.port(net["id"], ALICE)
    assert port["fixed_ips"][0]["ip_address"].startswith("10.0.0.1")
    busy = api.call("DELETE", f"/v2.0/subnets/{sub['id']}", ALICE)
    assert busy.status_code == 409 and err(busy)["type"] == "SubnetInUse"
    api.ok("DELETE", f"/v2.0/ports/{port['id']}", ALICE)
    api.ok("DELETE", f"/v2.0/subnets/{sub['id']}", ALICE)


# ---- ports -----------------------------------------------------------------------------

def test_ports_fixed_ips_macs_and_a_full_subnet(api: NetApi) -> None:
    net = api.network(token=ALICE)
    sub = api.subnet(net["id"], "10.0.0.0/29", ALICE)
    dhcp = api.ok("GET", "/v2.0/ports", ALICE, params={"device_owner": "network:dhcp"})
    assert dhcp["ports"][0]["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.2"}]
    p1 = api.port(net["id"], ALICE, fixed_ips=[{"ip_address": "10.0.0.5"}])
    assert p1["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.5"}]
    taken = api.call("POST", "/v2.0/ports", ALICE, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.5"}]}})
    assert taken.status_code == 409 and err(taken)["type"] == "IpAddressAlreadyAllocated"
    gw = api.call("POST", "/v2.0/ports", ALICE, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.1"}]}})
    assert gw.status_code == 409 and "gateway" in err(gw)["message"]
    outside = api.call("POST", "/v2.0/ports", ALICE, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "10.9.0.1"}]}})
    assert outside.status_code == 400
    macs = {p1["mac_address"]}
    for _ in range(3):
        macs.add(api.port(net["id"], ALICE)["mac_address"])
    assert len(macs) == 4
    full = api.call("POST", "/v2.0/ports", ALICE, json={"port": {"network_id": net["id"]}})
    assert full.status_code == 409
    assert err(full) == {"type": "IpAddressGenerationFailure", "detail": "",
                         "message": f"No more IP addresses available on network {net['id']}."}
    same_mac = api.call("POST", "/v2.0/ports", ALICE, json={"port": {
        "network_id": net["id"], "mac_address": p1["mac_address"], "fixed_ips": []}})
    assert same_mac.status_code == 409 and err(same_mac)["type"] == "MacAddressInUse"
    # An update can move a port to another address and free the old one.
    moved = api.ok("PUT", f"/v2.0/ports/{p1['id']}", ALICE, json={"port": {
        "fixed_ips": []}})["port"]
    assert moved["fixed_ips"] == []
    again = api.port(net["id"], ALICE)
    assert again["fixed_ips"][0]["ip_address"] == "10.0.0.5"


def test_port_security_groups_pairs_and_binding(api: NetApi) -> None:
    net = api.network(token=ALICE)
    api.subnet(net["id"], "10.0.0.0/24", ALICE)
    port = api.port(net["id"], ALICE, allowed_address_pairs=[{"ip_address": "10.0.0.200"}])
    default = api.ok("GET", "/v2.0/security-groups", ALICE, params={"name": "default"})
    assert port["security_groups"] == [default["security_groups"][0]["id"]]
    assert port["allowed_address_pairs"] == [{"ip_address": "10.0.0.200"}]
    conflict = api.call("PUT", f"/v2.0/ports/{port['id']}", ALICE, json={"port": {
        "port_security_enabled": False}})
    assert conflict.status_code == 409
    off = api.ok("PUT", f"/v2.0/ports/{port['id']}", ALICE, json={"port": {
        "port_security_enabled": False, "security_groups": [],
        "allowed_address_pairs": []}})["port"]
    assert off["port_security_enabled"] is False and off["security_groups"] == []
    bad = api.call("POST", "/v2.0/ports", ALICE, json={"port": {
        "network_id": net["id"], "port_security_enabled": False,
        "security_groups": [default["security_groups"][0]["id"]]}})
    assert bad.status_code == 409
    # Binding to a host is for admins (the compute service); the port stays DOWN until
    # the host's agent reports it plugged (test_network_hoststate.py).
    assert api.call("PUT", f"/v2.0/ports/{port['id']}", ALICE, json={"port": {
        "binding:host_id": "cmp1"}}).status_code == 403
    bound = api.ok("PUT", f"/v2.0/ports/{port['id']}", ADMIN, json={"port": {
        "binding:host_id": "cmp1", "device_id": "vm1", "device_owner": "compute:nova"}})
    assert bound["port"]["status"] == "DOWN" and bound["port"]["binding:vif_type"] == "ovs"


# ---- isolation -------------------------------------------------------------------------

def test_projects_are_isolated(api: NetApi) -> None:
    net = api.network(token=ALICE, name="alice-net")
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    port = api.port(net["id"], ALICE)
    router = api.router(ALICE)
    # Bob sees none of it, and learns nothing (404, not 403).
    assert api.ok("GET", "/v2.0/networks", BOB)["networks"] == []
    assert api.ok("GET", "/v2.0/subnets", BOB)["subnets"] == []
    assert api.ok("GET", "/v2.0/ports", BOB)["ports"] == []
    for path in (f"/v2.0/networks/{net['id']}", f"/v2.0/subnets/{sub['id']}",
                 f"/v2.0/ports/{port['id']}", f"/v2.0/routers/{router['id']}"):
        assert api.call("GET", path, BOB).status_code == 404, path
    resp = api.call("POST", "/v2.0/ports", BOB, json={"port": {"network_id": net["id"]}})
    assert resp.status_code == 404 and err(resp)["type"] == "NetworkNotFound"
    assert api.call("POST", "/v2.0/subnets", BOB, json={"subnet": {
        "network_id": net["id"], "cidr": "10.5.0.0/24"}}).status_code == 404
    assert api.call("DELETE", f"/v2.0/networks/{net['id']}", BOB).status_code == 404
    # Bob cannot plug Alice's subnet into his router, nor his into hers.
    bob_router = api.router(BOB)
    plug = api.call("PUT", f"/v2.0/routers/{bob_router['id']}/add_router_interface", BOB,
                    json={"subnet_id": sub["id"]})
    assert plug.status_code == 404 and err(plug)["type"] == "SubnetNotFound"
    bob_net = api.network(token=BOB)
    bob_sub = api.subnet(bob_net["id"], "10.9.0.0/24", BOB)
    assert api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", BOB,
                    json={"subnet_id": bob_sub["id"]}).status_code == 404
    # A floating IP cannot point at someone else's port.
    ext, _ = public(api)
    fip = api.call("POST", "/v2.0/floatingips", BOB, json={"floatingip": {
        "floating_network_id": ext["id"], "port_id": port["id"]}})
    assert fip.status_code == 404
    # A shared network is visible to all and takes their ports, but stays its owner's.
    shared = api.network(name="shared", shared=True)
    api.subnet(shared["id"], "10.50.0.0/24")
    assert api.port(shared["id"], BOB)["project_id"] == "p-bob"
    assert api.call("DELETE", f"/v2.0/networks/{shared['id']}", BOB).status_code == 403
    # The external network is visible, but no tenant port may be put on it.
    assert ext["id"] in {n["id"] for n in api.ok("GET", "/v2.0/networks", BOB)["networks"]}
    assert api.call("POST", "/v2.0/ports", BOB, json={"port": {
        "network_id": ext["id"]}}).status_code == 403
    # A reader may look but not touch.
    assert api.ok("GET", f"/v2.0/networks/{net['id']}", READER)
    assert api.call("POST", "/v2.0/networks", READER, json={"network": {}}).status_code == 403
    # Only an admin acts for another project.
    assert api.call("POST", "/v2.0/networks", BOB, json={"network": {
        "project_id": "p-alice"}}).status_code == 403
    assert api.network(project_id="p-bob")["project_id"] == "p-bob"


# ---- routers and floating IPs ----------------------------------------------------------

def test_router_gateway_interfaces_and_floating_ips(api: NetApi) -> None:
    ext, ext_sub = public(api)
    net = api.network(token=ALICE)
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    port = api.port(net["id"], ALICE)
    router = api.router(ALICE, external_gateway_info={
        "network_id": ext["id"], "enable_snat": True,
        "external_fixed_ips": [{"ip_address": "172.24.4.10"}]})
    gw = router["external_gateway_info"]
    assert gw["enable_snat"] is True
    assert gw["external_fixed_ips"] == [{"subnet_id": ext_sub["id"], "ip_address": "172.24.4.10"}]
    # A floating IP needs a router between its port's subnet and the external network.
    fip = api.ok("POST", "/v2.0/floatingips", ALICE, json={"floatingip": {
        "floating_network_id": ext["id"]}})["floatingip"]
    assert fip["status"] == "DOWN" and fip["port_id"] is None
    unreachable = api.call("PUT", f"/v2.0/floatingips/{fip['id']}", ALICE, json={
        "floatingip": {"port_id": port["id"]}})
    assert unreachable.status_code == 404
    assert err(unreachable)["type"] == "ExternalGatewayForFloatingIPNotFound"
    info = api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
                  json={"subnet_id": sub["id"]})
    assert info["subnet_id"] == sub["id"] and info["port_id"]
    itf = api.ok("GET", f"/v2.0/ports/{info['port_id']}", ALICE)["port"]
    assert itf["fixed_ips"][0]["ip_address"] == "10.0.0.1"
    assert itf["device_owner"] == "network:router_interface"
    assert api.call("DELETE", f"/v2.0/ports/{itf['id']}", ALICE).status_code == 409
    linked = api.ok("PUT", f"/v2.0/floatingips/{fip['id']}", ALICE, json={
        "floatingip": {"port_id": port["id"]}})["floatingip"]
    assert linked["router_id"] == router["id"] and linked["status"] == "ACTIVE"
    assert linked["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    # The gateway and the interface are pinned while the floating IP needs them.
    assert api.call("PUT", f"/v2.0/routers/{router['id']}", ALICE, json={"router": {
        "external_gateway_info": None}}).status_code == 409
    assert api.call("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface", ALICE,
                    json={"subnet_id": sub["id"]}).status_code == 409
    # Deleting the port releases the floating IP.
    api.ok("DELETE", f"/v2.0/ports/{port['id']}", ALICE)
    assert api.ok("GET", f"/v2.0/floatingips/{fip['id']}", ALICE)["floatingip"]["port_id"] is None
    # Overlapping subnets cannot meet on one router.
    net2 = api.network(token=ALICE)
    sub2 = api.subnet(net2["id"], "10.0.0.0/25", ALICE)
    overlap = api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
                       json={"subnet_id": sub2["id"]})
    assert overlap.status_code == 400 and "overlaps with cidr" in err(overlap)["message"]
    busy = api.call("DELETE", f"/v2.0/routers/{router['id']}", ALICE)
    assert busy.status_code == 409 and err(busy)["type"] == "RouterInUse"
    api.ok("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface", ALICE,
           json={"subnet_id": sub["id"]})
    missing = api.call("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface", ALICE,
                       json={"subnet_id": sub["id"]})
    assert missing.status_code == 404
    api.ok("DELETE", f"/v2.0/floatingips/{fip['id']}", ALICE)
    api.ok("PUT", f"/v2.0/routers/{router['id']}", ALICE, json={"router": {
        "external_gateway_info": {"network_id": ext["id"], "enable_snat": False}}})
    api.ok("DELETE", f"/v2.0/routers/{router['id']}", ALICE)
    # Only the external subnet's DHCP-less network remains, with no port left.
    assert api.ok("GET", "/v2.0/ports", params={"network_id": ext["id"]})["ports"] == []


# ---- security groups -------------------------------------------------------------------

def test_security_groups_and_rules(api: NetApi) -> None:
    groups = api.ok("GET", "/v2.0/security-groups", ALICE)["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"] is not None)
             for r in groups[0]["security_group_rules"]}
    assert rules == {("egress", "IPv4", False), ("egress", "IPv6", False),
                     ("ingress", "IPv4", True), ("ingress", "IPv6", True)}
    web = api.ok("POST", "/v2.0/security-groups", ALICE, json={"security_group": {
        "name": "web"}})["security_group"]
    assert {r["direction"] for r in web["security_group_rules"]} == {"egress"}
    rule = {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}
    made = api.ok("POST", "/v2.0/security-group-rules", ALICE,
                  json={"security_group_rule": rule})["security_group_rule"]
    assert made["ethertype"] == "IPv4" and made["port_range_max"] == 80
    dup = api.call("POST", "/v2.0/security-group-rules", ALICE,
                   json={"security_group_rule": rule})
    assert dup.status_code == 409 and made["id"] in err(dup)["message"]
    for bad in ({"direction": "sideways"}, {"protocol": "tcp", "port_range_min": 90,
                                            "port_range_max": 80},
                {"protocol": "bogus"}, {"port_range_min": 22},
                {"protocol": "tcp", "remote_ip_prefix": "::/0"},
                {"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": web["id"]}):
        body = {"security_group_id": web["id"], "direction": "ingress", **bad}
        resp = api.call("POST", "/v2.0/security-group-rules", ALICE,
                        json={"security_group_rule": body})
        assert resp.status_code == 400, (bad, resp.text)
    assert api.call("POST", "/v2.0/security-groups", ALICE, json={"security_group": {
        "name": "default"}}).status_code == 409
    assert api.call("POST", "/v2.0/security-group-rules", BOB, json={"security_group_rule": {
        **rule, "port_range_min": 81, "port_range_max": 81}}).status_code == 404
    net = api.network(token=ALICE)
    api.subnet(net["id"], "10.0.0.0/24", ALICE)
    port = api.port(net["id"], ALICE, security_groups=[web["id"]])
    assert port["security_groups"] == [web["id"]]
    inuse = api.call("DELETE", f"/v2.0/security-groups/{web['id']}", ALICE)
    assert inuse.status_code == 409 and err(inuse)["type"] == "SecurityGroupInUse"
    default_id = groups[0]["id"]
    assert api.call("DELETE", f"/v2.0/security-groups/{default_id}", ALICE).status_code == 409
    api.ok("DELETE", f"/v2.0/security-group-rules/{made['id']}", ALICE)
    api.ok("DELETE", f"/v2.0/ports/{port['id']}", ALICE)
    api.ok("DELETE", f"/v2.0/security-groups/{web['id']}", ALICE)


def test_remote_ip_prefix_is_kept_as_given_and_normalized_cidr_is_its_network(
        api: NetApi) -> None:
    """As Neutron (security-groups-normalized-cidr): the prefix as given, the mask added
    to a bare address; normalized_cidr is the network (what the host state gives the
    agents); a rule whose prefix means the same network as another's is a duplicate."""
    web = api.ok("POST", "/v2.0/security-groups", ALICE, json={"security_group": {
        "name": "norm"}})["security_group"]
    base = {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp"}
    made = {}
    for given, kept, normalized in (("10.1.2.3/24", "10.1.2.3/24", "10.1.2.0/24"),
                                    ("192.0.2.7", "192.0.2.7/32", "192.0.2.7/32")):
        rule = api.ok("POST", "/v2.0/security-group-rules", ALICE, json={
            "security_group_rule": {**base, "remote_ip_prefix": given}})["security_group_rule"]
        assert (rule["remote_ip_prefix"], rule["normalized_cidr"]) == (kept, normalized)
        made[rule["id"]] = normalized
    dup = api.call("POST", "/v2.0/security-group-rules", ALICE, json={
        "security_group_rule": {**base, "remote_ip_prefix": "10.1.2.0/24"}})
    assert dup.status_code == 409, dup.text
    shown = api.ok("GET", f"/v2.0/security-groups/{web['id']}", ALICE)["security_group"]
    assert {r["id"]: r["normalized_cidr"] for r in shown["security_group_rules"]
            if r["id"] in made} == made
    assert "security-groups-normalized-cidr" in {
        e["alias"] for e in api.ok("GET", "/v2.0/extensions", ALICE)["extensions"]}


# ---- lists and quotas ------------------------------------------------------------------

def test_filters_fields_sorting_and_pagination(api: NetApi) -> None:
    for name in ("c", "a", "b", "e", "d"):
        api.network(token=ALICE, name=name, admin_state_up=name != "e")
    names = [n["name"] for n in api.ok("GET", "/v2.0/networks", ALICE, params={
        "sort_key": "name", "sort_dir": "desc"})["networks"]]
    assert names == ["e", "d", "c", "b", "a"]
    only = api.ok("GET", "/v2.0/networks", ALICE, params={"name": ["a", "b"],
                                                          "fields": ["id", "name"]})
    assert sorted(n["name"] for n in only["networks"]) == ["a", "b"]
    assert set(only["networks"][0]) == {"id", "name"}
    down = api.ok("GET", "/v2.0/networks", ALICE, params={"admin_state_up": "False"})
    assert [n["name"] for n in down["networks"]] == ["e"]
    page = api.ok("GET", "/v2.0/networks", ALICE, params={"sort_key": "name", "limit": 2})
    assert [n["name"] for n in page["networks"]] == ["a", "b"]
    seen = [n["name"] for n in page["networks"]]
    while "networks_links" in page and any(
            link["rel"] == "next" for link in page["networks_links"]):
        nxt = next(link for link in page["networks_links"] if link["rel"] == "next")["href"]
        page = api.ok("GET", nxt.replace("http://network.test:9696", ""), ALICE)
        seen += [n["name"] for n in page["networks"]]
    assert seen == ["a", "b", "c", "d", "e"]
    bad = api.call("GET", "/v2.0/networks", ALICE, params={"sort_key": "colour"})
    assert bad.status_code == 400
    shown = api.ok("GET", f"/v2.0/networks/{only['networks'][0]['id']}", ALICE,
                   params={"fields": "name"})
    assert list(shown["network"]) == ["name"]


def test_quotas(api: NetApi) -> None:
    assert api.ok("GET", "/v2.0/quotas/p-alice", ALICE)["quota"]["network"] == 100
    assert api.call("PUT", "/v2.0/quotas/p-alice", ALICE, json={"quota": {
        "network": 1}}).status_code == 403
    assert api.call("GET", "/v2.0/quotas/p-alice", BOB).status_code == 403
    api.ok("PUT", "/v2.0/quotas/p-alice", json={"quota": {"network": 1}})
    api.network(token=ALICE)
    over = api.call("POST", "/v2.0/networks", ALICE, json={"network": {}})
    assert over.status_code == 409 and err(over) == {
        "type": "OverQuota", "message": "Quota exceeded for resources: ['network'].",
        "detail": ""}
    details = api.ok("GET", "/v2.0/quotas/p-alice/details", ALICE)["quota"]
    assert details["network"] == {"limit": 1, "used": 1, "reserved": 0}
    api.ok("DELETE", "/v2.0/quotas/p-alice")
    api.network(token=ALICE)


def test_concurrent_networks_get_distinct_segments(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    settings = Settings(segment_ranges={"vxlan": [(500, 519)], "gre": [(1, 5)]})
    with in_process(tmp_path, settings) as api:
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(lambda i: api.call("POST", "/v2.0/networks", ADMIN, json={
                "network": {"name": f"n{i}"}}), range(22)))
        codes = sorted(r.status_code for r in answers)
        assert codes == [201] * 20 + [503] * 2
        segments = [r.json()["network"]["provider:segmentation_id"] for r in answers
                    if r.status_code == 201]
        assert sorted(segments) == list(range(500, 520))


def test_a_unique_value_refused_on_every_attempt_is_a_409_in_the_network_wording(
        api: NetApi) -> None:
    import sqlalchemy as sa

    from stratus.common.errors import Conflict
    from stratus.network import core as network_core

    assert api.core is not None
    attempts = []

    def always_taken(_s: Any) -> None:
        attempts.append(1)
        raise sa.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(Conflict) as raised:
        api.core.transaction(always_taken)
    assert raised.value.message == network_core.CONFLICT_MESSAGE
    assert len(attempts) == network_core.TRANSACTION_ATTEMPTS == 40

    def refuses(_s: Any) -> None:  # a 409 of the work itself passes unchanged
        raise network_core.neutron(Conflict, "NetworkInUse", "in use")

    with pytest.raises(Conflict) as raised:
        api.core.transaction(refuses)
    assert raised.value.title == "NetworkInUse" and raised.value.message == "in use"
