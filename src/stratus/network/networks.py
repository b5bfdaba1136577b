"""Networks: segments (tunnel IDs or a flat physical network), MTU, sharing, deletion.

``NetworkService`` (``core.networks``) owns the sessions and queries of the
network resource; it takes the request's object (already unwrapped from its
body) and answers the Neutron documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, Forbidden
from stratus.common.timeutil import new_id, utcnow
from stratus.network import models as m
from stratus.network import views
from stratus.network.settings import (
    DHCP_OWNER,
    FLOATINGIP_OWNER,
    NETWORK_TYPES,
    ROUTER_GATEWAY,
    SEGMENT_LIMITS,
    neutron,
)

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

STANDARD = {"name", "description", "project_id", "tenant_id", "tags"}
NETWORK_ATTRS = STANDARD | {
    "admin_state_up", "shared", "router:external", "provider:network_type",
    "provider:physical_network", "provider:segmentation_id", "mtu", "port_security_enabled",
    "availability_zone_hints", "dns_domain",
}
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


class NetworkService:
    """The network resource over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    def _build(self, s: Session, ctx: AuthContext, obj: dict[str, Any]) -> m.Network:
        core, settings = self.core, self.core.settings
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

    def visible(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """Every network the caller may see (its own, shared and external ones; all: admin)."""
        q = sa.select(m.Network)
        if not ctx.is_admin:
            q = q.where(sa.or_(m.Network.project_id == ctx.project_id, m.Network.shared,
                               m.Network.external))
        with self.core.db.session() as s:
            return views.networks(s, list(s.scalars(q)), ctx.is_admin)

    def create(self, ctx: AuthContext, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create the networks of ``objs`` in one transaction."""

        def work(s: Session) -> list[dict[str, Any]]:
            nets = [self._build(s, ctx, obj) for obj in objs]
            return views.networks(s, nets, ctx.is_admin)

        return self.core.transaction(work)

    def show(self, ctx: AuthContext, network_id: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            net = self.core.network(s, ctx, network_id)
            return views.networks(s, [net], ctx.is_admin)[0]

    def update(self, ctx: AuthContext, network_id: str, obj: dict[str, Any]) -> dict[str, Any]:
        core, settings = self.core, self.core.settings

        def work(s: Session) -> dict[str, Any]:
            net = core.network(s, ctx, network_id)
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

        return core.transaction(work)

    def delete(self, ctx: AuthContext, network_id: str) -> None:
        """Delete a network with its subnets and DHCP port; 409 while other ports use it."""
        core = self.core

        def work(s: Session) -> None:
            net = core.network(s, ctx, network_id)
            if not core.owns(ctx, net.project_id):
                raise Forbidden("rule:delete_network is disallowed by policy")
            core.require_member(ctx, "delete_network")
            # Unassociated floating IPs go with their external network, as in Neutron
            # (Tempest: test_delete_external_networks_with_floating_ip); associated ones
            # keep it in use.
            loose = list(s.scalars(sa.select(m.FloatingIP).where(
                m.FloatingIP.floating_network_id == net.id,
                m.FloatingIP.fixed_port_id.is_(None))))
            loose_ports = {f.floating_port_id for f in loose}
            in_use = s.scalar(sa.select(m.Port.id).where(
                m.Port.network_id == net.id, m.Port.device_owner != DHCP_OWNER,
                m.Port.id.not_in(loose_ports)))
            if in_use is not None:
                raise neutron(Conflict, "NetworkInUse",
                              f"Unable to complete operation on network {net.id}. There are "
                              "one or more ports still in use on the network.")
            for fip in loose:
                s.delete(fip)
            s.flush()
            s.execute(sa.delete(m.Port).where(m.Port.network_id == net.id))
            s.execute(sa.delete(m.Subnet).where(m.Subnet.network_id == net.id))
            s.delete(net)

        core.transaction(work)
