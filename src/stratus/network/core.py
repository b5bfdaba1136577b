"""Network domain logic shared by the routes: settings, transactions, lookups, allocations.

Everything that decides something takes a database session; the HTTP layer
(api_*.py) parses requests and shapes answers. Values that must be unique
(addresses, MACs, segmentation IDs) are chosen here, inserted, and guarded by
unique constraints: ``transaction`` reruns the whole unit of work when one of
them refuses a value another request took first, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common import policy
from stratus.common.auth import AuthContext
from stratus.common.config import Config
from stratus.common.db import Database
from stratus.common.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)
from stratus.network import ipam
from stratus.network import models as m

T = TypeVar("T")
SECTION = "network"
QUOTA_RESOURCES = (
    "network",
    "subnet",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
)
NETWORK_TYPES = ("flat", "vxlan", "gre")
SEGMENT_LIMITS = {"vxlan": (1, 2**24 - 1), "gre": (1, 2**32 - 1)}
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"
DHCP_OWNER = "network:dhcp"
TRANSACTION_ATTEMPTS = 40

# --- the generation of the hosts' desired state -------------------------------------------
# A transaction run by ``NetworkCore.transaction`` is tracked: when it changed a row the host
# state documents are built from, it bumps ``state_generation`` before it commits (in the
# same transaction, so an agent woken by the new generation reads the new rows).
TRACK = "stratus.network.track"
CHANGED = "stratus.network.hoststate_changed"
STATE_MODELS: tuple[type, ...] = (
    m.Network, m.Subnet, m.Port, m.IPAllocation, m.SecurityGroup, m.SecurityGroupRule,
    m.PortSecurityGroup, m.Router, m.FloatingIP, m.AgentHost,
)
STATE_TABLES = {cls.__tablename__ for cls in STATE_MODELS}  # type: ignore[attr-defined]
# Columns in no host state document: a change of only these bumps nothing (the agents' own
# port status reports and registration refreshes must not wake them).
BOOKKEEPING = {"status", "updated_at", "revision_number"}


def _changes_host_state(obj: object) -> bool:
    if not isinstance(obj, STATE_MODELS):
        return False
    return any(attr.key not in BOOKKEEPING and attr.history.has_changes()
               for attr in sa.inspect(obj).attrs)


@sa.event.listens_for(Session, "before_flush")
def _track_flush(session: Session, _context: object, _instances: object) -> None:
    if not session.info.get(TRACK) or session.info.get(CHANGED):
        return
    if any(isinstance(o, STATE_MODELS) for o in (*session.new, *session.deleted)) or any(
            _changes_host_state(o) for o in session.dirty):
        session.info[CHANGED] = True


@sa.event.listens_for(Session, "do_orm_execute")
def _track_statement(state: sa.orm.ORMExecuteState) -> None:
    if not state.session.info.get(TRACK) or not (
            state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in STATE_TABLES:
        state.session.info[CHANGED] = True


def bump_generation(s: Session) -> None:
    """One more generation of every host's state (creates the row when it is missing)."""
    done = s.execute(sa.update(m.StateGeneration).where(m.StateGeneration.id == 1)
                     .values(generation=m.StateGeneration.generation + 1)
                     .execution_options(synchronize_session=False))
    if not getattr(done, "rowcount", 0):
        s.add(m.StateGeneration(id=1, generation=1))
        s.flush()


def read_generation(s: Session) -> int:
    return s.scalar(sa.select(m.StateGeneration.generation)
                    .where(m.StateGeneration.id == 1)) or 0


def neutron(cls: type[ApiError], kind: str, message: str) -> ApiError:
    """An API error whose Neutron ``type`` is ``kind`` (e.g. "NetworkNotFound")."""
    err = cls(message)
    err.title = kind
    return err


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class Settings:
    """The [network] section, parsed and checked once."""

    tenant_network_type: str = "vxlan"
    segment_ranges: dict[str, list[tuple[int, int]]] = field(
        default_factory=lambda: {"vxlan": [(1, 1000)], "gre": [(1, 1000)]}
    )
    flat_networks: tuple[str, ...] = ("*",)
    physical_mtu: int = 1500
    overhead: dict[str, int] = field(default_factory=lambda: {"vxlan": 50, "gre": 42, "flat": 0})
    base_mac: str = "fa:16:3e:00:00:00"
    max_dns_nameservers: int = 5
    max_host_routes: int = 20
    quotas: dict[str, int] = field(
        default_factory=lambda: {
            "network": 100,
            "subnet": 100,
            "port": 500,
            "router": 10,
            "floatingip": 50,
            "security_group": 10,
            "security_group_rule": 100,
        }
    )

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        tenant_type = config.get(SECTION, "tenant_network_type")
        if tenant_type not in ("vxlan", "gre"):
            raise ValueError(f"[network] tenant_network_type={tenant_type!r}: use vxlan or gre")
        ranges = {
            "vxlan": ipam.parse_ranges(
                config.get(SECTION, "vxlan_vni_ranges"), *SEGMENT_LIMITS["vxlan"],
                "[network] vxlan_vni_ranges",
            ),
            "gre": ipam.parse_ranges(
                config.get(SECTION, "gre_id_ranges"), *SEGMENT_LIMITS["gre"],
                "[network] gre_id_ranges",
            ),
        }
        base_mac = config.get(SECTION, "base_mac").lower()
        if not valid_mac(base_mac):
            raise ValueError(f"[network] base_mac={base_mac!r} is not a MAC address")
        return cls(
            tenant_network_type=tenant_type,
            segment_ranges=ranges,
            flat_networks=tuple(
                p.strip() for p in config.get(SECTION, "flat_networks").split(",") if p.strip()
            ),
            physical_mtu=config.get_int(SECTION, "physical_mtu", minimum=576),
            overhead={
                "vxlan": config.get_int(SECTION, "vxlan_overhead", minimum=0),
                "gre": config.get_int(SECTION, "gre_overhead", minimum=0),
                "flat": 0,
            },
            base_mac=base_mac,
            max_dns_nameservers=config.get_int(SECTION, "max_dns_nameservers", minimum=0),
            max_host_routes=config.get_int(SECTION, "max_host_routes", minimum=0),
            quotas={r: config.get_int(SECTION, f"quota_{r}", minimum=-1) for r in QUOTA_RESOURCES},
        )

    def max_mtu(self, network_type: str) -> int:
        return self.physical_mtu - self.overhead.get(network_type, 0)


