"""The IPv6 data plane as the agent writes it (docs/ipv6.md): what the host state carries
for IPv6, dnsmasq's ranges and files per subnet mode, radvd's configuration, and the
nftables rules (IPv6 security-group rules, ICMPv6 always allowed, anti-spoofing with the
link-local address from the MAC)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from network_api import ADMIN, ALICE, NetApi, in_process
from stratus.agent.network.drivers import radvd
from stratus.agent.network.drivers.dnsmasq import DnsmasqDriver
from stratus.agent.network.drivers.nft_firewall import render_antispoof, render_rule, render_sg
from stratus.agent.network.ipv6 import link_local
from stratus.agent.network.naming import Naming
from stratus.contracts.network import (
    DhcpServer,
    HostState,
    Network,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)

pytestmark = pytest.mark.unit


def network(mode: str | None, router_ra: bool = False, ra_mode: str | None = "same") -> Network:
    return Network.from_dict({
        "id": "net-1", "segmentation_id": 5, "mtu": 1450,
        "subnets": [{"id": "s4", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1"},
                    {"id": "s6", "cidr": "2001:db8:1::/64", "gateway_ip": "2001:db8:1::1",
                     "dns_nameservers": ["2001:db8::53", "10.0.0.53"],
                     "ipv6_ra_mode": mode if ra_mode == "same" else ra_mode,
                     "ipv6_address_mode": mode, "router_ra": router_ra}]})


def server() -> DhcpServer:
    return DhcpServer.from_dict({
        "network_id": "net-1", "port_id": "dhcpport-123456", "mac_address": "fa:16:3e:00:00:02",
        "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.0.0.2"},
                      {"subnet_id": "s6", "ip_address": "2001:db8:1::2"}],
        "hosts": [{"mac_address": "fa:16:3e:00:00:0b", "ip_address": "10.0.0.11"},
                  {"mac_address": "fa:16:3e:00:00:0b", "ip_address": "2001:db8:1::b",
                   "hostname": "host-2001-db8-1--b"}]})


def ranges(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith(("--dhcp-range", "--enable-ra", "--ra-param"))]


def test_link_local_is_modified_eui64() -> None:
    assert link_local("fa:16:3e:12:34:56") == "fe80::f816:3eff:fe12:3456"
    assert link_local("00:00:00:00:00:01") == "fe80::200:ff:fe00:1"


@pytest.mark.parametrize("mode, router_ra, expected", [
    # the router sends the RAs: dnsmasq serves DHCPv6 only (nothing at all for SLAAC)
    ("dhcpv6-stateful", True, ["--dhcp-range=set:s1,2001:db8:1::,static,64,86400s"]),
    ("dhcpv6-stateless", True, ["--dhcp-range=set:s1,2001:db8:1::,static,64,86400s"]),
    ("slaac", True, []),
    (None, False, ["--dhcp-range=set:s1,2001:db8:1::,static,64,86400s"]),
    # no router on the subnet: dnsmasq sends the RAs, never as a default router
    ("slaac", False, ["--dhcp-range=set:s1,2001:db8:1::,ra-only,64,86400s", "--enable-ra",
                      "--ra-param=ns-dhcpport-12,30,0"]),
    ("dhcpv6-stateless", False, ["--dhcp-range=set:s1,2001:db8:1::,ra-stateless,64,86400s",
                                 "--enable-ra", "--ra-param=ns-dhcpport-12,30,0"]),
    ("dhcpv6-stateful", False, ["--dhcp-range=set:s1,2001:db8:1::,static,64,86400s",
                                "--enable-ra", "--ra-param=ns-dhcpport-12,30,0"]),
])
def test_dnsmasq_ranges_follow_the_subnet_modes(tmp_path: Path, mode: str | None,
                                                router_ra: bool, expected: list[str]) -> None:
    driver = DnsmasqDriver(None, Naming(), str(tmp_path))  # type: ignore[arg-type,unused-ignore]
    argv = driver.command(server(), network(mode, router_ra))
    assert ranges(argv) == [
        "--dhcp-range=set:s0,10.0.0.0,static,255.255.255.0,86400s", *expected]


def test_address_mode_alone_means_an_outside_router(tmp_path: Path) -> None:
    driver = DnsmasqDriver(None, Naming(), str(tmp_path))  # type: ignore[arg-type,unused-ignore]
    argv = driver.command(server(), network("slaac", ra_mode=None))
    assert ranges(argv) == ["--dhcp-range=set:s0,10.0.0.0,static,255.255.255.0,86400s"]


def test_dnsmasq_files_for_ipv6(tmp_path: Path) -> None:
    driver = DnsmasqDriver(None, Naming(), str(tmp_path))  # type: ignore[arg-type,unused-ignore]
    assert driver.render_hosts(server()) == (
        "fa:16:3e:00:00:0b,10.0.0.11\nfa:16:3e:00:00:0b,[2001:db8:1::b],host-2001-db8-1--b\n")
    opts = driver.render_opts(server(), network("dhcpv6-stateful", True)).splitlines()
    assert "tag:s1,option6:dns-server,[2001:db8::53]" in opts
    assert not any(o.startswith("tag:s1,option:") for o in opts)  # no DHCPv4 option
    assert "tag:s0,option:dns-server" in opts  # the IPv4 subnet has no IPv4 name server


def test_radvd_config_per_ra_mode() -> None:
    subs = [Subnet(id=m, cidr=f"2001:db8:{i}::/64", ipv6_ra_mode=m, ipv6_address_mode=m,
                   dns_nameservers=["2001:db8::53"] if i == 1 else [])
            for i, m in enumerate(["slaac", "dhcpv6-stateless", "dhcpv6-stateful"], 1)]
    text = radvd.render([("qr-b", 1450, subs[2:]), ("qr-a", 1450, subs[:2]),
                         ("qr-c", 1500, [Subnet(id="x", cidr="2001:db8:9::/64")])])
    a, b, c = text.split("\n};\n")[:3]
    assert a.startswith("interface qr-a {") and b.startswith("interface qr-b {")
    assert "prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; };" in a
    assert "prefix 2001:db8:2::/64 { AdvOnLink on; AdvAutonomous on; };" in a
    assert "AdvOtherConfigFlag on;" in a and "AdvManagedFlag" not in a
    assert "RDNSS 2001:db8::53 {};" in a and "AdvLinkMTU 1450;" in a
    assert "AdvManagedFlag on;" in b
    assert "prefix 2001:db8:3::/64 { AdvOnLink on; AdvAutonomous off; };" in b
    # no RA mode: the router advertises itself, no prefix
    assert "AdvSendAdvert on;" in c and "prefix" not in c


def port() -> Port:
    return Port.from_dict({
        "id": "port-1234567890", "network_id": "net-1", "mac_address": "fa:16:3e:00:00:0b",
        "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.0.0.11"},
                      {"subnet_id": "s6", "ip_address": "2001:db8:1::b"}],
        "allowed_address_pairs": [{"ip_address": "2001:db8:1::100/128"}],
        "security_groups": ["sg"]})


def test_ipv6_rules_render_to_nft_matches() -> None:
    groups = {"sg": SecurityGroup(id="sg", member_ips=["10.0.0.11", "2001:db8:1::b"])}

    def r(**kw: object) -> str | None:
        return render_rule(SecurityGroupRule.from_dict(kw), groups)

    assert r(direction="ingress", ethertype="IPv6", protocol="icmp") == (
        "meta nfproto ipv6 meta l4proto ipv6-icmp return")
    assert r(direction="ingress", ethertype="IPv6", protocol="icmp", port_range_min=128,
             remote_ip_prefix="2001:db8::/32") == (
        "ip6 saddr 2001:db8::/32 meta l4proto ipv6-icmp icmpv6 type 128 return")
    assert r(direction="egress", ethertype="IPv6", remote_group_id="sg") == (
        "ip6 daddr { 2001:db8:1::b } return")
    assert r(direction="egress", remote_group_id="sg") == "ip daddr { 10.0.0.11 } return"
    assert r(direction="ingress", ethertype="IPv6", protocol="tcp", port_range_min=22,
             remote_ip_prefix="::/0") == "ip6 saddr ::/0 tcp dport 22 return"


def test_ipv6_antispoofing_and_always_allowed_icmpv6() -> None:
    text = render_antispoof([port()], Naming())
    assert "ip saddr != { 10.0.0.11 } drop" in text
    assert ("ip6 saddr != { 2001:db8:1::100/128, 2001:db8:1::b, fe80::f816:3eff:fe00:b } drop"
            in text)
    assert "ip6 saddr :: ip6 daddr ff02::/16 return" in text  # DAD and MLD
    assert ("icmpv6 type nd-neighbor-advert @th,64,128 != { "
            "0x20010db8000100000000000000000100, 0x20010db800010000000000000000000b, "
            "0xfe80000000000000f8163efffe00000b } drop") in text  # no neighbour spoofing
    assert "icmpv6 type { nd-router-advert, nd-redirect } drop" in text  # no rogue router
    assert "udp sport 547 drop" in text  # no rogue DHCPv6 server
    assert "ether type != { ip, ip6 } drop" in text
    sg = render_sg([port()], {"sg": SecurityGroup(id="sg")}, Naming())
    assert ("icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, "
            "mld-listener-report, mld2-listener-report } return") in sg
    assert "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, " \
        "mld-listener-query } return" in sg
    assert "udp sport 546 udp dport 547 return" in sg
    assert "udp sport 547 udp dport 546 return" in sg


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as client:
        yield client


def test_host_state_carries_ipv6(api: NetApi) -> None:
    ext = api.network(name="public", **{"router:external": True,
                                        "provider:network_type": "flat",
                                        "provider:physical_network": "public"})
    api.subnet(ext["id"], "172.24.4.0/24", enable_dhcp=False)
    api.subnet(ext["id"], "2001:db8:ff::/64", enable_dhcp=False, ip_version=6)
    net = api.network(token=ALICE)
    v4 = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    slaac = api.subnet(net["id"], "2001:db8:1::/64", ALICE, ip_version=6,
                       ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    full = api.subnet(net["id"], "2001:db8:2::/64", ALICE, ip_version=6,
                      ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful")
    vm = api.port(net["id"], ALICE)
    api.ok("PUT", f"/v2.0/ports/{vm['id']}", json={"port": {
        "binding:host_id": "cmp1", "device_owner": "compute:nova", "device_id": "vm"}})
    router = api.router(ALICE, external_gateway_info={"network_id": ext["id"]})
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
           json={"subnet_id": slaac["id"]})
    api.ok("PUT", "/v2.0/stratus-agent/hosts/net1", json={"host": {
        "underlay_ip": "192.0.2.10", "network_node": True}})
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in vm["fixed_ips"]}

    cmp1 = HostState.from_dict(api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1", ADMIN))
    assert sorted(cmp1.ports[0].ips) == sorted(by_subnet.values())  # all three addresses
    subnets = {s.id: s for s in cmp1.networks[0].subnets}
    assert subnets[slaac["id"]].ipv6_ra_mode == "slaac" and subnets[slaac["id"]].router_ra
    assert not subnets[full["id"]].router_ra and not subnets[v4["id"]].router_ra

    net1 = HostState.from_dict(api.ok("GET", "/v2.0/stratus-agent/hosts/net1", ADMIN))
    (dhcp,) = [d for d in net1.dhcp_servers if d.network_id == net["id"]]
    leases = {h.ip_address for h in dhcp.hosts if h.mac_address == vm["mac_address"]}
    # a lease for the IPv4 and the stateful address; the SLAAC one is the host's own
    assert leases == {by_subnet[v4["id"]], by_subnet[full["id"]]}
    assert {f.subnet_id for f in dhcp.fixed_ips} == {v4["id"], slaac["id"], full["id"]}
    (r,) = net1.routers
    assert [i.subnet_id for i in r.interfaces] == [slaac["id"]]
    assert r.interfaces[0].ip_address == "2001:db8:1::1" and r.interfaces[0].prefixlen == 64
    assert r.gateway is not None and ":" not in r.gateway.ip_address
    assert r.gateway.ipv6_address is not None and r.gateway.ipv6_address.startswith(
        "2001:db8:ff::") and r.gateway.ipv6_gateway_ip == "2001:db8:ff::1"


def test_icmpv6_rule_names_reach_the_agent(api: NetApi) -> None:
    group = api.ok("POST", "/v2.0/security-groups", ALICE, json={"security_group": {
        "name": "v6"}})["security_group"]
    for i, proto in enumerate(("ipv6-icmp", "icmpv6", "58")):
        api.ok("POST", "/v2.0/security-group-rules", ALICE, json={"security_group_rule": {
            "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv6",
            "protocol": proto, "remote_ip_prefix": f"2001:db8:{i}::/64"}})
    net = api.network(token=ALICE)
    api.subnet(net["id"], "2001:db8:7::/64", ALICE, ip_version=6)
    vm = api.port(net["id"], ALICE, security_groups=[group["id"]])
    api.ok("PUT", f"/v2.0/ports/{vm['id']}", json={"port": {
        "binding:host_id": "cmp1", "device_owner": "compute:nova", "device_id": "vm"}})
    state = HostState.from_dict(api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1", ADMIN))
    sg = state.security_group(group["id"])
    assert sg is not None
    icmp = [r for r in sg.rules if r.direction == "ingress" and r.ethertype == "IPv6"]
    assert len(icmp) == 3 and {r.protocol for r in icmp} == {"icmp"}


def test_a_radvd_left_by_a_deleted_namespace_is_listed_and_removed(tmp_path: Path) -> None:
    from stratus.agent.network.drivers.router import NamespaceRouterDriver

    class NoNamespaces:
        def list_netns(self, prefix: str) -> list[str]:
            return []

        def delete_netns(self, name: str) -> None:
            pass

    naming = Naming()
    driver = NamespaceRouterDriver(NoNamespaces(), naming, str(tmp_path))  # type: ignore[arg-type]
    left = tmp_path / "ra" / naming.router_netns("r1")
    left.mkdir(parents=True)
    (left / "pid").write_text("999999999\n")  # no such process: nothing to stop
    (tmp_path / "ra" / "other-ns").mkdir()  # not a router namespace of this deploy
    assert driver.list_routers() == {"r1"}
    driver.remove_router("r1")
    assert not left.exists() and driver.list_routers() == set()


def test_extra_dhcp_options_of_each_family_go_with_its_entry(tmp_path: Path) -> None:
    doc = server().to_dict()
    doc["hosts"][0]["options"] = [{"name": "tftp-server", "value": "10.0.0.2"}]
    doc["hosts"][1]["options"] = [{"name": "dns-server", "value": "[2001:db8::53]"},
                                  {"name": "23", "value": "[2001:db8::54]"}]
    dual = DhcpServer.from_dict(doc)
    driver = DnsmasqDriver(None, Naming(), str(tmp_path))  # type: ignore[arg-type,unused-ignore]
    assert driver.render_hosts(dual) == (
        "fa:16:3e:00:00:0b,set:pfa163e00000b,10.0.0.11\n"
        "fa:16:3e:00:00:0b,set:qfa163e00000b,[2001:db8:1::b],host-2001-db8-1--b\n")
    opts = driver.render_opts(dual, network("dhcpv6-stateful", True)).splitlines()
    assert "tag:pfa163e00000b,option:tftp-server,10.0.0.2" in opts
    assert "tag:qfa163e00000b,option6:dns-server,[2001:db8::53]" in opts
    assert "tag:qfa163e00000b,option6:23,[2001:db8::54]" in opts
