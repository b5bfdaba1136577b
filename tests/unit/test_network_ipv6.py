"""IPv6 subnets in the network API, in process: modes, gateways, pools, EUI-64 and stateful
addresses, dual-stack ports, router interfaces, and the 400s Neutron gives."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from network_api import ALICE, NetApi, in_process
from stratus.common.errors import BadRequest
from stratus.network import ipam
from stratus.network.core import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    settings = Settings(segment_ranges={"vxlan": [(100, 199)]})
    with in_process(tmp_path, settings) as client:
        yield client


def v6(api: NetApi, net_id: str, cidr: str = "2001:db8:1::/64", **attrs: Any) -> dict:
    return api.subnet(net_id, cidr, ip_version=6, **attrs)


def bad(api: NetApi, body: dict[str, Any], path: str = "/v2.0/subnets",
        key: str = "subnet") -> str:
    resp = api.call("POST", path, ALICE, json={key: body})
    assert resp.status_code == 400, resp.text
    return str(resp.json()["NeutronError"]["message"])


def test_eui64_is_rfc4291() -> None:
    net = ipaddress.IPv6Network("2001:db8::/64")
    assert ipam.eui64(net, "fa:16:3e:12:34:56") == "2001:db8::f816:3eff:fe12:3456"


def test_ipv6_parsing_and_ranges() -> None:
    net = ipam.parse_cidr("2001:db8::/64", "cidr", 6)
    assert ipam.default_gateway(net) == ipaddress.IPv6Address("2001:db8::1")
    pools = ipam.default_pools(net, ipam.default_gateway(net))
    assert [(str(a), str(b)) for a, b in pools] == [
        ("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]
    with pytest.raises(BadRequest, match="host bits set"):
        ipam.parse_cidr("2001:db8::1/64", "cidr", 6)
    with pytest.raises(BadRequest, match="is an IPv4 network"):
        ipam.parse_cidr("10.0.0.0/24", "cidr", 6)
    with pytest.raises(BadRequest, match="too small"):
        ipam.check_subnet_size(ipam.parse_cidr("2001:db8::/127", "cidr", 6))


def test_stateful_subnet_defaults_and_pool_addresses(api: NetApi) -> None:
    net = api.network(token=ALICE)
    sub = v6(api, net["id"], "2001:db8:2::/64", token=ALICE,
             ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful",
             dns_nameservers=["2001:4860:4860::8888"],
             host_routes=[{"destination": "2001:db8:9::/64", "nexthop": "2001:db8:2::5"}])
    assert sub["ip_version"] == 6 and sub["gateway_ip"] == "2001:db8:2::1"
    assert sub["ipv6_ra_mode"] == sub["ipv6_address_mode"] == "dhcpv6-stateful"
    assert sub["allocation_pools"] == [{"start": "2001:db8:2::2",
                                        "end": "2001:db8:2:0:ffff:ffff:ffff:ffff"}]
    assert sub["dns_nameservers"] == ["2001:4860:4860::8888"]
    port = api.port(net["id"], token=ALICE)
    (fixed,) = port["fixed_ips"]
    assert fixed["subnet_id"] == sub["id"]
    addr = ipaddress.IPv6Address(fixed["ip_address"])
    assert addr in ipaddress.IPv6Network("2001:db8:2::/64") and int(addr) & 0xFFFF < 0x100
    chosen = api.port(net["id"], token=ALICE,
                      fixed_ips=[{"subnet_id": sub["id"], "ip_address": "2001:db8:2::77"}])
    assert chosen["fixed_ips"][0]["ip_address"] == "2001:db8:2::77"
    shown = api.ok("GET", f"/v2.0/subnets/{sub['id']}", ALICE)["subnet"]
    assert shown["ipv6_address_mode"] == "dhcpv6-stateful"


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
def test_auto_address_subnet_gives_eui64_and_refuses_fixed_address(api: NetApi,
                                                                   mode: str) -> None:
    net = api.network(token=ALICE)
    v4 = api.subnet(net["id"], "10.9.0.0/24", token=ALICE)
    sub = v6(api, net["id"], token=ALICE, ipv6_ra_mode=mode, ipv6_address_mode=mode)
    port = api.port(net["id"], token=ALICE, mac_address="fa:16:3e:12:34:56")
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    assert by_subnet[sub["id"]] == "2001:db8:1:0:f816:3eff:fe12:3456"
    assert ipaddress.IPv4Address(by_subnet[v4["id"]]) in ipaddress.IPv4Network("10.9.0.0/24")
    message = bad(api, {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "2001:db8:1::99"}]}, "/v2.0/ports", "port")
    assert "cannot be directly assigned" in message and "automatic addresses" in message
    by_id = api.port(net["id"], token=ALICE, mac_address="fa:16:3e:00:00:01",
                     fixed_ips=[{"subnet_id": sub["id"]}])
    assert by_id["fixed_ips"] == [{"subnet_id": sub["id"],
                                   "ip_address": "2001:db8:1:0:f816:3eff:fe00:1"}]


def test_mode_combinations_as_neutron(api: NetApi) -> None:
    net = api.network(token=ALICE)
    base = {"network_id": net["id"], "cidr": "2001:db8:3::/64", "ip_version": 6}
    message = bad(api, {**base, "ipv6_ra_mode": "slaac",
                        "ipv6_address_mode": "dhcpv6-stateful"})
    assert ("ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to 'dhcpv6-stateful' "
            "is not valid") in message
    assert "'bogus' is not in" in bad(api, {**base, "ipv6_address_mode": "bogus"})
    assert "when ip_version is 4" in bad(api, {"network_id": net["id"], "cidr": "10.0.0.0/24",
                                               "ipv6_ra_mode": "slaac"})
    assert "enable_dhcp is set to False" in bad(api, {**base, "enable_dhcp": False,
                                                      "ipv6_address_mode": "slaac"})
    assert "requires the prefix to be /64" in bad(
        api, {**base, "cidr": "2001:db8:3::/80", "ipv6_address_mode": "slaac"})
    for ra, addr in [("slaac", None), (None, "dhcpv6-stateless"), ("dhcpv6-stateful", None)]:
        other = api.network(token=ALICE)
        made = v6(api, other["id"], token=ALICE, ipv6_ra_mode=ra, ipv6_address_mode=addr)
        assert (made["ipv6_ra_mode"], made["ipv6_address_mode"]) == (ra, addr)


def test_gateway_pools_and_overlap(api: NetApi) -> None:
    net = api.network(token=ALICE)
    sub = v6(api, net["id"], "2001:db8:4::/64", token=ALICE, gateway_ip="2001:db8:4::ff",
             allocation_pools=[{"start": "2001:db8:4::10", "end": "2001:db8:4::20"}])
    assert sub["gateway_ip"] == "2001:db8:4::ff"
    assert sub["allocation_pools"] == [{"start": "2001:db8:4::10", "end": "2001:db8:4::20"}]
    other = api.network(token=ALICE)
    link_local = v6(api, other["id"], token=ALICE, gateway_ip="fe80::1")
    assert link_local["gateway_ip"] == "fe80::1"
    assert "overlaps" in bad(api, {"network_id": net["id"], "cidr": "2001:db8:4::/80",
                                   "ip_version": 6})
    assert "IPv4 address" in bad(api, {"network_id": net["id"], "cidr": "2001:db8:5::/64",
                                       "ip_version": 6, "gateway_ip": "10.0.0.1"})
    updated = api.ok("PUT", f"/v2.0/subnets/{sub['id']}", ALICE,
                     json={"subnet": {"gateway_ip": "2001:db8:4::fe"}})["subnet"]
    assert updated["gateway_ip"] == "2001:db8:4::fe"


def test_router_interface_on_ipv6_subnet(api: NetApi) -> None:
    net = api.network(token=ALICE)
    sub = v6(api, net["id"], token=ALICE, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    router = api.router(token=ALICE)
    info = api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
                  json={"subnet_id": sub["id"]})
    port = api.ok("GET", f"/v2.0/ports/{info['port_id']}", ALICE)["port"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "2001:db8:1::1"}]
    api.ok("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface", ALICE,
           json={"subnet_id": sub["id"]})


def test_dhcp_port_gets_eui64_on_slaac_subnet(api: NetApi) -> None:
    net = api.network(token=ALICE)
    sub = v6(api, net["id"], token=ALICE, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    ports = api.ok("GET", f"/v2.0/ports?network_id={net['id']}", ALICE)["ports"]
    (dhcp,) = [p for p in ports if p["device_owner"] == "network:dhcp"]
    (fixed,) = dhcp["fixed_ips"]
    assert fixed["subnet_id"] == sub["id"]
    net64 = ipaddress.IPv6Network("2001:db8:1::/64")
    assert fixed["ip_address"] == ipam.eui64(net64, dhcp["mac_address"])


def test_ipv6_security_group_rule(api: NetApi) -> None:
    group = api.ok("POST", "/v2.0/security-groups", ALICE,
                   json={"security_group": {"name": "g6"}})["security_group"]
    rule = api.ok("POST", "/v2.0/security-group-rules", ALICE, json={"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv6",
        "protocol": "ipv6-icmp", "remote_ip_prefix": "2001:db8::/64"}})["security_group_rule"]
    assert rule["ethertype"] == "IPv6" and rule["remote_ip_prefix"] == "2001:db8::/64"


def test_slaac_subnet_deleted_under_its_ports(api: NetApi) -> None:
    net = api.network(token=ALICE)
    api.subnet(net["id"], "10.9.0.0/24", token=ALICE)
    sub = v6(api, net["id"], token=ALICE, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = api.port(net["id"], token=ALICE)
    assert len(port["fixed_ips"]) == 2
    assert api.call("DELETE", f"/v2.0/subnets/{sub['id']}", ALICE).status_code == 204
    after = api.ok("GET", f"/v2.0/ports/{port['id']}", ALICE)["port"]
    assert [f["subnet_id"] for f in after["fixed_ips"]] == [port["fixed_ips"][0]["subnet_id"]]


@pytest.mark.parametrize("ethertype", ["IPv4", "IPv6"])
def test_rule_port_range_wording_tempest_matches(api: NetApi, ethertype: str) -> None:
    group = api.ok("POST", "/v2.0/security-groups", ALICE,
                   json={"security_group": {"name": "w"}})["security_group"]
    base = {"security_group_id": group["id"], "direction": "ingress", "ethertype": ethertype}
    path, key = "/v2.0/security-group-rules", "security_group_rule"
    for pmin, pmax, wanted in [(-16, 80, "Invalid value for port -16"),
                               (80, 65536, "Invalid value for port 65536"),
                               (80, 79, "port_range_min must be <= port_range_max"),
                               (None, 6, "port_range_min must be <= port_range_max")]:
        body = {**base, "protocol": "tcp", "port_range_min": pmin, "port_range_max": pmax}
        assert wanted in bad(api, body, path, key)
    for pmin, pmax, wanted in [(1, 256, "Invalid value for ICMP code"),
                               (-1, 25, "Invalid value for ICMP type"),
                               (300, 1, "Invalid value for ICMP type")]:
        body = {**base, "protocol": "icmp", "port_range_min": pmin, "port_range_max": pmax}
        assert wanted in bad(api, body, path, key)
