"""Security groups and anti-spoofing in nftables, on the host of each port.

Two tables (``<nft_prefix><deploy prefix>_...``, chains ``<deploy prefix>_...``), each
replaced atomically and only when its text changed; no other table is ever touched:

* ``bridge stratus_<prefix>_antispoof`` (bridge forward hook, before anything else):
  frames from a port's device must carry its MAC (or an allowed pair's), ARP
  must claim its own MAC/IPs, IPv4 must come from its fixed IPs or allowed
  pairs (except the DHCP DISCOVER from 0.0.0.0), other ethertypes are
  dropped, and the port may never send DHCP server traffic (udp sport 67).
* ``inet stratus_<prefix>_sg``: the stateful part. Bridged IPv4 passes the inet
  forward hook (``net.bridge.bridge-nf-call-iptables=1``, where conntrack
  works); frames are attributed to a port by MAC (anti-spoofing guarantees
  that a port's MAC only comes from that port). Per port an egress chain
  (established/related, DHCP client, then the egress rules, else drop) and
  an ingress chain (established/related, DHCP replies, then the ingress
  rules, else drop: default deny). Chains ``return`` when allowed, so a
  packet between two ports on one host passes the sender's egress and the
  receiver's ingress.

IPv6 as Neutron filters it: rules of ethertype ``IPv6`` (``icmp`` there is ICMPv6);
a port may send from its IPv6 fixed IPs, its pairs and the link-local address of its MAC
(and from ``::`` to link multicast: duplicate address detection, MLD), may claim no other
address in a neighbour advertisement (its target), and never sends a router
advertisement, redirect or DHCPv6 server reply; router solicitation, neighbour
discovery and MLD out, and router advertisements, neighbour discovery and MLD queries
in, are always allowed, as are the DHCPv6 client's exchanges. Bridged IPv6 passes the
inet forward hook with ``net.bridge.bridge-nf-call-ip6tables=1`` (set by the L2 driver).

Ports with ``port_security_enabled: false`` get no chain at all.
"""

from __future__ import annotations

import ipaddress
import logging

from stratus.agent.network import nft
from stratus.agent.network.drivers.base import FirewallDriver
from stratus.agent.network.ipv6 import is_v6, link_local
from stratus.agent.network.naming import Naming
from stratus.agent.runner import Runner
from stratus.contracts.network import Port, SecurityGroup, SecurityGroupRule

LOG = logging.getLogger(__name__)


