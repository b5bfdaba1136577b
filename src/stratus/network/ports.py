"""Ports: MACs, fixed IPs (IPAM), security groups, address pairs, host binding.

``PortService`` (``core.ports``) owns the sessions and queries of the port
resource. A port's status is the network agent's to set
(``hosts.HostService.report_ports``); a change of binding or admin state
makes it DOWN again.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.crashpoints import crash_point
from stratus.common.errors import BadRequest, Conflict, Forbidden
from stratus.common.timeutil import utcnow
from stratus.network import dhcpopts, views
from stratus.network import models as m
from stratus.network.settings import (
    DHCP_OWNER,
    FLOATINGIP_OWNER,
    ROUTER_GATEWAY,
    ROUTER_INTERFACE,
    neutron,
    valid_mac,
)

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

PORT_ATTRS = {
    "name", "description", "project_id", "tenant_id", "tags", "network_id", "admin_state_up",
    "mac_address", "fixed_ips", "device_id", "device_owner", "security_groups",
    "allowed_address_pairs", "port_security_enabled", "binding:host_id", "binding:vnic_type",
    "binding:profile", "extra_dhcp_opts", "dns_name", "qos_policy_id", "propagate_uplink_status",
}
PROTECTED_OWNERS = (ROUTER_INTERFACE, ROUTER_GATEWAY, FLOATINGIP_OWNER, DHCP_OWNER)


def parse_fixed_ips(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    if "fixed_ips" not in obj or obj["fixed_ips"] is None:
        return None
    raw = obj["fixed_ips"]
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for fixed_ips. Reason: a list of {subnet_id, "
                         "ip_address} objects is expected.")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not item or set(item) - {"subnet_id", "ip_address"}:
            raise BadRequest(f"Invalid input for fixed_ips. Reason: {item!r} must have "
                             "'subnet_id' and/or 'ip_address'.")
        views.id_value(item, "subnet_id")
        out.append(item)
    return out


def parse_address_pairs(obj: dict[str, Any]) -> list[dict[str, str]] | None:
    if "allowed_address_pairs" not in obj or obj["allowed_address_pairs"] is None:
        return None
    raw = obj["allowed_address_pairs"]
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for allowed_address_pairs. Reason: a list is expected.")
    out = []
    for item in raw:
        if not isinstance(item, dict) or "ip_address" not in item or (
            set(item) - {"ip_address", "mac_address"}
        ):
            raise BadRequest(f"Invalid input for allowed_address_pairs. Reason: {item!r} "
                             "needs 'ip_address' and may have 'mac_address'.")
        ip = item["ip_address"]
        try:
            net = ipaddress.ip_network(ip, strict=False) if isinstance(ip, str) else None
        except ValueError:
            net = None
        if net is None:
            raise BadRequest(f"Invalid input for allowed_address_pairs. Reason: {ip!r} is not "
                             "an IP address or CIDR.")
        pair = {"ip_address": ip}
        if item.get("mac_address") is not None:
            if not valid_mac(item["mac_address"]):
                raise BadRequest(f"Invalid input for allowed_address_pairs. Reason: "
                                 f"{item['mac_address']!r} is not a MAC address.")
            pair["mac_address"] = item["mac_address"].lower()
        out.append(pair)
    if len({(p["ip_address"], p.get("mac_address")) for p in out}) != len(out):
        raise BadRequest("Invalid input for allowed_address_pairs. Reason: duplicate pair.")
    return out


def check_mac(obj: dict[str, Any]) -> str | None:
    mac = obj.get("mac_address")
    if mac is None:
        return None
    if not valid_mac(mac) or int(mac[:2], 16) & 1:
        raise BadRequest(f"Invalid input for mac_address. Reason: '{mac}' is not a valid "
                         "unicast MAC address.")
    return str(mac).lower()


class PortService:
    """The port resource over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    def _groups_for(self, s: Session, ctx: AuthContext, project: str, ids: list[str]
                    ) -> list[str]:
        core = self.core
        out = []
        for gid in dict.fromkeys(ids):
            group = core.security_group(s, ctx, gid)
            if group.project_id != project:
                raise neutron(Conflict, "SecurityGroupNotFound",
                              f"Security group {gid} does not belong to project {project}.")
            out.append(group.id)
        return out

    def _build(self, s: Session, ctx: AuthContext, obj: dict[str, Any]) -> m.Port:
        core = self.core
        views.only(obj, PORT_ATTRS, "port")
        net = core.network(s, ctx, views.id_value(obj, "network_id", required=True))
        project = core.target_project(ctx, obj)
        net_owner = ctx.is_admin or net.project_id == ctx.project_id
        if not net_owner and not net.shared:
            raise Forbidden("rule:create_port is disallowed by policy: the network belongs to "
                            "another project and is not shared")
        owner = views.text(obj, "device_owner")
        if owner.startswith("network:") and not net_owner:
            raise Forbidden("rule:create_port:device_owner is disallowed by policy")
        host = views.text(obj, "binding:host_id")
        if host and not ctx.is_admin:
            raise Forbidden("rule:create_port:binding:host_id is disallowed by policy")
        mac = check_mac(obj)
        if mac is not None:
            if not net_owner:
                raise Forbidden("rule:create_port:mac_address is disallowed by policy")
            if core.mac_in_use(s, net.id, mac):
                raise neutron(Conflict, "MacAddressInUse",
                              f"Unable to complete operation for network {net.id}. The mac "
                              f"address {mac} is in use.")
        requested = parse_fixed_ips(obj)
        if requested and not net_owner and any("ip_address" in r for r in requested):
            raise Forbidden("rule:create_port:fixed_ips:ip_address is disallowed by policy")
        security = views.boolean(obj, "port_security_enabled", net.port_security_enabled)
        sg_ids = views.string_list(obj, "security_groups")
        pairs = parse_address_pairs(obj)
        if not security and sg_ids:
            raise neutron(Conflict, "PortSecurityAndIPRequiredForSecurityGroups",
                          "Port security must be enabled and port must have an IP address in "
                          "order to use security groups.")
        if not security and pairs:
            raise neutron(Conflict, "AddressPairAndPortSecurityRequired",
                          "Port Security must be enabled in order to have allowed address "
                          "pairs on a port.")
        core.check_quota(s, project, "port")
        if sg_ids is None:
            groups = ([core.default_security_group(s, project).id]
                      if security and not owner.startswith("network:") else [])
        else:
            groups = self._groups_for(s, ctx, project, sg_ids)
        mac = mac or core.pick_mac(s, net.id)  # SLAAC addresses are made from it
        fixed = core.resolve_fixed_ips(s, net, requested, owner, mac)
        port = core.make_port(
            s, project_id=project, net=net, fixed=fixed, device_owner=owner,
            device_id=views.text(obj, "device_id"), mac=mac, port_security=security,
            group_ids=groups, name=views.text(obj, "name"),
            description=views.text(obj, "description"),
            admin_state_up=views.boolean(obj, "admin_state_up", True), host_id=host,
            address_pairs=pairs,
        )
        dhcpopts.apply(port, obj)  # extra_dhcp_opt
        return port

    def visible(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """The caller's ports and those on its networks (all: admin)."""
        q = sa.select(m.Port)
        if not ctx.is_admin:
            own_nets = sa.select(m.Network.id).where(m.Network.project_id == ctx.project_id)
            q = q.where(sa.or_(m.Port.project_id == ctx.project_id,
                               m.Port.network_id.in_(own_nets)))
        with self.core.db.session() as s:
            return views.ports(s, list(s.scalars(q)))

    def create(self, ctx: AuthContext, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create the ports of ``objs`` in one transaction."""

        def work(s: Session) -> list[dict[str, Any]]:
            made = [self._build(s, ctx, obj) for obj in objs]
            s.flush()
            crash_point("network.port_create.after_ips")  # rows written, not committed
            return views.ports(s, made)

        done = self.core.transaction(work)
        crash_point("network.port_create.after_commit")  # the caller gets no answer
        return done

    def show(self, ctx: AuthContext, port_id: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            port = self.core.port(s, ctx, port_id)
            return views.ports(s, [port])[0]

    def update(self, ctx: AuthContext, port_id: str, obj: dict[str, Any]) -> dict[str, Any]:
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            port = core.port(s, ctx, port_id)
            core.require_member(ctx, "update_port")
            host_before = port.host_id
            net = s.get(m.Network, port.network_id)
            assert net is not None
            net_owner = ctx.is_admin or net.project_id == ctx.project_id
            for key in ("network_id", "project_id", "tenant_id"):
                value = port.network_id if key == "network_id" else port.project_id
                if key in obj and obj[key] != value:
                    raise BadRequest(f"Cannot update read-only attribute {key}")
            if "binding:host_id" in obj:
                if not ctx.is_admin:
                    raise Forbidden("rule:update_port:binding:host_id is disallowed by policy")
                port.host_id = views.text(obj, "binding:host_id")
            if "mac_address" in obj:
                mac = check_mac(obj)
                if mac is not None and mac != port.mac_address:
                    if not ctx.is_admin:
                        raise Forbidden("rule:update_port:mac_address is disallowed by policy")
                    if core.mac_in_use(s, net.id, mac):
                        raise neutron(Conflict, "MacAddressInUse",
                                      f"Unable to complete operation for network {net.id}. The "
                                      f"mac address {mac} is in use.")
                    port.mac_address = mac
            if "device_owner" in obj:
                owner = views.text(obj, "device_owner")
                if owner.startswith("network:") and not net_owner:
                    raise Forbidden("rule:update_port:device_owner is disallowed by policy")
                port.device_owner = owner
            if "device_id" in obj:
                port.device_id = views.text(obj, "device_id")
            requested = parse_fixed_ips(obj)
            if requested is not None:
                if not net_owner and any("ip_address" in r for r in requested):
                    raise Forbidden("rule:update_port:fixed_ips:ip_address is disallowed")
                current = core.port_ips(s, port.id)
                keep = [r for r in requested if "ip_address" in r and any(
                    ip == r["ip_address"] and (r.get("subnet_id") in (None, sid))
                    for sid, ip in current)]
                s.execute(sa.delete(m.IPAllocation).where(m.IPAllocation.port_id == port.id))
                s.flush()
                fixed = core.resolve_fixed_ips(s, net, [r for r in requested if r not in keep],
                                               port.device_owner, port.mac_address)
                for r in keep:
                    sid = r.get("subnet_id") or next(x for x, ip in current
                                                     if ip == r["ip_address"])
                    fixed.insert(0, (sid, r["ip_address"]))
                for subnet_id, ip in fixed:
                    s.add(m.IPAllocation(port_id=port.id, subnet_id=subnet_id,
                                         network_id=net.id, ip_address=ip))
            security = views.boolean(obj, "port_security_enabled", port.port_security_enabled)
            sg_ids = views.string_list(obj, "security_groups")
            current_groups = views.groups_of(s, [port.id])[port.id]
            groups = current_groups if sg_ids is None else self._groups_for(
                s, ctx, port.project_id, sg_ids)
            pairs = parse_address_pairs(obj)
            if pairs is None:
                pairs = port.allowed_address_pairs
            if not security and groups:
                raise neutron(Conflict, "PortSecurityPortHasSecurityGroup",
                              "Port has security group associated. Cannot disable port "
                              "security or ip address until security group is removed.")
            if not security and pairs:
                raise neutron(Conflict, "AddressPairAndPortSecurityRequired",
                              "Port Security must be enabled in order to have allowed address "
                              "pairs on a port.")
            if sg_ids is not None:
                s.execute(sa.delete(m.PortSecurityGroup).where(
                    m.PortSecurityGroup.port_id == port.id))
                for gid in groups:
                    s.add(m.PortSecurityGroup(port_id=port.id, security_group_id=gid))
            port.port_security_enabled = security
            port.allowed_address_pairs = pairs
            port.name = views.text(obj, "name", port.name)
            port.description = views.text(obj, "description", port.description)
            port.admin_state_up = views.boolean(obj, "admin_state_up", port.admin_state_up)
            dhcpopts.apply(port, obj)  # extra_dhcp_opt
            port.status = core.port_status(port, host_before)
            port.updated_at = utcnow()
            port.revision_number += 1
            s.flush()
            return views.ports(s, [port])[0]

        return core.transaction(work)

    def delete(self, ctx: AuthContext, port_id: str) -> None:
        """Delete a port (not one a router, floating IP or DHCP server owns); its floating
        IPs are disassociated."""
        core = self.core

        def work(s: Session) -> None:
            port = core.port(s, ctx, port_id)
            core.require_member(ctx, "delete_port")
            if port.device_owner in PROTECTED_OWNERS and not (
                ctx.is_admin and port.device_owner == DHCP_OWNER
            ):
                raise neutron(Conflict, "PortInUse",
                              f"Port {port.id} cannot be deleted directly via the port API: "
                              f"has device owner {port.device_owner}.")
            for fip in s.scalars(sa.select(m.FloatingIP).where(
                    m.FloatingIP.fixed_port_id == port.id)):
                fip.fixed_port_id = None
                fip.fixed_ip_address = None
                fip.router_id = None
                fip.status = "DOWN"
                fip.updated_at = utcnow()
                fip.revision_number += 1
            s.flush()
            s.delete(port)

        core.transaction(work)
