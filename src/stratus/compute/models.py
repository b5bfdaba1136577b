"""Compute database models (SQLAlchemy 2). Only stratus-compute reads these tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from stratus.common.db import Base


class ComputeBase(Base):
    __abstract__ = True
    metadata = sa.MetaData()


class Flavor(ComputeBase):
    __tablename__ = "flavor"
    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    vcpus: Mapped[int] = mapped_column(sa.Integer)
    ram: Mapped[int] = mapped_column(sa.Integer)
    disk: Mapped[int] = mapped_column(sa.Integer)
    ephemeral: Mapped[int] = mapped_column(sa.Integer, default=0)
    swap: Mapped[int] = mapped_column(sa.Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(sa.Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    extra_specs: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class FlavorAccess(ComputeBase):
    __tablename__ = "flavor_access"
    flavor_id: Mapped[str] = mapped_column(
        sa.String(255), sa.ForeignKey("flavor.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)


class KeyPair(ComputeBase):
    __tablename__ = "key_pair"
    __table_args__ = (sa.UniqueConstraint("user_id", "name", name="uq_key_pair_user_name"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(16), default="ssh")
    public_key: Mapped[str] = mapped_column(sa.Text)
    fingerprint: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class ComputeHost(ComputeBase):
    """A hypervisor: its reported inventory, the API's own claims, and its service state."""

    __tablename__ = "compute_host"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(sa.String(255), unique=True)
    hypervisor_hostname: Mapped[str] = mapped_column(sa.String(255))
    availability_zone: Mapped[str] = mapped_column(sa.String(255))
    vcpus: Mapped[int] = mapped_column(sa.Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(sa.Integer, default=0)
    local_gb: Mapped[int] = mapped_column(sa.Integer, default=0)
    vcpus_used: Mapped[int] = mapped_column(sa.Integer, default=0)
    memory_mb_used: Mapped[int] = mapped_column(sa.Integer, default=0)
    local_gb_used: Mapped[int] = mapped_column(sa.Integer, default=0)
    running_vms: Mapped[int] = mapped_column(sa.Integer, default=0)
    virt_type: Mapped[str] = mapped_column(sa.String(16), default="kvm")
    hypervisor_type: Mapped[str] = mapped_column(sa.String(32), default="QEMU")
    hypervisor_version: Mapped[int] = mapped_column(sa.Integer, default=0)
    host_ip: Mapped[str] = mapped_column(sa.String(64), default="")
    cpu_arch: Mapped[str] = mapped_column(sa.String(32), default="x86_64")
    # What the scheduler placed here (the capacity the API counts, not the agent's figures).
    claimed_vcpus: Mapped[int] = mapped_column(sa.Integer, default=0)
    claimed_ram: Mapped[int] = mapped_column(sa.Integer, default=0)
    claimed_disk: Mapped[int] = mapped_column(sa.Integer, default=0)
    claimed_instances: Mapped[int] = mapped_column(sa.Integer, default=0)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # The agent's host problems (contracts.compute.HostProblem as dicts; migration 0003).
    problems: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON, nullable=True)
    generation: Mapped[int] = mapped_column(sa.Integer, default=0)
    heartbeat_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    # The availability zone of the host aggregate it is in (compute/aggregates.py,
    # migration 0013); over the zone its agent reports when set.
    aggregate_zone: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    # The host's uptime line its agent last reported (os-hypervisors; migration 0014);
    # None until an agent that reports it has heartbeated.
    uptime: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)

    @property
    def zone(self) -> str:
        """The host's availability zone: its aggregate's, else the one its agent reports."""
        return self.aggregate_zone or self.availability_zone


class Server(ComputeBase):
    __tablename__ = "server"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    hostname: Mapped[str] = mapped_column(sa.String(255))
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    user_id: Mapped[str] = mapped_column(sa.String(64))
    image_id: Mapped[str] = mapped_column(sa.String(36))
    image: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    flavor_id: Mapped[str] = mapped_column(sa.String(255))
    flavor: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    vm_state: Mapped[str] = mapped_column(sa.String(32))
    task_state: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    power_state: Mapped[int] = mapped_column(sa.Integer, default=0)
    desired_power: Mapped[str] = mapped_column(sa.String(16), default="running")
    reboot_generation: Mapped[int] = mapped_column(sa.Integer, default=0)
    reboot_type: Mapped[str] = mapped_column(sa.String(8), default="SOFT")
    # the last rebuild asked for: the agent rebuilds while its own is below it (0005)
    rebuild_generation: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # the last injectNetworkInfo asked: the agent re-plugs the ports while its own is
    # below it (0012, compute/admin_actions.py)
    network_generation: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # a resize (0007, compute/server_resize.py): the flavor it came from while it waits to be
    # confirmed, the last resize or revert asked of the agent, and whether that is a revert
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    old_flavor_id: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    resize_generation: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    resize_revert: Mapped[bool] = mapped_column(sa.Boolean, default=False,
                                                server_default=sa.false())
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(sa.JSON, nullable=True)
    host: Mapped[str | None] = mapped_column(sa.String(255), nullable=True, index=True)
    availability_zone: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    requested_az: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    tried_hosts: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    attempt: Mapped[int] = mapped_column(sa.Integer, default=0)
    scheduling: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    key_name: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    key_data: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    key_type: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    user_data: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    security_groups: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    config_drive: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    launch_index: Mapped[int] = mapped_column(sa.Integer, default=0)
    fault: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    password: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    console_tail: Mapped[str] = mapped_column(sa.Text, default="")
    snapshots: Mapped[list[dict[str, str]]] = mapped_column(sa.JSON, default=list)
    group_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    progress: Mapped[int] = mapped_column(sa.Integer, default=0)
    access_ip_v4: Mapped[str | None] = mapped_column(sa.String(45), nullable=True)
    access_ip_v6: Mapped[str | None] = mapped_column(sa.String(45), nullable=True)
    # OS-DCF:diskConfig given at create, update, rebuild or resize (0010)
    disk_config: Mapped[str] = mapped_column(sa.String(8), default="MANUAL",
                                             server_default="MANUAL")
    # the lock action (0015, compute/server_lock.py): None unlocked, else "owner"/"admin"
    locked_by: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    locked_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)
    launched_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class ServerPort(ComputeBase):
    """A port of a server, with what the agent and the metadata document need."""

    __tablename__ = "server_port"
    port_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    server_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    network_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    network_name: Mapped[str] = mapped_column(sa.String(255), default="")
    mac_address: Mapped[str] = mapped_column(sa.String(32))
    mtu: Mapped[int] = mapped_column(sa.Integer, default=1500)
    fixed_ips: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    subnets: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    created_by_us: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    tag: Mapped[str | None] = mapped_column(sa.String(60), nullable=True)  # 2.49 (0008)


