"""Choosing unique values and building the rows several resources share.

Segmentation IDs, MACs and fixed IPs are chosen here, inserted, and guarded by
unique constraints: the transaction that chose a value another request took
first is run again (``NetworkCore.transaction``). Ports (with their addresses
and groups), the DHCP port of a network and a project's ``default`` security
group are made here too. ``NetworkCore`` inherits these methods; each takes
the session of the caller's transaction.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import BadRequest, Conflict, ServiceUnavailable
from stratus.common.timeutil import new_id, utcnow
from stratus.network import ipam
from stratus.network import models as m
from stratus.network.settings import DHCP_OWNER, ROUTER_INTERFACE, Settings, neutron


def auto_address(sub: m.Subnet) -> bool:
    """True for a SLAAC or dhcpv6-stateless subnet (addresses are EUI-64 from the MAC)."""
    return ipam.auto_address(sub.ip_version, sub.ipv6_ra_mode, sub.ipv6_address_mode)


class Allocations:
    """The allocation half of ``NetworkCore`` (it needs only ``settings``)."""

    settings: Settings

    # ---- segments ---------------------------------------------------------------------

    def allocate_segment(self, s: Session, network_type: str) -> int:
        """A free segmentation ID from the configured ranges (the constraint settles races)."""
        ranges = self.settings.segment_ranges.get(network_type, [])
        lo = min((r[0] for r in ranges), default=0)
        hi = max((r[1] for r in ranges), default=-1)
        taken = set(
            s.scalars(
                sa.select(m.Network.segmentation_id).where(
                    m.Network.network_type == network_type,
                    m.Network.segmentation_id >= lo,
                    m.Network.segmentation_id <= hi,
                )
            )
        )
        value = ipam.pick_free(ranges, {int(t) for t in taken if t is not None})
        if value is None:
            raise neutron(
                ServiceUnavailable,
                "NoNetworkAvailable",
                "Unable to create the network. No tenant network is available for allocation.",
            )
        return value

    # ---- MACs and addresses -----------------------------------------------------------

    def new_mac(self) -> str:
        prefix = self.settings.base_mac.split(":")[:3]
        tail = [f"{random.randint(0, 255):02x}" for _ in range(3)]
        return ":".join(prefix + tail)

    def mac_in_use(self, s: Session, network_id: str, mac: str) -> bool:
        return (
            s.scalar(
                sa.select(m.Port.id).where(
                    m.Port.network_id == network_id, m.Port.mac_address == mac
                )
            )
            is not None
        )

    def pick_mac(self, s: Session, network_id: str) -> str:
        for _ in range(16):
            mac = self.new_mac()
            if not self.mac_in_use(s, network_id, mac):
                return mac
        raise neutron(
            Conflict, "MacAddressGenerationFailure",
            f"Unable to generate unique mac on network {network_id}.",
        )

    @staticmethod
    def subnets_of(s: Session, network_id: str) -> list[m.Subnet]:
        return list(
            s.scalars(
                sa.select(m.Subnet)
                .where(m.Subnet.network_id == network_id)
                .order_by(m.Subnet.created_at, m.Subnet.id)
            )
        )

    @staticmethod
    def allocated(s: Session, subnet_id: str) -> list[str]:
        return list(
            s.scalars(
                sa.select(m.IPAllocation.ip_address).where(m.IPAllocation.subnet_id == subnet_id)
            )
        )

    @staticmethod
    def pools(sub: m.Subnet) -> list[tuple[ipam.IP, ipam.IP]]:
        return [
            (ipaddress.ip_address(a), ipaddress.ip_address(b)) for a, b in sub.allocation_pools
        ]

    def allocate_ip(self, s: Session, sub: m.Subnet, mac: str | None = None) -> str | None:
        """A free address of the subnet's pools, or None when the pools are full; on a
        SLAAC or dhcpv6-stateless subnet the EUI-64 address of ``mac``."""
        if mac is not None and auto_address(sub):
            return ipam.eui64(ipaddress.ip_network(sub.cidr), mac)
        return ipam.pick_free_ip(self.pools(sub), self.allocated(s, sub.id))

    def automatic_ips(self, s: Session, net: m.Network, subnets: list[m.Subnet],
                      mac: str | None, device_owner: str) -> list[tuple[str, str]]:
        """The addresses of a port that asked for none, as Neutron gives them: one from the
        first IPv4 subnet with room, one from the first stateful IPv6 subnet with room, and
        the EUI-64 address on every SLAAC/dhcpv6-stateless subnet (not for router ports)."""
        out: list[tuple[str, str]] = []
        for version in (4, 6):
            pooled = [x for x in subnets if x.ip_version == version and not auto_address(x)]
            for candidate in pooled:
                ip = self.allocate_ip(s, candidate)
                if ip is not None:
                    out.append((candidate.id, ip))
                    break
            else:
                if pooled:
                    raise neutron(
                        Conflict, "IpAddressGenerationFailure",
                        f"No more IP addresses available on network {net.id}.",
                    )
        if mac is not None and not device_owner.startswith("network:router"):
            out += [(x.id, ipam.eui64(ipaddress.ip_network(x.cidr), mac))
                    for x in subnets if auto_address(x)]
        return out

    def resolve_fixed_ips(
        self, s: Session, net: m.Network, requested: list[dict[str, Any]] | None,
        device_owner: str = "", mac: str | None = None,
    ) -> list[tuple[str, str]]:
        """(subnet_id, ip) pairs for a port; None asks for the automatic addresses
        (``automatic_ips``); ``mac`` gives the EUI-64 addresses on SLAAC subnets.

        Requested addresses are checked for use now (409) and again by the
        unique constraint when inserted; automatic ones are picked at random
        among free ones.
        """
        subnets = self.subnets_of(s, net.id)
        if requested is None:
            return self.automatic_ips(s, net, subnets, mac, device_owner)
        by_id = {x.id: x for x in subnets}
        out: list[tuple[str, str]] = []
        for item in requested:
            sub: m.Subnet | None = None
            if item.get("subnet_id") is not None:
                sub = by_id.get(item["subnet_id"])
                if sub is None:
                    raise BadRequest(
                        f"Invalid input for operation: Failed to create port on network "
                        f"{net.id}, because fixed_ips included invalid subnet "
                        f"{item['subnet_id']}."
                    )
            ip_text = item.get("ip_address")
            if ip_text is not None:
                addr = ipam.parse_ip(ip_text, "fixed ip_address",
                                     sub.ip_version if sub is not None else None)
                if sub is None:
                    sub = next(
                        (x for x in subnets if addr in ipaddress.ip_network(x.cidr)), None
                    )
                    if sub is None:
                        raise BadRequest(
                            f"IP address {addr} does not belong to any subnet of network {net.id}."
                        )
                net_cidr = ipaddress.ip_network(sub.cidr)
                ipam.check_usable(net_cidr, addr, "fixed ip_address")
                if auto_address(sub) and device_owner != ROUTER_INTERFACE:
                    raise BadRequest(
                        f"Invalid input for operation: IPv6 address {addr} cannot be directly "
                        f"assigned to a port on subnet {sub.id} as the subnet is configured "
                        "for automatic addresses."
                    )
                if (
                    sub.gateway_ip == str(addr)
                    and device_owner != ROUTER_INTERFACE
                ):
                    raise neutron(
                        Conflict, "IpAddressAlreadyAllocated",
                        f"IP address {addr} is the gateway of subnet {sub.id}; only a router "
                        "interface may use it.",
                    )
                taken = s.scalar(
                    sa.select(m.IPAllocation.port_id).where(
                        m.IPAllocation.subnet_id == sub.id,
                        m.IPAllocation.ip_address == str(addr),
                    )
                )
                if taken is not None:
                    raise neutron(
                        Conflict, "IpAddressAlreadyAllocated",
                        f"IP address {addr} already allocated in subnet {sub.id}",
                    )
                out.append((sub.id, str(addr)))
            else:
                assert sub is not None
                ip_auto = self.allocate_ip(s, sub, mac)
                if ip_auto is None:
                    raise neutron(
                        Conflict, "IpAddressGenerationFailure",
                        f"No more IP addresses available on network {net.id}.",
                    )
                out.append((sub.id, ip_auto))
        if len({ip for _, ip in out}) != len(out):
            raise BadRequest("fixed_ips lists the same address twice.")
        return out

    # ---- security groups --------------------------------------------------------------

    def default_security_group(self, s: Session, project_id: str) -> m.SecurityGroup:
        """The project's `default` group, created with Neutron's default rules when missing."""
        group = s.scalar(
            sa.select(m.SecurityGroup).where(m.SecurityGroup.default_for == project_id)
        )
        if group is not None:
            return group
        now = utcnow()
        group = m.SecurityGroup(
            id=new_id(), project_id=project_id, name="default",
            description="Default security group", stateful=True, default_for=project_id,
            created_at=now, updated_at=now, revision_number=0,
        )
        s.add(group)
        s.flush()  # a concurrent creator makes this fail; the transaction is rerun
        for direction in ("egress", "ingress"):
            for ethertype in ("IPv4", "IPv6"):
                s.add(m.SecurityGroupRule(
                    id=new_id(), project_id=project_id, security_group_id=group.id,
                    direction=direction, ethertype=ethertype, protocol=None,
                    port_range_min=None, port_range_max=None, remote_ip_prefix=None,
                    remote_group_id=group.id if direction == "ingress" else None,
                    description="", created_at=now, updated_at=now, revision_number=0,
                ))
        s.flush()
        return group

    @staticmethod
    def port_status(port: m.Port, host_before: str | None = None) -> str:
        """A new port is DOWN; it becomes ACTIVE only when the network agent of its host
        reports it plugged (``PUT /v2.0/stratus-agent/hosts/{host}/ports``). A port that
        moves to another host or is set administratively down is DOWN again."""
        if host_before is None or not port.admin_state_up or port.host_id != host_before:
            return "DOWN"
        return port.status

    # ---- ports ------------------------------------------------------------------------

    def make_port(
        self,
        s: Session,
        *,
        project_id: str,
        net: m.Network,
        fixed: list[tuple[str, str]],
        device_owner: str = "",
        device_id: str = "",
        mac: str | None = None,
        port_security: bool = False,
        group_ids: list[str] | None = None,
        name: str = "",
        description: str = "",
        admin_state_up: bool = True,
        host_id: str = "",
        address_pairs: list[dict[str, str]] | None = None,
    ) -> m.Port:
        """Insert a port with its addresses; a taken MAC or address aborts the transaction."""
        now = utcnow()
        port = m.Port(
            id=new_id(), project_id=project_id, network_id=net.id, name=name,
            description=description, mac_address=mac or self.pick_mac(s, net.id),
            admin_state_up=admin_state_up, device_id=device_id, device_owner=device_owner,
            port_security_enabled=port_security, host_id=host_id,
            allowed_address_pairs=address_pairs or [], created_at=now, updated_at=now,
            revision_number=1,
        )
        port.status = self.port_status(port)
        s.add(port)
        s.flush()
        for subnet_id, ip in fixed:
            s.add(m.IPAllocation(port_id=port.id, subnet_id=subnet_id, network_id=net.id,
                                 ip_address=ip))
        for gid in group_ids or []:
            s.add(m.PortSecurityGroup(port_id=port.id, security_group_id=gid))
        s.flush()
        return port

    def port_ips(self, s: Session, port_id: str) -> list[tuple[str, str]]:
        return [
            (row.subnet_id, row.ip_address)
            for row in s.scalars(
                sa.select(m.IPAllocation)
                .where(m.IPAllocation.port_id == port_id)
                .order_by(m.IPAllocation.id)
            )
        ]

    def dhcp_port(self, s: Session, network_id: str) -> m.Port | None:
        return s.scalar(
            sa.select(m.Port).where(
                m.Port.network_id == network_id, m.Port.device_owner == DHCP_OWNER
            )
        )

    def sync_dhcp_port(self, s: Session, net: m.Network) -> None:
        """The network's DHCP port holds one address on each DHCP subnet (none: no port).

        The address is the lowest free one of the pools, as Neutron's DHCP agent takes.
        """
        port = self.dhcp_port(s, net.id)
        wanted = [sub for sub in self.subnets_of(s, net.id) if sub.enable_dhcp]
        if not wanted:
            if port is not None:
                s.delete(port)
                s.flush()
            return
        have = dict(self.port_ips(s, port.id)) if port is not None else {}
        wanted_ids = {sub.id for sub in wanted}
        if port is not None:
            stale = [sid for sid in have if sid not in wanted_ids]
            if stale:
                s.execute(sa.delete(m.IPAllocation).where(
                    m.IPAllocation.port_id == port.id, m.IPAllocation.subnet_id.in_(stale)))
        add = []
        mac = port.mac_address if port is not None else self.pick_mac(s, net.id)
        for sub in wanted:
            if sub.id in have:
                continue
            if auto_address(sub):
                add.append((sub.id, ipam.eui64(ipaddress.ip_network(sub.cidr), mac)))
                continue
            ip = ipam.pick_free_ip(self.pools(sub), self.allocated(s, sub.id), window=1)
            if ip is None:
                raise neutron(
                    Conflict, "IpAddressGenerationFailure",
                    f"No more IP addresses available on network {net.id}.",
                )
            add.append((sub.id, ip))
        if port is None:
            self.make_port(
                s, project_id=net.project_id, net=net, fixed=add, device_owner=DHCP_OWNER,
                device_id=f"dhcp-{net.id}", mac=mac,
            )
            return
        for subnet_id, ip in add:
            s.add(m.IPAllocation(port_id=port.id, subnet_id=subnet_id, network_id=net.id,
                                 ip_address=ip))
        port.updated_at = utcnow()
        s.flush()
