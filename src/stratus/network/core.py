"""The network service layer's entry point: ``NetworkCore``, the object every handler gets.

``NetworkCore`` holds the database and the settings, runs transactions
(``Database.transaction`` with the host-state tracking of ``tracking.py``),
checks policy, looks resources up as a caller may see them, counts quotas,
and inherits the allocations of ``allocation.py``. The resource services hang
off it (``core.networks``, ``core.ports``, ``core.routers``...): each owns the
sessions and queries of one resource and answers rendered documents. The HTTP
handlers (``api/``) parse requests, call these, and shape the answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common import longpoll, policy
from stratus.common.auth import AuthContext, require_project_scope
from stratus.common.db import Database
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.network import models as m
from stratus.network.agents import AgentService
from stratus.network.allocation import Allocations
from stratus.network.floatingips import FloatingIPService
from stratus.network.hosts import HostService
from stratus.network.networks import NetworkService
from stratus.network.ports import PortService
from stratus.network.quotas import QuotaService
from stratus.network.routers import RouterService
from stratus.network.secgroups import SecurityGroupService
from stratus.network.settings import (
    DHCP_OWNER,
    FLOATINGIP_OWNER,
    NETWORK_TYPES,
    QUOTA_RESOURCES,
    ROUTER_GATEWAY,
    ROUTER_INTERFACE,
    SECTION,
    SEGMENT_LIMITS,
    Settings,
    neutron,
    valid_mac,
)
from stratus.network.subnetpools import SubnetPoolService
from stratus.network.subnets import SubnetService
from stratus.network.tracking import TRACK, bump_generation, bump_if_changed, read_generation

__all__ = [
    "DHCP_OWNER", "FLOATINGIP_OWNER", "NETWORK_TYPES", "QUOTA_RESOURCES", "ROUTER_GATEWAY",
    "ROUTER_INTERFACE", "SECTION", "SEGMENT_LIMITS", "TRANSACTION_ATTEMPTS", "NetworkCore",
    "Settings", "bump_generation", "neutron", "read_generation", "valid_mac",
]

T = TypeVar("T")
TRANSACTION_ATTEMPTS = 40
CONFLICT_MESSAGE = "The request conflicted with concurrent changes; try again."

_QUOTA_MODELS: dict[str, Any] = {
    "network": m.Network,
    "subnet": m.Subnet,
    "port": m.Port,
    "router": m.Router,
    "floatingip": m.FloatingIP,
    "security_group": m.SecurityGroup,
    "security_group_rule": m.SecurityGroupRule,
}


def _track(session: Session) -> None:
    session.info[TRACK] = True


def _bump_if_changed(session: Session) -> None:
    # the generations of the hosts the transaction touched; their agents' long-polls
    # (and the port-status waits) in this process read at once after the commit
    if bump_if_changed(session):
        longpoll.note_change(session)


class NetworkCore(Allocations):
    """The network service's behaviour over its database."""

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or Settings()
        self.networks = NetworkService(self)
        self.subnets = SubnetService(self)
        self.subnetpools = SubnetPoolService(self)
        self.quotas = QuotaService(self)
        self.ports = PortService(self)
        self.routers = RouterService(self)
        self.floatingips = FloatingIPService(self)
        self.security_groups = SecurityGroupService(self)
        self.hosts = HostService(self)
        self.agents = AgentService(self)

    # ---- transactions ------------------------------------------------------------------

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction; rerun it when a unique value was taken meanwhile.

        ``work`` must choose its unique values (addresses, MACs, segment IDs)
        afresh each time it runs. A conflict that persists becomes a 409. A
        transaction that changed what a host state document is built from bumps
        the state generation before it commits.
        """
        try:
            return self.db.transaction(work, attempts=TRANSACTION_ATTEMPTS, begin=_track,
                                       before_commit=_bump_if_changed,
                                       after_commit=longpoll.poke_if_noted)
        except Conflict as exc:
            # The retry loop's own 409 (an IntegrityError on every attempt) keeps the
            # network service's wording; a 409 raised by ``work`` passes unchanged.
            if isinstance(exc.__context__, sa.exc.IntegrityError):
                raise Conflict(CONFLICT_MESSAGE) from None
            raise

    def generation(self) -> int:
        """The newest generation of any host's desired state (``state_generation``)."""
        with self.db.session() as s:
            return read_generation(s)

    # ---- policy -----------------------------------------------------------------------

    @staticmethod
    def require_member(ctx: AuthContext, action: str) -> None:
        if not policy.permits(ctx, action, policy.has_role(ctx, "member")):
            raise Forbidden(f"rule:{action} is disallowed by policy")

    @staticmethod
    def require_admin(ctx: AuthContext, action: str) -> None:
        if not policy.permits(ctx, action, ctx.is_admin):
            raise Forbidden(f"rule:{action} is disallowed by policy")

    @staticmethod
    def owns(ctx: AuthContext, project_id: str) -> bool:
        return ctx.is_admin or (ctx.project_id is not None and ctx.project_id == project_id)

    def target_project(self, ctx: AuthContext, obj: dict[str, Any]) -> str:
        """The project a new resource belongs to: the caller's, or any for an admin."""
        own = require_project_scope(ctx, "This request")  # never a system/domain token
        wanted = obj.get("project_id") or obj.get("tenant_id")
        if wanted is not None:
            if not isinstance(wanted, str) or not 0 < len(wanted) <= 64 or "\x00" in wanted:
                raise BadRequest("'project_id' must be a project ID (a string of 1-64 chars).")
            if obj.get("project_id") and obj.get("tenant_id") and (
                obj["project_id"] != obj["tenant_id"]
            ):
                raise BadRequest("'project_id' and 'tenant_id' do not match.")
            if wanted != ctx.project_id and not ctx.is_admin:
                raise Forbidden(
                    "Specifying 'project_id' or 'tenant_id' other than the authenticated "
                    "project in request requires admin privileges"
                )
            return wanted
        return own

    @staticmethod
    def network_visible(ctx: AuthContext, net: m.Network) -> bool:
        return (
            ctx.is_admin or net.shared or net.external or net.project_id == ctx.project_id
        )

    # ---- lookups ----------------------------------------------------------------------

    def network(self, s: Session, ctx: AuthContext, net_id: object) -> m.Network:
        net = s.get(m.Network, net_id) if isinstance(net_id, str) and net_id else None
        if net is None or not self.network_visible(ctx, net):
            raise neutron(NotFound, "NetworkNotFound", f"Network {net_id} could not be found.")
        return net

    def subnet(self, s: Session, ctx: AuthContext, subnet_id: object) -> m.Subnet:
        sub = s.get(m.Subnet, subnet_id) if isinstance(subnet_id, str) and subnet_id else None
        if sub is not None:
            net = s.get(m.Network, sub.network_id)
            if net is not None and (
                self.network_visible(ctx, net) or self.owns(ctx, sub.project_id)
            ):
                return sub
        raise neutron(NotFound, "SubnetNotFound", f"Subnet {subnet_id} could not be found.")

    def port(self, s: Session, ctx: AuthContext, port_id: object) -> m.Port:
        port = s.get(m.Port, port_id) if isinstance(port_id, str) and port_id else None
        if port is None or not self.port_visible(s, ctx, port):
            raise neutron(NotFound, "PortNotFound", f"Port {port_id} could not be found.")
        return port

    def port_visible(self, s: Session, ctx: AuthContext, port: m.Port) -> bool:
        if self.owns(ctx, port.project_id):
            return True
        net = s.get(m.Network, port.network_id)
        return net is not None and net.project_id == ctx.project_id

    def router(self, s: Session, ctx: AuthContext, router_id: object) -> m.Router:
        r = s.get(m.Router, router_id) if isinstance(router_id, str) and router_id else None
        if r is None or not self.owns(ctx, r.project_id):
            raise neutron(NotFound, "RouterNotFound", f"Router {router_id} could not be found.")
        return r

    def floatingip(self, s: Session, ctx: AuthContext, fip_id: object) -> m.FloatingIP:
        f = s.get(m.FloatingIP, fip_id) if isinstance(fip_id, str) and fip_id else None
        if f is None or not self.owns(ctx, f.project_id):
            raise neutron(
                NotFound, "FloatingIPNotFound", f"Floating IP {fip_id} could not be found"
            )
        return f

    def security_group(self, s: Session, ctx: AuthContext, sg_id: object) -> m.SecurityGroup:
        g = s.get(m.SecurityGroup, sg_id) if isinstance(sg_id, str) and sg_id else None
        if g is None or not self.owns(ctx, g.project_id):
            raise neutron(
                NotFound, "SecurityGroupNotFound", f"Security group {sg_id} does not exist"
            )
        return g

    # ---- quotas -----------------------------------------------------------------------

    def quota_limits(self, s: Session, project_id: str) -> dict[str, int]:
        limits = dict(self.settings.quotas)
        for row in s.scalars(sa.select(m.Quota).where(m.Quota.project_id == project_id)):
            if row.resource in limits:
                limits[row.resource] = row.limit
        return limits

    def usage(self, s: Session, project_id: str, resource: str) -> int:
        model = _QUOTA_MODELS[resource]
        q = sa.select(sa.func.count()).select_from(model).where(model.project_id == project_id)
        return int(s.scalar(q) or 0)

    def check_quota(self, s: Session, project_id: str, resource: str, adding: int = 1) -> None:
        limit = self.quota_limits(s, project_id)[resource]
        if limit < 0:
            return
        if self.usage(s, project_id, resource) + adding > limit:
            raise neutron(
                Conflict, "OverQuota", f"Quota exceeded for resources: ['{resource}']."
            )