class ServerAddress(ComputeBase):
    """network + fixed IP -> server, for the metadata lookup."""

    __tablename__ = "server_address"
    network_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    ip_address: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    server_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"), index=True
    )


class ServerGroup(ComputeBase):
    __tablename__ = "server_group"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    user_id: Mapped[str] = mapped_column(sa.String(64))
    policy: Mapped[str] = mapped_column(sa.String(32))
    members: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class QuotaLimit(ComputeBase):
    __tablename__ = "quota_limit"
    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(sa.Integer)


class QuotaClassLimit(ComputeBase):
    """A quota class's limit (os-quota-class-sets; migration 0011): the ``default`` class's
    rows are the defaults of every project without its own override."""

    __tablename__ = "quota_class_limit"
    class_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(sa.Integer)


class ProjectUsage(ComputeBase):
    """Counters changed by conditional UPDATEs so concurrent creates cannot pass the quota."""

    __tablename__ = "project_usage"
    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    instances: Mapped[int] = mapped_column(sa.Integer, default=0)
    cores: Mapped[int] = mapped_column(sa.Integer, default=0)
    ram: Mapped[int] = mapped_column(sa.Integer, default=0)


class BlockDeviceMapping(ComputeBase):
    """A volume of a server (Nova's block device mapping): the attachment the volume API
    made for it, its connection_info, and where the attach or detach is
    (``compute/volumes.py``): reserving -> attaching -> attached -> detaching -> gone."""

    __tablename__ = "block_device_mapping"
    __table_args__ = (sa.UniqueConstraint("server_id", "volume_id", name="uq_bdm_server_volume"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    server_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"), index=True
    )
    volume_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    attachment_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    device: Mapped[str] = mapped_column(sa.String(32))
    tag: Mapped[str | None] = mapped_column(sa.String(60), nullable=True)
    boot_index: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    status: Mapped[str] = mapped_column(sa.String(16))
    connection_info: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)


class ServerConsole(ComputeBase):
    """Where a server's VNC display is, as its host's agent last reported it (0006)."""

    __tablename__ = "server_console"
    server_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(sa.String(255))  # the compute host's name
    address: Mapped[str] = mapped_column(sa.String(255))  # what the display listens on
    port: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)


class ConsoleToken(ComputeBase):
    """A one-time console token (Nova's consoleauth): only its SHA-256 is kept; it is for
    one server, expires, and is spent by its first use (``compute/consoles.py``, 0006)."""

    __tablename__ = "console_token"
    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    server_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"), index=True
    )
    console_type: Mapped[str] = mapped_column(sa.String(16))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class Migration(ComputeBase):
    """One resize of a server as ``os-migrations`` lists it (0007): migrating -> finished
    (VERIFY_RESIZE) -> confirmed, or -> reverted; error when the agent failed it."""

    __tablename__ = "migration"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    server_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    project_id: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[str] = mapped_column(sa.String(64))
    migration_type: Mapped[str] = mapped_column(sa.String(16))
    source_compute: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    dest_compute: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    old_flavor_id: Mapped[str] = mapped_column(sa.String(255))
    new_flavor_id: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)


class InstanceAction(ComputeBase):
    """One request that changed a server (Nova's instance action, 0009;
    ``compute/instance_actions.py``): kept as long as the server row, deleted or not."""

    __tablename__ = "instance_action"
    __table_args__ = (sa.Index("ix_instance_action_server_request", "server_id", "request_id"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    project_id: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    start_time: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)


class InstanceActionEvent(ComputeBase):
    """The work of an action (``compute_<thing>``): open (no ``finish_time``) until the
    agent's report or the API ends it; ``awaits`` says which (task, report, delete)."""

    __tablename__ = "instance_action_event"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("instance_action.id", ondelete="CASCADE"), index=True)
    server_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(sa.String(64))
    awaits: Mapped[str] = mapped_column(sa.String(8))
    host: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    start_time: Mapped[datetime] = mapped_column(sa.DateTime)
    finish_time: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    traceback: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    details: Mapped[str | None] = mapped_column(sa.Text, nullable=True)


class Aggregate(ComputeBase):
    """A host aggregate (os-aggregates, compute/aggregates.py); deleting one removes it."""

    __tablename__ = "aggregate"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    availability_zone: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    # metadata other than availability_zone (kept in its own column)
    meta: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class AggregateHost(ComputeBase):
    """A compute host's membership of an aggregate (``id``: the order of adding)."""

    __tablename__ = "aggregate_host"
    __table_args__ = (sa.UniqueConstraint("aggregate_id", "host",
                                          name="uq_aggregate_host"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    aggregate_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("aggregate.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(sa.String(255), index=True)
