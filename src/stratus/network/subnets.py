"""Subnets: IPv4 and IPv6 CIDRs, gateways, allocation pools, DNS servers, host routes and
the IPv6 modes (``ipv6_ra_mode``/``ipv6_address_mode``, checked as Neutron does).

``SubnetService`` (``core.subnets``) owns the sessions and queries of the
subnet resource; every change keeps the network's DHCP port in step
(``NetworkCore.sync_dhcp_port``).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, Forbidden
from stratus.common.timeutil import new_id, utcnow
from stratus.network import ipam, views
from stratus.network import models as m
from stratus.network.settings import DHCP_OWNER, ROUTER_INTERFACE, Settings, neutron

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

SUBNET_ATTRS = {
    "name", "description", "project_id", "tenant_id", "tags",
    "network_id", "ip_version", "cidr", "gateway_ip", "allocation_pools", "dns_nameservers",
    "host_routes", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id",
    "service_types", "segment_id", "use_default_subnetpool", "prefixlen",
}
SUBNET_READ_ONLY = {"network_id", "ip_version", "cidr", "project_id", "tenant_id",
                    "subnetpool_id"}
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")


def is_auto_address(sub: m.Subnet) -> bool:
    """True when hosts on ``sub`` make their own address (SLAAC, EUI-64 from the MAC)."""
    return ipam.auto_address(sub.ip_version, sub.ipv6_ra_mode, sub.ipv6_address_mode)


def ipv6_modes(obj: dict[str, Any], version: int, cidr: ipam.IPNet, enable_dhcp: bool,
               current: tuple[str | None, str | None] = (None, None)
               ) -> tuple[str | None, str | None]:
    """The subnet's (ipv6_ra_mode, ipv6_address_mode), or a 400 naming what is not allowed.

    As Neutron: each is one of IPV6_MODES or null; both only on IPv6 subnets with DHCP
    enabled; when both are set they must be equal; an address mode that builds addresses
    from the MAC (slaac, dhcpv6-stateless) needs a /64.
    """
    modes = []
    for key, now in zip(("ipv6_ra_mode", "ipv6_address_mode"), current, strict=True):
        value = obj.get(key, now)
        if value is not None and value not in IPV6_MODES:
            raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not in "
                             f"{list(IPV6_MODES)}.")
        modes.append(value)
    ra, addr = modes
    if ra is None and addr is None:
        return None, None
    if version != 6:
        name = "ipv6_ra_mode" if ra is not None else "ipv6_address_mode"
        raise BadRequest(f"Invalid input for operation: {name} set to "
                         f"'{ra if ra is not None else addr}' is not valid when ip_version "
                         "is 4.")
    if not enable_dhcp:
        raise BadRequest("Invalid input for operation: ipv6_ra_mode or ipv6_address_mode "
                         "cannot be set when enable_dhcp is set to False.")
    if ra is not None and addr is not None and ra != addr:
        raise BadRequest(f"Invalid input for operation: ipv6_ra_mode set to '{ra}' with "
                         f"ipv6_address_mode set to '{addr}' is not valid. If both attributes "
                         "are set, they must be the same value.")
    if ipam.auto_address(version, ra, addr) and cidr.prefixlen != 64:
        raise BadRequest(f"Invalid input for operation: Invalid CIDR {cidr} for IPv6 address "
                         "mode. OpenStack uses the EUI-64 address format, which requires the "
                         "prefix to be /64.")
    return ra, addr


def render(s: Session, subs: list[m.Subnet]) -> list[dict[str, Any]]:
    """The subnets' views, with ``router:external`` (subnet-external-network) set."""
    net_ids = {sub.network_id for sub in subs}
    external = set(s.scalars(sa.select(m.Network.id).where(
        m.Network.id.in_(net_ids), m.Network.external))) if net_ids else set()
    return views.subnets(subs, external)


def nameservers(settings: Settings, obj: dict[str, Any]) -> list[str]:
    """The subnet's ``dns_nameservers``, checked against ``max_dns_nameservers``."""
    raw = obj.get("dns_nameservers")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for dns_nameservers. Reason: a list of IP "
                         "addresses is expected.")
    if len(raw) > settings.max_dns_nameservers:
        raise BadRequest(f"Number of DNS nameservers exceeds the limit "
                         f"{settings.max_dns_nameservers}.")
    out = [str(ipam.parse_ip(v, "dns nameserver", None)) for v in raw]
    if len(set(out)) != len(out):
        raise BadRequest("Invalid input for dns_nameservers. Reason: duplicate nameserver.")
    return out


