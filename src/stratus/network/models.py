"""Network database tables (SQLAlchemy 2). Schema changes go through migrations/.

Uniqueness that must hold under concurrency is enforced by the database, not
by a read-then-write: one address per subnet (``uq_ipallocation_subnet_ip``),
one MAC per network (``uq_port_network_mac``), one segmentation ID per type
(``uq_network_segment``), one flat network per physical network, one default
security group per project. Writers that pick a value insert it and retry
their transaction when the constraint refuses it (see ``core.transaction``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class NetworkBase(DeclarativeBase):
    pass


JSON = sa.JSON()


class Standard:
    """Attributes every Neutron resource carries (standard-attr-*)."""

    description: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    revision_number: Mapped[int] = mapped_column(default=0)


class Network(Standard, NetworkBase):
    __tablename__ = "network"
    __table_args__ = (
        sa.UniqueConstraint("network_type", "segmentation_id", name="uq_network_segment"),
        sa.UniqueConstraint("network_type", "physical_network", name="uq_network_physnet"),
    )
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(default=False)
    external: Mapped[bool] = mapped_column(default=False)
    network_type: Mapped[str] = mapped_column(sa.String(16))
    # NULL for tunnels (so the flat uniqueness above never involves them).
    physical_network: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(nullable=True)
    mtu: Mapped[int] = mapped_column()
    port_security_enabled: Mapped[bool] = mapped_column(default=True)


class Subnet(Standard, NetworkBase):
    __tablename__ = "subnet"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    network_id: Mapped[str] = mapped_column(
        sa.ForeignKey("network.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    ip_version: Mapped[int] = mapped_column(default=4)
    cidr: Mapped[str] = mapped_column(sa.String(64))
    gateway_ip: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(default=True)
    # [[start, end], ...]
    allocation_pools: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{"destination": cidr, "nexthop": ip}, ...]
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # The subnet pool its CIDR was allocated from (``subnetpools.py``), or NULL.
    subnetpool_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True, index=True)
    # IPv6 only: slaac, dhcpv6-stateful, dhcpv6-stateless or NULL (``subnets.check_ipv6_modes``).
    ipv6_ra_mode: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)


class Port(Standard, NetworkBase):
    __tablename__ = "port"
    __table_args__ = (
        sa.UniqueConstraint("network_id", "mac_address", name="uq_port_network_mac"),
    )
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    network_id: Mapped[str] = mapped_column(sa.ForeignKey("network.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    mac_address: Mapped[str] = mapped_column(sa.String(17))
    admin_state_up: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(sa.String(255), default="", index=True)
    device_owner: Mapped[str] = mapped_column(sa.String(255), default="")
    port_security_enabled: Mapped[bool] = mapped_column(default=True)
    host_id: Mapped[str] = mapped_column(sa.String(255), default="", index=True)
    # [{"ip_address": ip-or-cidr, "mac_address": mac}, ...]
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # [{"opt_name": name, "opt_value": value, "ip_version": 4}, ...] (``extra_dhcp_opt``);
    # NULL on rows made before the column existed: read as [].
    extra_dhcp_opts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)


class IPAllocation(NetworkBase):
    """One fixed IP of a port; the unique constraint is what makes IPAM race-free."""

    __tablename__ = "ipallocation"
    __table_args__ = (
        sa.UniqueConstraint("subnet_id", "ip_address", name="uq_ipallocation_subnet_ip"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    port_id: Mapped[str] = mapped_column(sa.ForeignKey("port.id", ondelete="CASCADE"), index=True)
    subnet_id: Mapped[str] = mapped_column(sa.ForeignKey("subnet.id"), index=True)
    network_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    ip_address: Mapped[str] = mapped_column(sa.String(64))


class SecurityGroup(Standard, NetworkBase):
    __tablename__ = "securitygroup"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    stateful: Mapped[bool] = mapped_column(default=True)
    # The project id for a project's `default` group, else NULL: one default per project.
    default_for: Mapped[str | None] = mapped_column(
        sa.String(64), nullable=True, unique=True
    )


class SecurityGroupRule(Standard, NetworkBase):
    __tablename__ = "securitygrouprule"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    security_group_id: Mapped[str] = mapped_column(
        sa.ForeignKey("securitygroup.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(sa.String(8))
    ethertype: Mapped[str] = mapped_column(sa.String(4))
    protocol: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("securitygroup.id", ondelete="CASCADE"), nullable=True
    )


class PortSecurityGroup(NetworkBase):
    __tablename__ = "port_securitygroup"
    port_id: Mapped[str] = mapped_column(
        sa.ForeignKey("port.id", ondelete="CASCADE"), primary_key=True
    )
    security_group_id: Mapped[str] = mapped_column(
        sa.ForeignKey("securitygroup.id"), primary_key=True, index=True
    )


class Router(Standard, NetworkBase):
    __tablename__ = "router"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("port.id", ondelete="SET NULL"), nullable=True
    )
    enable_snat: Mapped[bool] = mapped_column(default=True)
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class FloatingIP(Standard, NetworkBase):
    __tablename__ = "floatingip"
    __table_args__ = (
        sa.UniqueConstraint("fixed_port_id", "fixed_ip_address", name="uq_floatingip_fixed"),
    )
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    floating_network_id: Mapped[str] = mapped_column(sa.ForeignKey("network.id"), index=True)
    floating_ip_address: Mapped[str] = mapped_column(sa.String(64))
    floating_port_id: Mapped[str] = mapped_column(sa.ForeignKey("port.id"))
    fixed_port_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("port.id", ondelete="SET NULL"), nullable=True, index=True
    )
    fixed_ip_address: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True, index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="DOWN")


class SubnetPool(Standard, NetworkBase):
    """A subnet pool: the prefixes subnets are allocated from (``subnetpools.py``)."""

    __tablename__ = "subnetpool"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    ip_version: Mapped[int] = mapped_column(default=4)
    prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_prefixlen: Mapped[int] = mapped_column()
    min_prefixlen: Mapped[int] = mapped_column()
    max_prefixlen: Mapped[int] = mapped_column()
    shared: Mapped[bool] = mapped_column(default=False)
    # The IP version for the default pool of that family, else NULL: one default per family.
    default_for: Mapped[int | None] = mapped_column(nullable=True, unique=True)
    # Bumped by every allocation from the pool: the UPDATE serializes concurrent allocations.
    allocations: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class NetworkAgent(NetworkBase):
    """What an admin changed about one of a host's agents (``agents.py``): the rows the
    agents API shows are derived from ``agent_host``; this keeps admin_state_up, the
    description and a deletion (hidden until the host registers again)."""

    __tablename__ = "network_agent"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    agent_type: Mapped[str] = mapped_column(sa.String(64))
    admin_state_up: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AgentBinding(NetworkBase):
    """An admin's scheduling of a router (L3 agent) or a network (DHCP agent) on one
    host's agent (``agents.py``): ``hosted`` false removes it from that host, true adds a
    network no DHCP port would otherwise put there."""

    __tablename__ = "agent_binding"
    agent_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    resource_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    hosted: Mapped[bool] = mapped_column()


class Quota(NetworkBase):
    __tablename__ = "quota"
    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    limit: Mapped[int] = mapped_column()


def row_dict(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in sa.inspect(obj).mapper.column_attrs}


class AgentHost(NetworkBase):
    """A host whose network agent registered: its tunnel endpoint, whether it is a
    network node (DHCP servers, routers) and its L2 backend (null: not reported)."""

    __tablename__ = "agent_host"
    host: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    underlay_ip: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    network_node: Mapped[bool] = mapped_column(default=False)
    l2_backend: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column()


class StateGeneration(NetworkBase):
    """The generation of every host's desired state (one row, ``id`` 1): bumped in the
    same transaction as any change that can alter a host's state document, so a
    long-polling agent served by any API process sees it (``tracking.py``,
    ``hosts.py``, ``api/agent_hosts.py``). The sequence the per-host generations
    (``HostGeneration``) take their values from."""

    __tablename__ = "state_generation"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class HostGeneration(NetworkBase):
    """The generation of one host's desired state (``host``), or of every host
    (``/every``), or of every network node (``/network-nodes``): see ``tracking.py``.
    A host's generation is the largest of the rows that apply to it."""

    __tablename__ = "host_generation"
    host: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    generation: Mapped[int] = mapped_column(sa.BigInteger, default=0)
