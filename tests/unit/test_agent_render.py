"""What the real drivers would write: dnsmasq files, nftables tables, NAT rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.agent.network.drivers.dnsmasq import DnsmasqDriver
from stratus.agent.network.drivers.nft_firewall import render_antispoof, render_rule, render_sg
from stratus.agent.network.drivers.router import render_nat
from stratus.agent.network.naming import Naming
from stratus.contracts.network import (
    DhcpServer,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
)

pytestmark = pytest.mark.unit


def network() -> Network:
    return Network.from_dict({
        "id": "net-1", "segmentation_id": 5, "mtu": 1450,
        "subnets": [{"id": "s1", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
                     "dns_nameservers": ["10.0.0.53", "9.9.9.9"],
                     "host_routes": [{"destination": "172.16.0.0/16", "nexthop": "10.0.0.254"}]},
                    {"id": "s2", "cidr": "10.9.0.0/24", "enable_dhcp": False}]})


def dhcp_server() -> DhcpServer:
    return DhcpServer.from_dict({
        "network_id": "net-1", "port_id": "dhcpport-123456", "mac_address": "fa:16:3e:00:00:02",
        "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.2"},
                      {"subnet_id": "s2", "ip_address": "10.9.0.2"}],
        "hosts": [{"mac_address": "fa:16:3e:00:00:0b", "ip_address": "10.0.0.11",
                   "hostname": "web1"},
                  {"mac_address": "fa:16:3e:00:00:0a", "ip_address": "10.0.0.10"}]})


def test_dnsmasq_serves_static_leases_with_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    driver = DnsmasqDriver(None, Naming(), str(tmp_path))  # type: ignore[arg-type]
    assert driver.render_hosts(dhcp_server()) == (
        "fa:16:3e:00:00:0a,10.0.0.10\nfa:16:3e:00:00:0b,10.0.0.11,web1\n")
    opts = driver.render_opts(dhcp_server(), network()).splitlines()
    assert "tag:s0,option:mtu,1450" in opts
    assert "tag:s0,option:dns-server,10.0.0.53,9.9.9.9" in opts
    assert "tag:s0,option:router,10.0.0.1" in opts
    assert ("tag:s0,option:classless-static-route,169.254.169.254/32,10.0.0.2,"
            "172.16.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1") in opts
    assert not any(o.startswith("tag:s1") for o in opts)  # DHCP is off on s2
    argv = driver.command(dhcp_server(), network())
    assert "--no-ping" in argv
    assert "--dhcp-range=set:s0,10.0.0.0,static,255.255.255.0,86400s" in argv
    assert "--interface=ns-dhcpport-12" in argv
    assert any(a.startswith("--pid-file=" + str(tmp_path)) for a in argv)


def port(**kw: object) -> Port:
    doc = {"id": "port-1234567890", "network_id": "net-1", "mac_address": "fa:16:3e:00:00:0b",
           "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.11"}],
           "security_groups": ["sg"], **kw}
    return Port.from_dict(doc)


def test_rules_render_to_nft_matches() -> None:
    groups = {"sg": SecurityGroup(id="sg", member_ips=["10.0.0.11", "10.0.0.12"]),
              "empty": SecurityGroup(id="empty")}

    def r(**kw: object) -> str | None:
        return render_rule(SecurityGroupRule.from_dict(kw), groups)

    assert r(direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22,
             remote_ip_prefix="0.0.0.0/0") == "ip saddr 0.0.0.0/0 tcp dport 22 return"
    assert r(direction="ingress", protocol="udp", port_range_min=1000,
             port_range_max=2000) == "meta nfproto ipv4 udp dport 1000-2000 return"
    assert r(direction="egress", remote_group_id="sg") == (
        "ip daddr { 10.0.0.11, 10.0.0.12 } return")
    assert r(direction="ingress", remote_group_id="empty") is None
    assert r(direction="ingress", ethertype="IPv6") == "meta nfproto ipv6 return"
    assert r(direction="ingress", ethertype="IPv6", remote_ip_prefix="10.0.0.0/8") is None
    assert r(direction="ingress", protocol="icmp") == "meta nfproto ipv4 meta l4proto icmp return"


def test_antispoofing_allows_only_own_addresses_and_pairs() -> None:
    text = render_antispoof([port(allowed_address_pairs=[
        {"ip_address": "10.0.0.100/32", "mac_address": "fa:16:3e:aa:aa:aa"}])], Naming())
    assert 'iifname "tapport-123456" jump st_spoof_port_123456' in text
    assert "ether saddr != { fa:16:3e:00:00:0b, fa:16:3e:aa:aa:aa } drop" in text
    assert "ip saddr != { 10.0.0.100/32, 10.0.0.11 } drop" in text
    assert "udp sport 67 drop" in text


def test_security_groups_are_stateful_and_default_deny() -> None:
    groups = {"sg": SecurityGroup(id="sg", rules=[
        SecurityGroupRule(direction="ingress", protocol="tcp", port_range_min=80)])}
    text = render_sg([port()], groups, Naming())
    ingress = text.split("chain st_ingress_port_123456 {")[1].split("\n  }")[0]
    lines = [line.strip() for line in ingress.strip().splitlines()]
    assert lines[0].startswith("icmpv6 type { nd-router-advert, ")  # IPv6 ND always in
    assert lines[1] == "ct state established,related return"
    assert "meta nfproto ipv4 tcp dport 80 return" in lines
    assert lines[-1] == "drop"
    egress = text.split("chain st_egress_port_123456 {")[1].split("\n  }")[0]
    assert egress.strip().splitlines()[-1].strip() == "drop"  # no egress rule: nothing out


def test_router_nat_rules() -> None:
    router = Router.from_dict({
        "id": "r", "enable_snat": True,
        "gateway": {"port_id": "gw", "network_id": "pub", "mac_address": "fa:16:3e:00:00:01",
                    "ip_address": "203.0.113.10", "prefixlen": 24},
        "floating_ips": [{"floating_ip_address": "203.0.113.20",
                          "fixed_ip_address": "10.0.0.11"}]})
    text = render_nat(router, ["10.0.0.0/24"], "qg-gw")
    assert "ip daddr 203.0.113.20 dnat to 10.0.0.11" in text
    assert 'oifname "qg-gw" ip saddr 10.0.0.11 snat to 203.0.113.20' in text
    assert 'oifname "qg-gw" ip saddr { 10.0.0.0/24 } snat to 203.0.113.10' in text
    router.enable_snat = False
    assert "snat to 203.0.113.10" not in render_nat(router, ["10.0.0.0/24"], "qg-gw")


class RecordingRunner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, argv: list[str], **_: object) -> str:
        self.calls.append(list(argv))
        return ""


def test_dnsmasq_releases_only_the_leases_no_host_entry_backs(tmp_path: Path) -> None:
    runner = RecordingRunner()

    class Ip:
        pass

    ip = Ip()
    ip.runner = runner  # type: ignore[attr-defined]
    driver = DnsmasqDriver(ip, Naming(), str(tmp_path))  # type: ignore[arg-type]
    server = dhcp_server()  # hosts: ...0a -> 10.0.0.10, ...0b -> 10.0.0.11
    d = tmp_path / "dhcp" / "st-qdhcp-net-1"  # the namespace's name: the deploy's prefix
    d.mkdir(parents=True)
    (d / "leases").write_text(
        "1795338092 fa:16:3e:00:00:0a 10.0.0.10 * 01:fa:16:3e:00:00:0a\n"  # still a host
        "1795338092 FA:16:3E:00:00:0B 10.0.0.11 web1 *\n"                  # still (any case)
        "1795338092 fa:16:3e:00:00:0c 10.0.0.12 * *\n"                     # port deleted
        "1795338092 fa:16:3e:00:00:0d 10.0.0.10 * *\n"                     # its MAC changed
        "1795338092 fa:16:3e:00:00:0a 10.0.0.99 * *\n"                     # its IP changed
        "duid 00:01:00:01:2c:aa\n")
    released = driver.release_stale_leases(server)
    ns, dev = "st-qdhcp-net-1", "ns-dhcpport-12"
    assert runner.calls == [
        ["ip", "netns", "exec", ns, "dhcp_release", dev, "10.0.0.12", "fa:16:3e:00:00:0c"],
        ["ip", "netns", "exec", ns, "dhcp_release", dev, "10.0.0.10", "fa:16:3e:00:00:0d"],
        ["ip", "netns", "exec", ns, "dhcp_release", dev, "10.0.0.99", "fa:16:3e:00:00:0a"],
    ]
    assert len(released) == 3
    # nothing stale, nothing released; no lease file at all is no lease
    runner.calls.clear()
    (d / "leases").write_text("1795338092 fa:16:3e:00:00:0a 10.0.0.10 * *\n")
    assert driver.release_stale_leases(server) == [] and runner.calls == []
    (d / "leases").unlink()
    assert driver.release_stale_leases(server) == [] and runner.calls == []