def host_routes(settings: Settings, obj: dict[str, Any], version: int = 4
                ) -> list[dict[str, str]]:
    """The subnet's ``host_routes`` (of the subnet's ``version``), checked against
    ``max_host_routes``."""
    raw = obj.get("host_routes")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for host_routes. Reason: a list of "
                         "{destination, nexthop} objects is expected.")
    if len(raw) > settings.max_host_routes:
        raise BadRequest(f"Number of host routes exceeds the limit "
                         f"{settings.max_host_routes}.")
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise BadRequest(f"Invalid input for host_routes. Reason: {item!r} must have "
                             "exactly 'destination' and 'nexthop'.")
        dest = ipam.parse_cidr(item["destination"], "host route destination", version)
        hop = ipam.parse_ip(item["nexthop"], "host route nexthop", version)
        out.append({"destination": str(dest), "nexthop": str(hop)})
    return out


def gateway_of(obj: dict[str, Any], cidr: ipam.IPNet,
               default: ipam.IP | None) -> ipam.IP | None:
    """The requested ``gateway_ip`` (None: no gateway), or ``default`` when not given.

    An IPv6 gateway may be a link-local address (fe80::/10), as Neutron allows."""
    if "gateway_ip" not in obj:
        return default
    if obj["gateway_ip"] is None:
        return None
    gw = ipam.parse_ip(obj["gateway_ip"], "gateway_ip", cidr.version)
    if gw.version == 6 and gw.is_link_local:
        return gw
    ipam.check_usable(cidr, gw, "gateway_ip")
    return gw


