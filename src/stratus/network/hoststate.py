"""The desired state of one host for its network agent, as the shared contract types.

Built from the database with the documents of ``stratus.contracts.network``
(which the agent parses too), so what the API serves is what the agent
parses. A host gets its bound instance ports with their security
groups (member IPs resolved), the networks they need, the other registered
hosts' tunnel endpoints, and - on a network node - every DHCP server and
router with its floating IPs.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.contracts import network as nm
from stratus.network import models as m
from stratus.network import views
from stratus.network.agents import unhosted
from stratus.network.settings import DHCP_OWNER, ROUTER_GATEWAY, ROUTER_INTERFACE

AGENT_PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp",
                   "1": "icmp"}
# In an IPv6 rule ICMP means ICMPv6 (Neutron's names for it, and its number).
AGENT_PROTOCOLS_V6 = {**AGENT_PROTOCOLS, "ipv6-icmp": "icmp", "icmpv6": "icmp", "58": "icmp"}


def _ips(s: Session, port_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if port_ids:
        rows = s.execute(sa.select(m.IPAllocation.port_id, m.IPAllocation.subnet_id,
                                   m.IPAllocation.ip_address)
                         .where(m.IPAllocation.port_id.in_(port_ids))
                         .order_by(m.IPAllocation.id))
        for port_id, subnet_id, ip in rows:
            out[port_id].append((subnet_id, ip))
    return out


def _groups(s: Session, port_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    if port_ids:
        rows = s.execute(sa.select(m.PortSecurityGroup.port_id,
                                   m.PortSecurityGroup.security_group_id)
                         .where(m.PortSecurityGroup.port_id.in_(port_ids)))
        for port_id, group_id in rows:
            out[port_id].append(group_id)
    return out


def _network(s: Session, net: m.Network) -> nm.Network:
    subnets = s.scalars(sa.select(m.Subnet).where(m.Subnet.network_id == net.id)
                        .order_by(m.Subnet.created_at, m.Subnet.id))
    # Subnets a router has an interface on: that router sends their RAs (IPv6).
    routed = set(s.scalars(sa.select(m.IPAllocation.subnet_id).join(
        m.Port, m.Port.id == m.IPAllocation.port_id).where(
        m.Port.network_id == net.id, m.Port.device_owner == ROUTER_INTERFACE)))
    return nm.Network(
        id=net.id, segmentation_type=net.network_type, segmentation_id=net.segmentation_id,
        physical_network=net.physical_network, mtu=net.mtu, external=net.external,
        name=net.name,
        subnets=[nm.Subnet(id=sub.id, cidr=sub.cidr, gateway_ip=sub.gateway_ip,
                           dns_nameservers=list(sub.dns_nameservers),
                           host_routes=[nm.HostRoute(**r) for r in sub.host_routes],
                           enable_dhcp=sub.enable_dhcp, ipv6_ra_mode=sub.ipv6_ra_mode,
                           ipv6_address_mode=sub.ipv6_address_mode,
                           router_ra=sub.ip_version == 6 and sub.id in routed)
                  for sub in subnets],
    )


def _security_group(s: Session, group: m.SecurityGroup) -> nm.SecurityGroup:
    rules = []
    for rule in s.scalars(sa.select(m.SecurityGroupRule).where(
            m.SecurityGroupRule.security_group_id == group.id)
            .order_by(m.SecurityGroupRule.created_at, m.SecurityGroupRule.id)):
        protocol = None
        if rule.protocol is not None:
            known = AGENT_PROTOCOLS_V6 if rule.ethertype == "IPv6" else AGENT_PROTOCOLS
            protocol = known.get(rule.protocol)
            if protocol is None:
                continue  # a protocol the agent cannot filter: the rule opens nothing
        rules.append(nm.SecurityGroupRule(
            direction=rule.direction, ethertype=rule.ethertype, protocol=protocol,
            port_range_min=rule.port_range_min, port_range_max=rule.port_range_max,
            remote_ip_prefix=views.normalized_cidr(rule.remote_ip_prefix),
            remote_group_id=rule.remote_group_id,
            id=rule.id))
    members = s.scalars(
        sa.select(m.IPAllocation.ip_address)
        .join(m.PortSecurityGroup, m.PortSecurityGroup.port_id == m.IPAllocation.port_id)
        .where(m.PortSecurityGroup.security_group_id == group.id)
        .order_by(m.IPAllocation.ip_address))
    return nm.SecurityGroup(id=group.id, rules=rules, member_ips=list(members), name=group.name)


def host_state(s: Session, host: str, network_node: bool | None = None) -> dict[str, Any]:
    """The HostState document (``to_dict``) of ``host``."""
    registered = s.get(m.AgentHost, host)
    if network_node is None:
        network_node = bool(registered and registered.network_node)
    peers = sorted({h.underlay_ip for h in s.scalars(sa.select(m.AgentHost).where(
        m.AgentHost.host != host)) if h.underlay_ip})
    needed: dict[str, m.Network] = {}

    def need(network_id: str) -> None:
        if network_id not in needed:
            net = s.get(m.Network, network_id)
            if net is not None:
                needed[network_id] = net

    bound = list(s.scalars(sa.select(m.Port).where(
        m.Port.host_id == host, ~m.Port.device_owner.startswith("network:"))
        .order_by(m.Port.created_at, m.Port.id)))
    ips = _ips(s, [p.id for p in bound])
    groups = _groups(s, [p.id for p in bound])
    ports = []
    group_ids: set[str] = set()
    for p in bound:
        need(p.network_id)
        group_ids.update(groups[p.id])
        ports.append(nm.Port(
            id=p.id, network_id=p.network_id, mac_address=p.mac_address,
            fixed_ips=[nm.FixedIP(subnet_id=sid, ip_address=ip) for sid, ip in ips[p.id]],
            security_groups=sorted(groups[p.id]),
            allowed_address_pairs=[nm.AddressPair(**a) for a in p.allowed_address_pairs],
            port_security_enabled=p.port_security_enabled,
            device_owner=p.device_owner or "compute:nova"))
    # Remote groups of the rules need their members too.
    frontier = set(group_ids)
    while frontier:
        remote = set(s.scalars(sa.select(m.SecurityGroupRule.remote_group_id).where(
            m.SecurityGroupRule.security_group_id.in_(frontier),
            m.SecurityGroupRule.remote_group_id.is_not(None)))) - group_ids
        group_ids |= {g for g in remote if g}
        frontier = {g for g in remote if g}
    security_groups = [_security_group(s, g) for g in s.scalars(
        sa.select(m.SecurityGroup).where(m.SecurityGroup.id.in_(group_ids))
        .order_by(m.SecurityGroup.id))] if group_ids else []

    dhcp_servers: list[nm.DhcpServer] = []
    routers: list[nm.Router] = []
    if network_node:
        # What an admin removed from this host's DHCP / L3 agent (agents.py) is not served.
        skip_routers, skip_networks = unhosted(s, host)
        dhcp_servers = _dhcp_servers(s, need, skip_networks)
        routers = _routers(s, need, skip_routers)
    state = nm.HostState(
        host=host, tunnel_peers=peers, networks=[_network(s, n) for n in needed.values()],
        ports=ports, dhcp_servers=dhcp_servers, routers=routers,
        security_groups=security_groups)
    state.validate()
    return state.to_dict()


def _dhcp_servers(s: Session, need: Any, skip: frozenset[str] = frozenset()
                  ) -> list[nm.DhcpServer]:
    out = []
    for dport in s.scalars(sa.select(m.Port).where(m.Port.device_owner == DHCP_OWNER)
                           .order_by(m.Port.network_id)):
        if dport.network_id in skip:
            continue
        need(dport.network_id)
        # Static leases: IPv4, and IPv6 where DHCPv6 gives the address (stateful, or no
        # mode); a SLAAC/stateless address is the host's own EUI-64 one, not a lease.
        dhcp_subnets = {sub.id for sub in s.scalars(sa.select(m.Subnet).where(
            m.Subnet.network_id == dport.network_id, m.Subnet.enable_dhcp))
            if sub.ip_version == 4 or (sub.ipv6_address_mode or sub.ipv6_ra_mode) in (
                None, "dhcpv6-stateful")}
        members = list(s.scalars(sa.select(m.Port).where(
            m.Port.network_id == dport.network_id, ~m.Port.device_owner.in_(
                [DHCP_OWNER, ROUTER_GATEWAY, "network:floatingip"]))
            .order_by(m.Port.created_at, m.Port.id)))
        ips = _ips(s, [dport.id] + [p.id for p in members])
        hosts = []
        for p in members:
            for sid, ip in ips[p.id]:
                if sid in dhcp_subnets:
                    version = 6 if ":" in ip else 4  # each entry its family's options
                    hosts.append(nm.DhcpHost(
                        mac_address=p.mac_address, ip_address=ip,
                        hostname="host-" + ip.replace(".", "-").replace(":", "-"),
                        options=[nm.DhcpOption(o["opt_name"], o["opt_value"])
                                 for o in p.extra_dhcp_opts or []
                                 if o["ip_version"] == version]))
        out.append(nm.DhcpServer(
            network_id=dport.network_id, port_id=dport.id, mac_address=dport.mac_address,
            fixed_ips=[nm.FixedIP(subnet_id=sid, ip_address=ip) for sid, ip in ips[dport.id]],
            hosts=hosts))
    return out


def _routers(s: Session, need: Any, skip: frozenset[str] = frozenset()) -> list[nm.Router]:
    out = []
    for router in s.scalars(sa.select(m.Router).order_by(m.Router.created_at, m.Router.id)):
        if router.id in skip:
            continue
        itf_ports = list(s.scalars(sa.select(m.Port).where(
            m.Port.device_id == router.id, m.Port.device_owner == ROUTER_INTERFACE)))
        gw_port = s.get(m.Port, router.gw_port_id) if router.gw_port_id else None
        ips = _ips(s, [p.id for p in itf_ports] + ([gw_port.id] if gw_port else []))
        interfaces = []
        for p in itf_ports:
            need(p.network_id)
            for sid, ip in ips[p.id]:
                sub = s.get(m.Subnet, sid)
                if sub is not None:
                    interfaces.append(nm.RouterInterface(
                        port_id=p.id, network_id=p.network_id, subnet_id=sid,
                        mac_address=p.mac_address, ip_address=ip,
                        prefixlen=ipaddress.ip_network(sub.cidr).prefixlen))
        gateway = None
        if gw_port is not None and ips[gw_port.id]:
            need(gw_port.network_id)
            # The first IPv4 address first (SNAT uses it); an IPv6 one beside it.
            gw_ips = sorted(ips[gw_port.id], key=lambda x: ":" in x[1])
            sid, ip = gw_ips[0]
            sub = s.get(m.Subnet, sid)
            v6 = next(((sid6, ip6) for sid6, ip6 in gw_ips if ":" in ip6 and ip6 != ip), None)
            sub6 = s.get(m.Subnet, v6[0]) if v6 else None
            if sub is not None:
                gateway = nm.RouterGateway(
                    port_id=gw_port.id, network_id=gw_port.network_id,
                    mac_address=gw_port.mac_address, ip_address=ip,
                    prefixlen=ipaddress.ip_network(sub.cidr).prefixlen,
                    gateway_ip=sub.gateway_ip)
                if v6 and sub6 is not None:
                    gateway.ipv6_address = v6[1]
                    gateway.ipv6_prefixlen = ipaddress.ip_network(sub6.cidr).prefixlen
                    gateway.ipv6_gateway_ip = sub6.gateway_ip
        fips = [nm.FloatingIP(floating_ip_address=f.floating_ip_address,
                              fixed_ip_address=f.fixed_ip_address, id=f.id)
                for f in s.scalars(sa.select(m.FloatingIP).where(
                    m.FloatingIP.router_id == router.id,
                    m.FloatingIP.fixed_ip_address.is_not(None)).order_by(m.FloatingIP.id))
                if f.fixed_ip_address]
        out.append(nm.Router(id=router.id, interfaces=interfaces, gateway=gateway,
                             enable_snat=router.enable_snat, floating_ips=fips,
                             routes=[nm.HostRoute(**x) for x in router.routes or []]))
    return out