def _set(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _macs(port: Port) -> list[str]:
    macs = {port.mac_address}
    macs |= {p.mac_address for p in port.allowed_address_pairs if p.mac_address}
    return sorted(macs)


def _ips(port: Port) -> list[str]:
    return sorted(set(port.ips) | {p.ip_address for p in port.allowed_address_pairs})


def _nd_targets(ips6: list[str]) -> list[str]:
    """The addresses (or CIDRs, as ranges) a port may claim in a neighbour advertisement,
    as the 128-bit integers nft compares the target field (bytes 8-23 of the message)
    with: nft 1.0.6 has no name for that field."""
    out = []
    for item in ips6:
        net = ipaddress.ip_network(item, strict=False)
        first, last = int(net.network_address), int(net.broadcast_address)
        out.append(f"0x{first:032x}" if first == last else f"0x{first:032x}-0x{last:032x}")
    return out


# ICMPv6 a port always sends / always receives (Neutron's ICMPV6_ALLOWED_*_TYPES).
ICMP6_OUT = "nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, " \
    "mld-listener-report, mld2-listener-report"
ICMP6_IN = "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query"


def render_rule(rule: SecurityGroupRule, groups: dict[str, SecurityGroup]) -> str | None:
    """One rule as an nft match ending in ``return``; None when it can match nothing."""
    if rule.ethertype not in ("IPv4", "IPv6"):
        return None
    v6 = rule.ethertype == "IPv6"
    fam = "ip6" if v6 else "ip"
    parts: list[str] = []
    addr = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_ip_prefix:
        if is_v6(rule.remote_ip_prefix) != v6:
            return None  # a prefix of the other family matches nothing
        parts.append(f"{fam} {addr} {rule.remote_ip_prefix}")
    elif rule.remote_group_id:
        group = groups.get(rule.remote_group_id)
        members = sorted({ip for ip in group.member_ips if is_v6(ip) == v6}) if group else []
        if not members:
            return None
        parts.append(f"{fam} {addr} {_set(members)}")
    else:
        parts.append("meta nfproto ipv6" if v6 else "meta nfproto ipv4")
    if rule.protocol in ("tcp", "udp"):
        if rule.port_range_min is not None:
            hi = rule.port_range_max if rule.port_range_max is not None else rule.port_range_min
            ports = str(rule.port_range_min) if hi == rule.port_range_min else (
                f"{rule.port_range_min}-{hi}")
            parts.append(f"{rule.protocol} dport {ports}")
        else:
            parts.append(f"meta l4proto {rule.protocol}")
    elif rule.protocol == "icmp" and v6:
        parts.append("meta l4proto ipv6-icmp")
        if rule.port_range_min is not None:
            parts.append(f"icmpv6 type {rule.port_range_min}")
    elif rule.protocol == "icmp":
        parts.append("meta l4proto icmp")
        if rule.port_range_min is not None:
            parts.append(f"icmp type {rule.port_range_min}")
    parts.append("return")
    return " ".join(parts)


def render_antispoof(ports: list[Port], naming: Naming) -> str:
    dispatch, chains = [], []
    for port in sorted(ports, key=lambda p: p.id):
        cid = naming.chain_id(port.id)
        dispatch.append(f'    iifname "{port.device}" jump {naming.chain("spoof_" + cid)}')
        ips = [ip for ip in _ips(port) if not is_v6(ip)]
        ips6 = sorted({ip for ip in _ips(port) if is_v6(ip)} | {link_local(m) for m in _macs(port)})
        macs = _macs(port)
        rules = [f"ether saddr != {_set(macs)} drop",
                 f"ether type arp arp saddr ether != {_set(macs)} drop",
                 f"ether type arp arp saddr ip != {_set([*ips, '0.0.0.0'])} drop",
                 "ether type arp return",
                 "ether type != { ip, ip6 } drop",
                 "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return",
                 f"ip saddr != {_set(ips)} drop" if ips else "ether type ip drop",
                 "ip6 saddr :: ip6 daddr ff02::/16 return",
                 f"ip6 saddr != {_set(ips6)} drop",
                 f"icmpv6 type nd-neighbor-advert @th,64,128 != {_set(_nd_targets(ips6))} drop",
                 "icmpv6 type { nd-router-advert, nd-redirect } drop",
                 "udp sport 547 drop"]
        rules += ["udp sport 67 drop", "return"]
        chains.append(f"  chain {naming.chain('spoof_' + cid)} {{\n"
                      + "".join(f"    {r}\n" for r in rules) + "  }\n")
    base = (f"  chain {naming.chain('forward')} {{\n"
            "    type filter hook forward priority -10; policy accept;\n"
            + "".join(d + "\n" for d in dispatch) + "  }\n")
    return base + "".join(chains)


def render_sg(ports: list[Port], groups: dict[str, SecurityGroup], naming: Naming) -> str:
    dispatch, chains = [], []
    for port in sorted(ports, key=lambda p: p.id):
        cid = naming.chain_id(port.id)
        for mac in _macs(port):
            dispatch.append(f"    ether saddr {mac} jump {naming.chain('egress_' + cid)}")
        for mac in _macs(port):
            dispatch.append(f"    ether daddr {mac} jump {naming.chain('ingress_' + cid)}")
        rules: dict[str, list[str]] = {"ingress": [], "egress": []}
        for group_id in port.security_groups:
            group = groups.get(group_id)
            if group is None:
                LOG.warning("port %s: security group %s is not in the desired state",
                            port.id, group_id)
                continue
            for rule in group.rules:
                text = render_rule(rule, groups)
                if text and text not in rules[rule.direction]:
                    rules[rule.direction].append(text)
        egress = [f"icmpv6 type {{ {ICMP6_OUT} }} return",
                  "ct state established,related return", "ct state invalid drop",
                  "udp sport 68 udp dport 67 return", "udp sport 546 udp dport 547 return",
                  *rules["egress"], "drop"]
        ingress = [f"icmpv6 type {{ {ICMP6_IN} }} return",
                   "ct state established,related return", "ct state invalid drop",
                   "udp sport 67 udp dport 68 return", "udp sport 547 udp dport 546 return",
                   *rules["ingress"], "drop"]
        for name, body in ((naming.chain(f"egress_{cid}"), egress),
                           (naming.chain(f"ingress_{cid}"), ingress)):
            chains.append(f"  chain {name} {{\n" + "".join(f"    {r}\n" for r in body) + "  }\n")
    base = (f"  chain {naming.chain('forward')} {{\n"
            "    type filter hook forward priority 0; policy accept;\n"
            + "".join(d + "\n" for d in dispatch) + "  }\n")
    return base + "".join(chains)


class NftFirewall(FirewallDriver):
    def __init__(self, runner: Runner, naming: Naming):
        self.runner = runner
        self.naming = naming
        self._filtered: set[str] = set()

    def apply(self, ports: list[Port], groups: dict[str, SecurityGroup]) -> None:
        secured = [p for p in ports if p.port_security_enabled]
        spoof_t, sg_t = self.naming.table("antispoof"), self.naming.table("sg")
        if not secured:
            nft.delete_table(self.runner, "inet", sg_t)
            nft.delete_table(self.runner, "bridge", spoof_t)
        else:
            if nft.ensure_table(self.runner, "bridge", spoof_t,
                                render_antispoof(secured, self.naming)):
                LOG.info("anti-spoofing rules updated (%d ports)", len(secured))
            if nft.ensure_table(self.runner, "inet", sg_t,
                                render_sg(secured, groups, self.naming)):
                LOG.info("security group rules updated (%d ports)", len(secured))
        self._filtered = {p.id for p in secured}

    def filtered_ports(self) -> set[str]:
        return set(self._filtered)

    def remove_all(self) -> None:
        nft.delete_table(self.runner, "inet", self.naming.table("sg"))
        nft.delete_table(self.runner, "bridge", self.naming.table("antispoof"))