class SubnetService:
    """The subnet resource over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    def _build(self, s: Session, ctx: AuthContext, obj: dict[str, Any]) -> m.Subnet:
        core = self.core
        views.only(obj, SUBNET_ATTRS, "subnet")
        net = core.network(s, ctx, views.id_value(obj, "network_id", required=True))
        project = core.target_project(ctx, obj)
        if net.project_id != project and not ctx.is_admin:
            raise Forbidden("rule:create_subnet on a network of another project is disallowed "
                            "by policy")
        version = views.integer(obj, "ip_version", 4, 6) or 4
        if version not in (4, 6):
            raise BadRequest(f"Invalid input for ip_version. Reason: {version} is not in "
                             "[4, 6].")
        allocated = core.subnetpools.allocate(s, ctx, obj, version)  # subnetpools.py
        if allocated is None and obj.get("cidr") is None:
            raise BadRequest("Invalid input for operation: 'cidr' is required in the absence "
                             "of a subnet pool (give cidr, subnetpool_id or "
                             "use_default_subnetpool).")
        cidr, pool_id = allocated or (ipam.parse_cidr(obj["cidr"], "cidr", version), None)
        if cidr.version != version:
            raise BadRequest(f"Invalid input for operation: the subnet pool gives IPv"
                             f"{cidr.version} prefixes; ip_version is {version}.")
        ipam.check_subnet_size(cidr)
        enable_dhcp = views.boolean(obj, "enable_dhcp", True)
        ra_mode, address_mode = ipv6_modes(obj, version, cidr, enable_dhcp)
        gateway = gateway_of(obj, cidr, ipam.default_gateway(cidr))
        if obj.get("allocation_pools") is None:
            pools = ipam.default_pools(cidr, gateway)
        else:
            pools = ipam.parse_pools(obj["allocation_pools"], cidr, gateway)
        for other in core.subnets_of(s, net.id):
            if ipam.overlaps(ipaddress.ip_network(other.cidr), cidr):
                raise BadRequest(f"Invalid input for operation: Requested subnet with cidr: "
                                 f"{cidr} for network: {net.id} overlaps with another subnet.")
        core.check_quota(s, project, "subnet")
        now = utcnow()
        sub = m.Subnet(
            id=new_id(), project_id=project, network_id=net.id, name=views.text(obj, "name"),
            description=views.text(obj, "description"), ip_version=version, cidr=str(cidr),
            gateway_ip=str(gateway) if gateway else None, enable_dhcp=enable_dhcp,
            ipv6_ra_mode=ra_mode, ipv6_address_mode=address_mode,
            allocation_pools=[[str(a), str(b)] for a, b in pools],
            dns_nameservers=nameservers(core.settings, obj),
            host_routes=host_routes(core.settings, obj, version), subnetpool_id=pool_id,
            created_at=now, updated_at=now, revision_number=0,
        )
        s.add(sub)
        s.flush()
        core.sync_dhcp_port(s, net)
        return sub

    def visible(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """The caller's subnets and those of the networks it may see (all: admin)."""
        q = sa.select(m.Subnet)
        if not ctx.is_admin:
            nets = sa.select(m.Network.id).where(sa.or_(
                m.Network.project_id == ctx.project_id, m.Network.shared, m.Network.external))
            q = q.where(sa.or_(m.Subnet.project_id == ctx.project_id,
                               m.Subnet.network_id.in_(nets)))
        with self.core.db.session() as s:
            return render(s, list(s.scalars(q)))

    def create(self, ctx: AuthContext, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create the subnets of ``objs`` in one transaction."""

        def work(s: Session) -> list[dict[str, Any]]:
            return render(s, [self._build(s, ctx, obj) for obj in objs])

        return self.core.transaction(work)

    def show(self, ctx: AuthContext, subnet_id: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            return render(s, [self.core.subnet(s, ctx, subnet_id)])[0]

    def update(self, ctx: AuthContext, subnet_id: str, obj: dict[str, Any]) -> dict[str, Any]:
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            sub = core.subnet(s, ctx, subnet_id)
            if not core.owns(ctx, sub.project_id):
                raise Forbidden("rule:update_subnet is disallowed by policy")
            core.require_member(ctx, "update_subnet")
            for key in SUBNET_READ_ONLY:
                current = {"network_id": sub.network_id, "ip_version": sub.ip_version,
                           "cidr": sub.cidr, "project_id": sub.project_id,
                           "tenant_id": sub.project_id, "subnetpool_id": sub.subnetpool_id}[key]
                if key in obj and obj[key] != current:
                    raise BadRequest(f"Cannot update read-only attribute {key}")
            cidr = ipaddress.ip_network(sub.cidr)
            current_gw = ipaddress.ip_address(sub.gateway_ip) if sub.gateway_ip else None
            gateway = gateway_of(obj, cidr, current_gw)
            if "allocation_pools" in obj and obj["allocation_pools"] is not None:
                pools = ipam.parse_pools(obj["allocation_pools"], cidr, gateway)
            elif "gateway_ip" in obj:
                pools = core.pools(sub)
                if gateway is not None:
                    for a, b in pools:
                        if int(a) <= int(gateway) <= int(b):
                            raise BadRequest(f"Gateway ip {gateway} conflicts with allocation "
                                             f"pool {a}-{b}.")
            else:
                pools = core.pools(sub)
            if gateway != current_gw and gateway is not None:
                holder = s.scalar(sa.select(m.IPAllocation.port_id).where(
                    m.IPAllocation.subnet_id == sub.id,
                    m.IPAllocation.ip_address == str(gateway)))
                if holder is not None:
                    raise neutron(Conflict, "GatewayIpInUse",
                                  f"Gateway ip {gateway} is in use by port {holder}.")
            sub.gateway_ip = str(gateway) if gateway else None
            sub.allocation_pools = [[str(a), str(b)] for a, b in pools]
            if "dns_nameservers" in obj:
                sub.dns_nameservers = nameservers(core.settings, obj)
            if "host_routes" in obj:
                sub.host_routes = host_routes(core.settings, obj, sub.ip_version)
            sub.enable_dhcp = views.boolean(obj, "enable_dhcp", sub.enable_dhcp)
            sub.ipv6_ra_mode, sub.ipv6_address_mode = ipv6_modes(
                obj, sub.ip_version, cidr, sub.enable_dhcp,
                (sub.ipv6_ra_mode, sub.ipv6_address_mode))
            sub.name = views.text(obj, "name", sub.name)
            sub.description = views.text(obj, "description", sub.description)
            sub.updated_at = utcnow()
            sub.revision_number += 1
            s.flush()
            net = s.get(m.Network, sub.network_id)
            assert net is not None
            core.sync_dhcp_port(s, net)
            return render(s, [sub])[0]

        return core.transaction(work)

    def delete(self, ctx: AuthContext, subnet_id: str) -> None:
        """Delete a subnet; 409 while a port other than the DHCP port has an address on it."""
        core = self.core

        def work(s: Session) -> None:
            sub = core.subnet(s, ctx, subnet_id)
            if not core.owns(ctx, sub.project_id):
                raise Forbidden("rule:delete_subnet is disallowed by policy")
            core.require_member(ctx, "delete_subnet")
            # On a SLAAC/dhcpv6-stateless subnet the hosts made their addresses themselves:
            # as in Neutron they go with the subnet, only a router interface keeps it.
            blocking = (m.Port.device_owner == ROUTER_INTERFACE if is_auto_address(sub)
                        else m.Port.device_owner != DHCP_OWNER)
            used = s.scalar(
                sa.select(m.IPAllocation.port_id)
                .join(m.Port, m.Port.id == m.IPAllocation.port_id)
                .where(m.IPAllocation.subnet_id == sub.id, blocking))
            if used is not None:
                raise neutron(Conflict, "SubnetInUse",
                              f"Unable to complete operation on subnet {sub.id}: One or more "
                              "ports have an IP allocation from this subnet.")
            s.execute(sa.delete(m.IPAllocation).where(m.IPAllocation.subnet_id == sub.id))
            s.delete(sub)
            s.flush()
            net = s.get(m.Network, sub.network_id)
            assert net is not None
            core.sync_dhcp_port(s, net)

        core.transaction(work)
