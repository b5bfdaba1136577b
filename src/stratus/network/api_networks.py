"""Network HTTP routes: version discovery, extensions, networks, subnets, quotas."""

from __future__ import annotations

import ipaddress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.app import Req, Router
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.network import ipam, listing, views
from stratus.network import models as m
from stratus.network.core import (
    DHCP_OWNER,
    FLOATINGIP_OWNER,
    NETWORK_TYPES,
    QUOTA_RESOURCES,
    ROUTER_GATEWAY,
    SEGMENT_LIMITS,
    NetworkCore,
    neutron,
    new_id,
    utcnow,
)

STANDARD = {"name", "description", "project_id", "tenant_id", "tags"}
NETWORK_ATTRS = STANDARD | {
    "admin_state_up", "shared", "router:external", "provider:network_type",
    "provider:physical_network", "provider:segmentation_id", "mtu", "port_security_enabled",
    "availability_zone_hints", "dns_domain",
}
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
SUBNET_ATTRS = STANDARD | {
    "network_id", "ip_version", "cidr", "gateway_ip", "allocation_pools", "dns_nameservers",
    "host_routes", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id",
    "service_types", "segment_id", "use_default_subnetpool", "prefixlen",
}
SUBNET_READ_ONLY = {"network_id", "ip_version", "cidr", "project_id", "tenant_id"}

EXTENSIONS = [
    ("external-net", "Neutron external network", "Adds external network attribute."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("network-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("port-security", "Port Security", "Provides port security"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur."),
    ("security-group", "security-group", "The security groups extension."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project"),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes"),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
     "standard attributes."),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("fip-port-details", "Floating IP Port Details Extension",
     "Add port_details attribute to Floating IP resource"),
    ("stratus-host-state", "Stratus host desired state",
     "Admin-only GET /v2.0/stratus/host-state?host=<name>: everything a host's network agent "
     "must converge to (Stratus extension)."),
]


