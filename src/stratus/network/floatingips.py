"""Floating IPs: an address of an external network, 1:1 NAT to a port's fixed IP.

``FloatingIPService`` (``core.floatingips``) owns the sessions and queries of
the floating IP resource. The address is held by a ``network:floatingip``
port; associating finds the router that joins the port's subnet to the
floating network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.common.timeutil import new_id, utcnow
from stratus.network import ipam, views
from stratus.network import models as m
from stratus.network.settings import FLOATINGIP_OWNER, ROUTER_INTERFACE, neutron

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

FIP_ATTRS = {
    "description", "project_id", "tenant_id", "tags", "floating_network_id", "port_id",
    "fixed_ip_address", "floating_ip_address", "subnet_id", "dns_domain", "dns_name",
    "qos_policy_id",
}


def associate(core: NetworkCore, s: Session, ctx: AuthContext, fip: m.FloatingIP, port_id: str,
              fixed_ip: Any) -> None:
    port = core.port(s, ctx, port_id)
    if port.project_id != fip.project_id and not ctx.is_admin:
        raise neutron(NotFound, "PortNotFound", f"Port {port_id} could not be found.")
    ips = core.port_ips(s, port.id)
    if fixed_ip is not None:
        wanted = str(ipam.parse_ip(fixed_ip, "fixed_ip_address"))
        match = [(sid, ip) for sid, ip in ips if ip == wanted]
        if not match:
            raise BadRequest(f"Bad floatingip request: Port {port.id} does not have fixed "
                             f"ip {wanted}.")
    else:
        match = ips
    if not match:
        raise BadRequest(f"Bad floatingip request: Port {port.id} does not have any IPv4 "
                         "address, so a floating IP cannot be associated with it.")
    subnet_id, ip = match[0]
    router_id = None
    for rport in s.scalars(
        sa.select(m.Port).join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id).where(
            m.Port.device_owner == ROUTER_INTERFACE, m.IPAllocation.subnet_id == subnet_id)
    ):
        r = s.get(m.Router, rport.device_id)
        gw = s.get(m.Port, r.gw_port_id) if r is not None and r.gw_port_id else None
        if gw is not None and gw.network_id == fip.floating_network_id:
            router_id = r.id if r is not None else None
            break
    if router_id is None:
        raise neutron(NotFound, "ExternalGatewayForFloatingIPNotFound",
                      f"External network {fip.floating_network_id} is not reachable from "
                      f"subnet {subnet_id}. Therefore, cannot associate Port {port.id} "
                      "with a Floating IP.")
    other = s.scalar(sa.select(m.FloatingIP).where(
        m.FloatingIP.fixed_port_id == port.id, m.FloatingIP.fixed_ip_address == ip,
        m.FloatingIP.id != fip.id))
    if other is not None:
        raise neutron(Conflict, "FloatingIPPortAlreadyAssociated",
                      f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) "
                      f"with port {port.id} using fixed IP {ip}, as that fixed IP already "
                      f"has a floating IP on external network {other.floating_network_id}.")
    fip.fixed_port_id = port.id
    fip.fixed_ip_address = ip
    fip.router_id = router_id
    fip.status = "ACTIVE"


def disassociate(fip: m.FloatingIP) -> None:
    fip.fixed_port_id = None
    fip.fixed_ip_address = None
    fip.router_id = None
    fip.status = "DOWN"


class FloatingIPService:
    """The floating IP resource over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    def visible(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """The caller's floating IPs (all: admin)."""
        q = sa.select(m.FloatingIP)
        if not ctx.is_admin:
            q = q.where(m.FloatingIP.project_id == ctx.project_id)
        with self.core.db.session() as s:
            return views.floatingips(list(s.scalars(q)))

    def create(self, ctx: AuthContext, obj: dict[str, Any]) -> dict[str, Any]:
        """Allocate an address (associated at once when ``port_id`` is given)."""
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            project = core.target_project(ctx, obj)
            net = core.network(s, ctx, views.id_value(obj, "floating_network_id",
                                                      required=True))
            if not net.external:
                raise BadRequest(f"Bad floatingip request: Network {net.id} is not a valid "
                                 "external network.")
            core.check_quota(s, project, "floatingip")
            requested: dict[str, Any] = {}
            if obj.get("subnet_id") is not None:
                requested["subnet_id"] = views.id_value(obj, "subnet_id")
            if obj.get("floating_ip_address") is not None:
                requested["ip_address"] = obj["floating_ip_address"]
            fixed = core.resolve_fixed_ips(s, net, [requested] if requested else None,
                                           FLOATINGIP_OWNER)
            if not fixed:
                raise neutron(Conflict, "IpAddressGenerationFailure",
                              f"No more IP addresses available on network {net.id}.")
            now = utcnow()
            fip_id = new_id()
            port = core.make_port(s, project_id="", net=net, fixed=fixed[:1],
                                  device_owner=FLOATINGIP_OWNER, device_id=fip_id)
            fip = m.FloatingIP(id=fip_id, project_id=project, floating_network_id=net.id,
                               floating_ip_address=fixed[0][1], floating_port_id=port.id,
                               status="DOWN", description=views.text(obj, "description"),
                               created_at=now, updated_at=now, revision_number=1)
            s.add(fip)
            s.flush()
            if obj.get("port_id") is not None:
                associate(core, s, ctx, fip, str(views.id_value(obj, "port_id")),
                          obj.get("fixed_ip_address"))
                s.flush()
            return views.floatingips([fip])[0]

        return core.transaction(work)

    def show(self, ctx: AuthContext, floatingip_id: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            return views.floatingips([self.core.floatingip(s, ctx, floatingip_id)])[0]

    def update(self, ctx: AuthContext, floatingip_id: str, obj: dict[str, Any]
               ) -> dict[str, Any]:
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            fip = core.floatingip(s, ctx, floatingip_id)
            core.require_member(ctx, "update_floatingip")
            for key in ("floating_network_id", "floating_ip_address"):
                current = getattr(fip, key)
                if key in obj and obj[key] != current:
                    raise BadRequest(f"Cannot update read-only attribute {key}")
            if "port_id" in obj:
                if obj["port_id"] is None:
                    disassociate(fip)
                else:
                    associate(core, s, ctx, fip, str(views.id_value(obj, "port_id")),
                              obj.get("fixed_ip_address"))
            fip.description = views.text(obj, "description", fip.description)
            fip.updated_at = utcnow()
            fip.revision_number += 1
            s.flush()
            return views.floatingips([fip])[0]

        return core.transaction(work)

    def delete(self, ctx: AuthContext, floatingip_id: str) -> None:
        """Release the address (its port goes with it)."""
        core = self.core

        def work(s: Session) -> None:
            fip = core.floatingip(s, ctx, floatingip_id)
            if not core.owns(ctx, fip.project_id):
                raise Forbidden("rule:delete_floatingip is disallowed by policy")
            core.require_member(ctx, "delete_floatingip")
            port = s.get(m.Port, fip.floating_port_id)
            s.delete(fip)
            s.flush()
            if port is not None:
                s.delete(port)

        core.transaction(work)