def valid_mac(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 17:
        return False
    parts = value.split(":")
    return len(parts) == 6 and all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )


_QUOTA_MODELS: dict[str, Any] = {
    "network": m.Network,
    "subnet": m.Subnet,
    "port": m.Port,
    "router": m.Router,
    "floatingip": m.FloatingIP,
    "security_group": m.SecurityGroup,
    "security_group_rule": m.SecurityGroupRule,
}


class NetworkCore:
    """The network service's behaviour over its database."""

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or Settings()

    # ---- transactions ------------------------------------------------------------------

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction; rerun it when a unique value was taken meanwhile.

        ``work`` must choose its unique values (addresses, MACs, segment IDs)
        afresh each time it runs. A conflict that persists becomes a 409.
        """
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                with self.db.session() as session:
                    session.info[TRACK] = True
                    result = work(session)
                    session.flush()
                    if session.info.pop(CHANGED, False):
                        bump_generation(session)
                    return result
            except sa.exc.IntegrityError:
                if attempt == TRANSACTION_ATTEMPTS - 1:
                    raise Conflict(
                        "The request conflicted with concurrent changes; try again."
                    ) from None
            except sa.exc.OperationalError as exc:
                text = str(exc.orig).lower()
                retryable = "locked" in text or "deadlock" in text or "serializ" in text
                if not retryable or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise ServiceUnavailable("The network database is too busy; try again.")  # not reached

    def generation(self) -> int:
        """The current generation of the hosts' desired state (``state_generation``)."""
        with self.db.session() as s:
            return read_generation(s)

    # ---- policy -----------------------------------------------------------------------

    @staticmethod
    def require_member(ctx: AuthContext, action: str) -> None:
        if not policy.has_role(ctx, "member"):
            raise Forbidden(f"rule:{action} is disallowed by policy")

    @staticmethod
    def require_admin(ctx: AuthContext, action: str) -> None:
        if not ctx.is_admin:
            raise Forbidden(f"rule:{action} is disallowed by policy")

    @staticmethod
    def owns(ctx: AuthContext, project_id: str) -> bool:
        return ctx.is_admin or (ctx.project_id is not None and ctx.project_id == project_id)

    def target_project(self, ctx: AuthContext, obj: dict[str, Any]) -> str:
        """The project a new resource belongs to: the caller's, or any for an admin."""
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
        if not ctx.project_id:
            raise BadRequest("A project-scoped token is needed to create resources.")
        return ctx.project_id

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
    def pools(sub: m.Subnet) -> list[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]]:
        return [
            (ipaddress.IPv4Address(a), ipaddress.IPv4Address(b)) for a, b in sub.allocation_pools
        ]

    def allocate_ip(self, s: Session, sub: m.Subnet) -> str | None:
        """A free address of the subnet's pools, or None when the pools are full."""
        return ipam.pick_free_ip(self.pools(sub), self.allocated(s, sub.id))

    def resolve_fixed_ips(
        self, s: Session, net: m.Network, requested: list[dict[str, Any]] | None,
        device_owner: str = "",
    ) -> list[tuple[str, str]]:
        """(subnet_id, ip) pairs for a port; None asks for one address on the network.

        Requested addresses are checked for use now (409) and again by the
        unique constraint when inserted; automatic ones are picked at random
        among free ones.
        """
        subnets = self.subnets_of(s, net.id)
        if requested is None:
            for candidate in subnets:
                ip = self.allocate_ip(s, candidate)
                if ip is not None:
                    return [(candidate.id, ip)]
            if not subnets:
                return []
            raise neutron(
                Conflict, "IpAddressGenerationFailure",
                f"No more IP addresses available on network {net.id}.",
            )
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
                addr = ipam.parse_ip(ip_text, "fixed ip_address")
                if sub is None:
                    sub = next(
                        (x for x in subnets if addr in ipaddress.IPv4Network(x.cidr)), None
                    )
                    if sub is None:
                        raise BadRequest(
                            f"IP address {addr} does not belong to any subnet of network {net.id}."
                        )
                net_cidr = ipaddress.IPv4Network(sub.cidr)
                ipam.check_usable(net_cidr, addr, "fixed ip_address")
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
                ip_auto = self.allocate_ip(s, sub)
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
        for sub in wanted:
            if sub.id in have:
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
                device_id=f"dhcp-{net.id}",
            )
            return
        for subnet_id, ip in add:
            s.add(m.IPAllocation(port_id=port.id, subnet_id=subnet_id, network_id=net.id,
                                 ip_address=ip))
        port.updated_at = utcnow()
        s.flush()