def add_routes(router: Router, core: NetworkCore) -> None:
    settings = core.settings

    # ---- discovery ---------------------------------------------------------------------

    @router.add("GET", "/")
    def versions(req: Req) -> dict[str, Any]:
        return {"versions": [{
            "id": "v2.0", "status": "CURRENT",
            "links": [{"href": f"{req.base_url}/v2.0/", "rel": "self"}],
        }]}

    @router.add("GET", "/v2.0")
    @router.add("GET", "/v2.0/")
    def resources(req: Req) -> dict[str, Any]:
        names = [("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
                 ("router", "routers"), ("floatingip", "floatingips"),
                 ("security_group", "security-groups"),
                 ("security_group_rule", "security-group-rules"), ("quota", "quotas")]
        return {"resources": [
            {"name": n, "collection": c,
             "links": [{"href": f"{req.base_url}/v2.0/{c}", "rel": "self"}]}
            for n, c in names
        ]}

    def extension(alias: str, name: str, description: str) -> dict[str, Any]:
        return {"alias": alias, "name": name, "description": description,
                "updated": "2026-11-21T00:00:00-00:00", "links": []}

    @router.add("GET", "/v2.0/extensions")
    def list_extensions(req: Req) -> dict[str, Any]:
        _ = req.ctx
        return {"extensions": [extension(*e) for e in EXTENSIONS]}

    @router.add("GET", "/v2.0/extensions/{alias}")
    def show_extension(req: Req) -> dict[str, Any]:
        _ = req.ctx
        for e in EXTENSIONS:
            if e[0] == req.params["alias"]:
                return {"extension": extension(*e)}
        raise NotFound(f"Extension with alias {req.params['alias']} does not exist")

    # ---- networks ----------------------------------------------------------------------

    def build_network(s: Session, ctx: AuthContext, obj: dict[str, Any]) -> m.Network:
        views.only(obj, NETWORK_ATTRS, "network")
        project = core.target_project(ctx, obj)
        shared = views.boolean(obj, "shared", False)
        external = views.boolean(obj, "router:external", False)
        if (shared or external) and not ctx.is_admin:
            what = "shared" if shared else "router:external"
            raise Forbidden(f"rule:create_network:{what} is disallowed by policy")
        if any(obj.get(k) is not None for k in PROVIDER) and not ctx.is_admin:
            raise Forbidden("rule:create_network:provider:network_type is disallowed by policy")
        ntype = obj.get("provider:network_type") or settings.tenant_network_type
        if ntype not in NETWORK_TYPES:
            raise BadRequest(
                f"Invalid input for operation: network_type value '{ntype}' not supported; "
                f"use one of {', '.join(NETWORK_TYPES)}."
            )
        physnet = views.text(obj, "provider:physical_network", max_len=64) or None
        segment: int | None
        if ntype == "flat":
            if obj.get("provider:segmentation_id") is not None:
                raise BadRequest("Invalid input for operation: segmentation_id specified for "
                                 "flat network.")
            if not physnet:
                raise BadRequest("Invalid input for operation: physical_network required for "
                                 "flat provider network.")
            if "*" not in settings.flat_networks and physnet not in settings.flat_networks:
                raise BadRequest(
                    f"Invalid input for operation: physical_network '{physnet}' unknown for "
                    f"flat provider network (configured: {', '.join(settings.flat_networks)})."
                )
            taken = s.scalar(sa.select(m.Network.id).where(
                m.Network.network_type == "flat", m.Network.physical_network == physnet))
            if taken is not None:
                raise neutron(Conflict, "FlatNetworkInUse",
                              f"Unable to create the flat network. Physical network {physnet} "
                              "is in use.")
            segment = None
        else:
            if physnet:
                raise BadRequest(f"Invalid input for operation: provider:physical_network "
                                 f"specified for {ntype} network.")
            segment = views.integer(obj, "provider:segmentation_id", *SEGMENT_LIMITS[ntype])
            if segment is not None:
                taken = s.scalar(sa.select(m.Network.id).where(
                    m.Network.network_type == ntype, m.Network.segmentation_id == segment))
                if taken is not None:
                    raise neutron(Conflict, "TunnelIdInUse",
                                  f"Unable to create the network. The tunnel ID {segment} "
                                  "is in use.")
            else:
                segment = core.allocate_segment(s, ntype)
        max_mtu = settings.max_mtu(ntype)
        mtu = views.integer(obj, "mtu", 68, 65535)
        if mtu is not None and mtu > max_mtu:
            raise BadRequest(f"Invalid input for operation: Requested MTU is too big, maximum "
                             f"is {max_mtu}.")
        core.check_quota(s, project, "network")
        now = utcnow()
        net = m.Network(
            id=new_id(), project_id=project, name=views.text(obj, "name"),
            description=views.text(obj, "description"),
            admin_state_up=views.boolean(obj, "admin_state_up", True), status="ACTIVE",
            shared=shared, external=external, network_type=ntype, physical_network=physnet,
            segmentation_id=segment, mtu=mtu or max_mtu,
            port_security_enabled=views.boolean(obj, "port_security_enabled", True),
            created_at=now, updated_at=now, revision_number=1,
        )
        s.add(net)
        s.flush()
        return net

    def visible_networks(s: Session, ctx: AuthContext) -> list[m.Network]:
        q = sa.select(m.Network)
        if not ctx.is_admin:
            q = q.where(sa.or_(m.Network.project_id == ctx.project_id, m.Network.shared,
                               m.Network.external))
        return list(s.scalars(q))

    @router.add("GET", "/v2.0/networks")
    def list_networks(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        with core.db.session() as s:
            items = views.networks(s, visible_networks(s, ctx), ctx.is_admin)
        return listing.apply(items, req.query, req.base_url, "/v2.0/networks", "networks")

    @router.add("POST", "/v2.0/networks", status=201)
    def create_networks(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        core.require_member(ctx, "create_network")
        objs, bulk = views.entities(req.body, "network", "networks")

        def work(s: Session) -> list[dict[str, Any]]:
            nets = [build_network(s, ctx, obj) for obj in objs]
            return views.networks(s, nets, ctx.is_admin)

        made = core.transaction(work)
        return {"networks": made} if bulk else {"network": made[0]}

    @router.add("GET", "/v2.0/networks/{network_id}")
    def show_network(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        with core.db.session() as s:
            net = core.network(s, ctx, req.params["network_id"])
            return {"network": listing.trim(views.networks(s, [net], ctx.is_admin)[0],
                                            req.query)}

    @router.add("PUT", "/v2.0/networks/{network_id}")
    def update_network(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        obj = views.entity(req.body, "network")
        views.only(obj, NETWORK_ATTRS, "network")

        def work(s: Session) -> dict[str, Any]:
            net = core.network(s, ctx, req.params["network_id"])
            if not core.owns(ctx, net.project_id):
                raise Forbidden("rule:update_network is disallowed by policy")
            core.require_member(ctx, "update_network")
            for key in PROVIDER:
                if key in obj and obj[key] != getattr(net, {
                        "provider:network_type": "network_type",
                        "provider:physical_network": "physical_network",
                        "provider:segmentation_id": "segmentation_id"}[key]):
                    raise BadRequest("Invalid input for operation: Plugin does not support "
                                     "updating provider attributes.")
            for key in ("project_id", "tenant_id"):
                if key in obj and obj[key] != net.project_id:
                    raise BadRequest(f"Cannot update read-only attribute {key}")
            for key in ("shared", "router:external"):
                if key in obj and not ctx.is_admin:
                    raise Forbidden(f"rule:update_network:{key} is disallowed by policy")
            if "router:external" in obj:
                external = views.boolean(obj, "router:external", net.external)
                if net.external and not external:
                    in_use = s.scalar(sa.select(m.Port.id).where(
                        m.Port.network_id == net.id,
                        m.Port.device_owner.in_([ROUTER_GATEWAY, FLOATINGIP_OWNER])))
                    if in_use is not None:
                        raise neutron(Conflict, "NetworkInUse",
                                      f"Unable to complete operation on network {net.id}. "
                                      "There are one or more ports still in use on the network.")
                net.external = external
            net.shared = views.boolean(obj, "shared", net.shared)
            if "mtu" in obj:
                mtu = views.integer(obj, "mtu", 68, 65535)
                max_mtu = settings.max_mtu(net.network_type)
                if mtu is not None and mtu > max_mtu:
                    raise BadRequest(f"Invalid input for operation: Requested MTU is too big, "
                                     f"maximum is {max_mtu}.")
                net.mtu = mtu or max_mtu
            net.name = views.text(obj, "name", net.name)
            net.description = views.text(obj, "description", net.description)
            net.admin_state_up = views.boolean(obj, "admin_state_up", net.admin_state_up)
            net.port_security_enabled = views.boolean(
                obj, "port_security_enabled", net.port_security_enabled)
            net.updated_at = utcnow()
            net.revision_number += 1
            s.flush()
            return views.networks(s, [net], ctx.is_admin)[0]

        return {"network": core.transaction(work)}

    @router.add("DELETE", "/v2.0/networks/{network_id}")
    def delete_network(req: Req) -> None:
        ctx = req.ctx

        def work(s: Session) -> None:
            net = core.network(s, ctx, req.params["network_id"])
            if not core.owns(ctx, net.project_id):
                raise Forbidden("rule:delete_network is disallowed by policy")
            core.require_member(ctx, "delete_network")
            in_use = s.scalar(sa.select(m.Port.id).where(
                m.Port.network_id == net.id, m.Port.device_owner != DHCP_OWNER))
            if in_use is not None:
                raise neutron(Conflict, "NetworkInUse",
                              f"Unable to complete operation on network {net.id}. There are "
                              "one or more ports still in use on the network.")
            s.execute(sa.delete(m.Port).where(m.Port.network_id == net.id))
            s.execute(sa.delete(m.Subnet).where(m.Subnet.network_id == net.id))
            s.delete(net)

        core.transaction(work)

    # ---- subnets -----------------------------------------------------------------------

    def nameservers(obj: dict[str, Any]) -> list[str]:
        raw = obj.get("dns_nameservers")
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise BadRequest("Invalid input for dns_nameservers. Reason: a list of IPv4 "
                             "addresses is expected.")
        if len(raw) > settings.max_dns_nameservers:
            raise BadRequest(f"Number of DNS nameservers exceeds the limit "
                             f"{settings.max_dns_nameservers}.")
        out = [str(ipam.parse_ip(v, "dns nameserver")) for v in raw]
        if len(set(out)) != len(out):
            raise BadRequest("Invalid input for dns_nameservers. Reason: duplicate nameserver.")
        return out

    def routes(obj: dict[str, Any]) -> list[dict[str, str]]:
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
            dest = ipam.parse_cidr(item["destination"], "host route destination")
            hop = ipam.parse_ip(item["nexthop"], "host route nexthop")
            out.append({"destination": str(dest), "nexthop": str(hop)})
        return out

    def gateway_of(obj: dict[str, Any], cidr: ipaddress.IPv4Network,
                   default: ipaddress.IPv4Address | None) -> ipaddress.IPv4Address | None:
        if "gateway_ip" not in obj:
            return default
        if obj["gateway_ip"] is None:
            return None
        gw = ipam.parse_ip(obj["gateway_ip"], "gateway_ip")
        ipam.check_usable(cidr, gw, "gateway_ip")
        return gw

    def build_subnet(s: Session, ctx: AuthContext, obj: dict[str, Any]) -> m.Subnet:
        views.only(obj, SUBNET_ATTRS, "subnet")
        net = core.network(s, ctx, views.id_value(obj, "network_id", required=True))
        project = core.target_project(ctx, obj)
        if net.project_id != project and not ctx.is_admin:
            raise Forbidden("rule:create_subnet on a network of another project is disallowed "
                            "by policy")
        version = views.integer(obj, "ip_version", 4, 6) or 4
        if version != 4:
            raise BadRequest(f"Invalid input for operation: ip_version {version} is not "
                             "supported; only 4 (IPv4) is.")
        if obj.get("cidr") is None:
            raise BadRequest("Invalid input for operation: 'cidr' is required (subnet pools "
                             "are not supported).")
        cidr = ipam.parse_cidr(obj["cidr"])
        ipam.check_subnet_size(cidr)
        gateway = gateway_of(obj, cidr, ipam.default_gateway(cidr))
        if obj.get("allocation_pools") is None:
            pools = ipam.default_pools(cidr, gateway)
        else:
            pools = ipam.parse_pools(obj["allocation_pools"], cidr, gateway)
        for other in core.subnets_of(s, net.id):
            if ipaddress.IPv4Network(other.cidr).overlaps(cidr):
                raise BadRequest(f"Invalid input for operation: Requested subnet with cidr: "
                                 f"{cidr} for network: {net.id} overlaps with another subnet.")
        core.check_quota(s, project, "subnet")
        now = utcnow()
        sub = m.Subnet(
            id=new_id(), project_id=project, network_id=net.id, name=views.text(obj, "name"),
            description=views.text(obj, "description"), ip_version=4, cidr=str(cidr),
            gateway_ip=str(gateway) if gateway else None,
            enable_dhcp=views.boolean(obj, "enable_dhcp", True),
            allocation_pools=[[str(a), str(b)] for a, b in pools],
            dns_nameservers=nameservers(obj), host_routes=routes(obj),
            created_at=now, updated_at=now, revision_number=0,
        )
        s.add(sub)
        s.flush()
        core.sync_dhcp_port(s, net)
        return sub

    def visible_subnets(s: Session, ctx: AuthContext) -> list[m.Subnet]:
        q = sa.select(m.Subnet)
        if not ctx.is_admin:
            nets = sa.select(m.Network.id).where(sa.or_(
                m.Network.project_id == ctx.project_id, m.Network.shared, m.Network.external))
            q = q.where(sa.or_(m.Subnet.project_id == ctx.project_id,
                               m.Subnet.network_id.in_(nets)))
        return list(s.scalars(q))

    @router.add("GET", "/v2.0/subnets")
    def list_subnets(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        with core.db.session() as s:
            items = views.subnets(visible_subnets(s, ctx))
        return listing.apply(items, req.query, req.base_url, "/v2.0/subnets", "subnets")

    @router.add("POST", "/v2.0/subnets", status=201)
    def create_subnets(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        core.require_member(ctx, "create_subnet")
        objs, bulk = views.entities(req.body, "subnet", "subnets")

        def work(s: Session) -> list[dict[str, Any]]:
            return views.subnets([build_subnet(s, ctx, obj) for obj in objs])

        made = core.transaction(work)
        return {"subnets": made} if bulk else {"subnet": made[0]}

    @router.add("GET", "/v2.0/subnets/{subnet_id}")
    def show_subnet(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        with core.db.session() as s:
            sub = core.subnet(s, ctx, req.params["subnet_id"])
            return {"subnet": listing.trim(views.subnets([sub])[0], req.query)}

    @router.add("PUT", "/v2.0/subnets/{subnet_id}")
    def update_subnet(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        obj = views.entity(req.body, "subnet")
        views.only(obj, SUBNET_ATTRS, "subnet")

        def work(s: Session) -> dict[str, Any]:
            sub = core.subnet(s, ctx, req.params["subnet_id"])
            if not core.owns(ctx, sub.project_id):
                raise Forbidden("rule:update_subnet is disallowed by policy")
            core.require_member(ctx, "update_subnet")
            for key in SUBNET_READ_ONLY:
                current = {"network_id": sub.network_id, "ip_version": sub.ip_version,
                           "cidr": sub.cidr, "project_id": sub.project_id,
                           "tenant_id": sub.project_id}[key]
                if key in obj and obj[key] != current:
                    raise BadRequest(f"Cannot update read-only attribute {key}")
            cidr = ipaddress.IPv4Network(sub.cidr)
            current_gw = ipaddress.IPv4Address(sub.gateway_ip) if sub.gateway_ip else None
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
                sub.dns_nameservers = nameservers(obj)
            if "host_routes" in obj:
                sub.host_routes = routes(obj)
            sub.enable_dhcp = views.boolean(obj, "enable_dhcp", sub.enable_dhcp)
            sub.name = views.text(obj, "name", sub.name)
            sub.description = views.text(obj, "description", sub.description)
            sub.updated_at = utcnow()
            sub.revision_number += 1
            s.flush()
            net = s.get(m.Network, sub.network_id)
            assert net is not None
            core.sync_dhcp_port(s, net)
            return views.subnets([sub])[0]

        return {"subnet": core.transaction(work)}

    @router.add("DELETE", "/v2.0/subnets/{subnet_id}")
    def delete_subnet(req: Req) -> None:
        ctx = req.ctx

        def work(s: Session) -> None:
            sub = core.subnet(s, ctx, req.params["subnet_id"])
            if not core.owns(ctx, sub.project_id):
                raise Forbidden("rule:delete_subnet is disallowed by policy")
            core.require_member(ctx, "delete_subnet")
            used = s.scalar(
                sa.select(m.IPAllocation.port_id)
                .join(m.Port, m.Port.id == m.IPAllocation.port_id)
                .where(m.IPAllocation.subnet_id == sub.id, m.Port.device_owner != DHCP_OWNER))
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

    # ---- quotas ------------------------------------------------------------------------

    def quota_project(req: Req, admin_only: bool = False) -> str:
        ctx = req.ctx
        project = req.params["project_id"]
        if admin_only and not ctx.is_admin:
            raise Forbidden("rule:update_quota is disallowed by policy")
        if not core.owns(ctx, project):
            raise Forbidden("rule:get_quota is disallowed by policy")
        if len(project) > 64 or "\x00" in project:
            raise BadRequest(f"{project!r} is not a valid project ID.")
        return project

    @router.add("GET", "/v2.0/quotas")
    def list_quotas(req: Req) -> dict[str, Any]:
        core.require_admin(req.ctx, "get_quota")
        with core.db.session() as s:
            projects = sorted(set(s.scalars(sa.select(m.Quota.project_id))))
            return {"quotas": [{"project_id": p, "tenant_id": p, **core.quota_limits(s, p)}
                               for p in projects]}

    @router.add("GET", "/v2.0/quotas/{project_id}")
    @router.add("GET", "/v2.0/quotas/{project_id}.json")
    def show_quota(req: Req) -> dict[str, Any]:
        project = quota_project(req)
        with core.db.session() as s:
            return {"quota": core.quota_limits(s, project)}

    @router.add("GET", "/v2.0/quotas/{project_id}/default")
    def default_quota(req: Req) -> dict[str, Any]:
        quota_project(req)
        return {"quota": dict(settings.quotas)}

    @router.add("GET", "/v2.0/quotas/{project_id}/details")
    @router.add("GET", "/v2.0/quotas/{project_id}/details.json")
    def quota_details(req: Req) -> dict[str, Any]:
        project = quota_project(req)
        with core.db.session() as s:
            limits = core.quota_limits(s, project)
            return {"quota": {r: {"limit": limits[r], "used": core.usage(s, project, r),
                                  "reserved": 0} for r in QUOTA_RESOURCES}}

    @router.add("PUT", "/v2.0/quotas/{project_id}")
    def update_quota(req: Req) -> dict[str, Any]:
        project = quota_project(req, admin_only=True)
        obj = views.entity(req.body, "quota")
        views.only(obj, set(QUOTA_RESOURCES), "quota")
        values = {r: views.integer(obj, r, -1, 2**31 - 1) for r in obj}

        def work(s: Session) -> dict[str, Any]:
            for resource, limit in values.items():
                if limit is None:
                    continue
                row = s.get(m.Quota, (project, resource))
                if row is None:
                    s.add(m.Quota(project_id=project, resource=resource, limit=limit))
                else:
                    row.limit = limit
            s.flush()
            return core.quota_limits(s, project)

        return {"quota": core.transaction(work)}

    @router.add("DELETE", "/v2.0/quotas/{project_id}")
    def reset_quota(req: Req) -> None:
        project = quota_project(req, admin_only=True)

        def work(s: Session) -> None:
            s.execute(sa.delete(m.Quota).where(m.Quota.project_id == project))

        core.transaction(work)
