"""Routers: an external gateway (with SNAT), interfaces on tenant subnets, static routes.

``RouterService`` (``core.routers``) owns the sessions and queries of the
router resource and of its interfaces; the gateway and interfaces are ports
(``network:router_gateway``, ``network:router_interface``).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.crashpoints import crash_point
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.common.timeutil import new_id, utcnow
from stratus.network import ipam, views
from stratus.network import models as m
from stratus.network.settings import ROUTER_GATEWAY, ROUTER_INTERFACE, neutron

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

ROUTER_ATTRS = {
    "name", "description", "project_id", "tenant_id", "tags", "admin_state_up",
    "external_gateway_info", "routes", "distributed", "ha", "availability_zone_hints",
    "flavor_id",
}


def external_network(core: NetworkCore, s: Session, ctx: AuthContext, net_id: object) -> m.Network:
    net = core.network(s, ctx, net_id)
    if not net.external:
        raise BadRequest(f"Bad router request: Network {net.id} is not a valid external "
                         "network.")
    return net


def interface_ports(s: Session, router_id: str) -> list[m.Port]:
    return list(s.scalars(sa.select(m.Port).where(
        m.Port.device_id == router_id, m.Port.device_owner == ROUTER_INTERFACE)))


def interface_subnets(core: NetworkCore, s: Session, router_id: str
                      ) -> list[tuple[m.Port, m.Subnet]]:
    out = []
    for port in interface_ports(s, router_id):
        for subnet_id, _ip in core.port_ips(s, port.id):
            sub = s.get(m.Subnet, subnet_id)
            if sub is not None:
                out.append((port, sub))
    return out


def set_gateway(core: NetworkCore, s: Session, ctx: AuthContext, r: m.Router, info: Any) -> None:
    if info is not None and not isinstance(info, dict):
        raise BadRequest("Invalid input for external_gateway_info. Reason: an object "
                         "with 'network_id' (or null) is expected.")
    current = s.get(m.Port, r.gw_port_id) if r.gw_port_id else None
    if not info:
        if current is not None:
            clear_gateway(s, r, current)
        return
    extra = set(info) - {"network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"}
    if extra:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(sorted(extra))}' in "
                         "external_gateway_info.")
    net = external_network(core, s, ctx, views.id_value(info, "network_id", required=True))
    r.enable_snat = views.boolean(info, "enable_snat", True)
    requested = info.get("external_fixed_ips")
    if requested is not None and (not isinstance(requested, list) or not all(
            isinstance(x, dict) and x and not set(x) - {"subnet_id", "ip_address"}
            for x in requested)):
        raise BadRequest("Invalid input for external_fixed_ips. Reason: a list of "
                         "{subnet_id, ip_address} objects is expected.")
    if current is not None:
        have = core.port_ips(s, current.id)
        if current.network_id == net.id and (requested is None or all(
            any(x.get("subnet_id") in (None, sid) and x.get("ip_address") in (None, ip)
                for sid, ip in have)
            for x in requested
        )):
            return
        clear_gateway(s, r, current)
    fixed = core.resolve_fixed_ips(s, net, requested or None, ROUTER_GATEWAY)
    if not fixed:
        raise BadRequest(f"Bad router request: external network {net.id} has no subnet.")
    port = core.make_port(s, project_id="", net=net, fixed=fixed,
                          device_owner=ROUTER_GATEWAY, device_id=r.id)
    r.gw_port_id = port.id


def clear_gateway(s: Session, r: m.Router, port: m.Port) -> None:
    used = s.scalar(sa.select(m.FloatingIP.id).where(m.FloatingIP.router_id == r.id))
    if used is not None:
        raise neutron(Conflict, "RouterExternalGatewayInUseByFloatingIp",
                      f"Gateway cannot be updated for router {r.id}, since a gateway to "
                      f"external network {port.network_id} is required by one or more "
                      "floating IPs.")
    r.gw_port_id = None
    s.flush()
    s.delete(port)
    s.flush()


def parse_routes(core: NetworkCore, s: Session, r: m.Router, raw: Any) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for routes. Reason: a list is expected.")
    attached = [ipaddress.ip_network(sub.cidr) for _, sub in interface_subnets(core, s, r.id)]
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise BadRequest(f"Invalid input for routes. Reason: {item!r} must have exactly "
                             "'destination' and 'nexthop'.")
        dest = ipam.parse_cidr(item["destination"], "route destination", None)
        hop = ipam.parse_ip(item["nexthop"], "route nexthop", dest.version)
        if not any(hop in cidr for cidr in attached if cidr.version == hop.version):
            raise BadRequest(f"Invalid format for routes: {item}, the nexthop is not "
                             "connected with router.")
        out.append({"destination": str(dest), "nexthop": str(hop)})
    return out


def interface_info(r: m.Router, port: m.Port, subnet_ids: list[str]) -> dict[str, Any]:
    return {"id": r.id, "tenant_id": r.project_id, "project_id": r.project_id,
            "port_id": port.id, "network_id": port.network_id,
            "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids,
            "tags": []}


def check_overlap(core: NetworkCore, s: Session, r: m.Router, sub: m.Subnet) -> None:
    cidr = ipaddress.ip_network(sub.cidr)
    for _port, other in interface_subnets(core, s, r.id):
        if other.id == sub.id:
            raise BadRequest(f"Bad router request: Router already has a port on subnet "
                             f"{sub.id}.")
        if ipam.overlaps(ipaddress.ip_network(other.cidr), cidr):
            raise BadRequest(f"Bad router request: Cidr {sub.cidr} of subnet {sub.id} "
                             f"overlaps with cidr {other.cidr} of subnet {other.id}.")


class RouterService:
    """The router resource over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    def visible(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """The caller's routers (all: admin)."""
        q = sa.select(m.Router)
        if not ctx.is_admin:
            q = q.where(m.Router.project_id == ctx.project_id)
        with self.core.db.session() as s:
            return views.routers(s, list(s.scalars(q)))

    def create(self, ctx: AuthContext, obj: dict[str, Any]) -> dict[str, Any]:
        """Create a router, with its gateway when ``external_gateway_info`` names one."""
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            project = core.target_project(ctx, obj)
            core.check_quota(s, project, "router")
            now = utcnow()
            r = m.Router(id=new_id(), project_id=project, name=views.text(obj, "name"),
                         description=views.text(obj, "description"),
                         admin_state_up=views.boolean(obj, "admin_state_up", True),
                         status="ACTIVE", enable_snat=True, routes=[], created_at=now,
                         updated_at=now, revision_number=1)
            s.add(r)
            s.flush()
            set_gateway(core, s, ctx, r, obj.get("external_gateway_info"))
            s.flush()
            return views.routers(s, [r])[0]

        return core.transaction(work)

    def show(self, ctx: AuthContext, router_id: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            r = self.core.router(s, ctx, router_id)
            return views.routers(s, [r])[0]

    def update(self, ctx: AuthContext, router_id: str, obj: dict[str, Any]) -> dict[str, Any]:
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            r = core.router(s, ctx, router_id)
            core.require_member(ctx, "update_router")
            for key in ("distributed", "ha"):
                if views.boolean(obj, key, False):
                    raise BadRequest(f"Invalid input for {key}: only false is supported.")
            if "external_gateway_info" in obj:
                set_gateway(core, s, ctx, r, obj["external_gateway_info"])
            if "routes" in obj:
                r.routes = parse_routes(core, s, r, obj["routes"])
            r.name = views.text(obj, "name", r.name)
            r.description = views.text(obj, "description", r.description)
            r.admin_state_up = views.boolean(obj, "admin_state_up", r.admin_state_up)
            r.updated_at = utcnow()
            r.revision_number += 1
            s.flush()
            return views.routers(s, [r])[0]

        return core.transaction(work)

    def delete(self, ctx: AuthContext, router_id: str) -> None:
        """Delete a router and its gateway port; 409 while it has interfaces."""
        core = self.core

        def work(s: Session) -> None:
            r = core.router(s, ctx, router_id)
            core.require_member(ctx, "delete_router")
            if interface_ports(s, r.id):
                raise neutron(Conflict, "RouterInUse",
                              f"Router {r.id} still has ports")
            if r.gw_port_id:
                port = s.get(m.Port, r.gw_port_id)
                if port is not None:
                    clear_gateway(s, r, port)
            s.delete(r)

        core.transaction(work)

    def add_interface(self, ctx: AuthContext, router_id: str, subnet_id: str | None,
                      port_id: str | None) -> dict[str, Any]:
        """Attach the router to a subnet (a new port on its gateway IP) or to a port."""
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            r = core.router(s, ctx, router_id)
            core.require_member(ctx, "add_router_interface")
            if subnet_id:
                sub = core.subnet(s, ctx, subnet_id)
                net = s.get(m.Network, sub.network_id)
                assert net is not None
                if net.external:
                    raise BadRequest(f"Bad router request: Router interface cannot be on the "
                                     f"external network {net.id}.")
                if net.project_id != r.project_id and not net.shared and not ctx.is_admin:
                    raise neutron(NotFound, "SubnetNotFound",
                                  f"Subnet {subnet_id} could not be found.")
                if not sub.gateway_ip:
                    raise BadRequest(f"Bad router request: Subnet {sub.id} has no gateway IP; "
                                     "a router interface needs one.")
                check_overlap(core, s, r, sub)
                holder = s.scalar(sa.select(m.IPAllocation.port_id).where(
                    m.IPAllocation.subnet_id == sub.id,
                    m.IPAllocation.ip_address == sub.gateway_ip))
                if holder is not None:
                    raise neutron(Conflict, "IpAddressAlreadyAllocated",
                                  f"IP address {sub.gateway_ip} already allocated in subnet "
                                  f"{sub.id}")
                port = core.make_port(s, project_id=r.project_id, net=net,
                                      fixed=[(sub.id, sub.gateway_ip)],
                                      device_owner=ROUTER_INTERFACE, device_id=r.id)
                s.flush()
                crash_point("network.router_interface.after_port")  # not committed
                return interface_info(r, port, [sub.id])
            port = core.port(s, ctx, port_id)
            if port.project_id != r.project_id and not ctx.is_admin:
                raise neutron(NotFound, "PortNotFound", f"Port {port_id} could not be found.")
            if port.device_id or port.device_owner:
                raise neutron(Conflict, "PortInUse",
                              f"Unable to complete operation on port {port.id} for network "
                              f"{port.network_id}. Port already has an attached device "
                              f"{port.device_id or port.device_owner}.")
            net = s.get(m.Network, port.network_id)
            assert net is not None
            if net.external:
                raise BadRequest("Bad router request: Router interface cannot be on an "
                                 "external network.")
            ips = core.port_ips(s, port.id)
            if not ips:
                raise BadRequest("Bad router request: Router port must have at least one "
                                 "fixed IP.")
            for subnet_id_, _ip in ips:
                port_sub = s.get(m.Subnet, subnet_id_)
                assert port_sub is not None
                check_overlap(core, s, r, port_sub)
            port.device_owner = ROUTER_INTERFACE
            port.device_id = r.id
            port.port_security_enabled = False
            s.execute(sa.delete(m.PortSecurityGroup).where(
                m.PortSecurityGroup.port_id == port.id))
            port.updated_at = utcnow()
            port.revision_number += 1
            s.flush()
            crash_point("network.router_interface.after_port")  # not committed
            return interface_info(r, port, [sid for sid, _ in ips])

        done = core.transaction(work)
        crash_point("network.router_interface.after_commit")  # the caller gets no answer
        return done

    def remove_interface(self, ctx: AuthContext, router_id: str, subnet_id: str | None,
                         port_id: str | None) -> dict[str, Any]:
        """Detach the router from a subnet or port (its interface port is deleted)."""
        core = self.core

        def work(s: Session) -> dict[str, Any]:
            r = core.router(s, ctx, router_id)
            core.require_member(ctx, "remove_router_interface")
            found = None
            for port, sub in interface_subnets(core, s, r.id):
                if (subnet_id and sub.id == subnet_id) or (port_id and port.id == port_id):
                    found = (port, sub)
                    break
            if found is None:
                if subnet_id:
                    core.subnet(s, ctx, subnet_id)
                    raise neutron(NotFound, "RouterInterfaceNotFoundForSubnet",
                                  f"Router {r.id} has no interface on subnet {subnet_id}")
                raise neutron(NotFound, "RouterInterfaceNotFound",
                              f"Router {r.id} does not have an interface with id {port_id}")
            port, sub = found
            subnet_ids = [sid for sid, _ in core.port_ips(s, port.id)]
            cidr = ipaddress.ip_network(sub.cidr)
            for fip in s.scalars(sa.select(m.FloatingIP).where(m.FloatingIP.router_id == r.id)):
                if fip.fixed_ip_address and ipaddress.ip_address(fip.fixed_ip_address) in cidr:
                    raise neutron(Conflict, "RouterInterfaceInUseByFloatingIP",
                                  f"Router interface for subnet {sub.id} on router {r.id} "
                                  "cannot be deleted, as it is required by one or more "
                                  "floating IPs.")
            for route in r.routes or []:  # extraroute: a nexthop needs its interface
                if ipaddress.ip_address(route["nexthop"]) in cidr:
                    raise neutron(Conflict, "RouterInterfaceInUseByRoute",
                                  f"Router interface for subnet {sub.id} on router {r.id} "
                                  f"cannot be deleted, as it is required by one or more "
                                  f"routes (nexthop {route['nexthop']}).")
            info = interface_info(r, port, subnet_ids)
            s.delete(port)
            return info

        return core.transaction(work)
