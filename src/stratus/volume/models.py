"""Volume database models (SQLAlchemy 2). Only stratus-volume reads these tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from stratus.common.db import Base


class VolumeBase(Base):
    __abstract__ = True
    metadata = sa.MetaData()


class VolumeType(VolumeBase):
    __tablename__ = "volume_type"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    is_public: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    extra_specs: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class Volume(VolumeBase):
    """A volume. ``host`` is the storage host holding its file (None: none was found);
    ``source_kind``/``source_id`` say what it was made from (the agent's VolumeSpec)."""

    __tablename__ = "volume"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    user_id: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    size: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    previous_status: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    attach_status: Mapped[str] = mapped_column(sa.String(32), default="detached")
    availability_zone: Mapped[str] = mapped_column(sa.String(255))
    volume_type_id: Mapped[str] = mapped_column(sa.String(36))
    host: Mapped[str | None] = mapped_column(sa.String(255), nullable=True, index=True)
    format: Mapped[str] = mapped_column(sa.String(16), default="raw")
    ready: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # its file was made once
    bootable: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    readonly: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    source_kind: Mapped[str] = mapped_column(sa.String(16), default="blank")
    source_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON, default=dict)
    image_metadata: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    upload_image_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    upload_disk_format: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    fault: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class Snapshot(VolumeBase):
    __tablename__ = "snapshot"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    user_id: Mapped[str] = mapped_column(sa.String(64))
    volume_id: Mapped[str] = mapped_column(sa.String(36), sa.ForeignKey("volume.id"), index=True)
    host: Mapped[str | None] = mapped_column(sa.String(255), nullable=True, index=True)
    name: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    size: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(32))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON, default=dict)
    fault: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class Attachment(VolumeBase):
    """An attachment (Cinder's attachments API, or a legacy os-reserve/os-attach one).
    With a ``connector`` the volume is exported (``target_iqn``, CHAP) and the agent
    reports ``export_state``."""

    __tablename__ = "attachment"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(sa.String(36), sa.ForeignKey("volume.id"), index=True)
    project_id: Mapped[str] = mapped_column(sa.String(64))
    instance_uuid: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    attach_status: Mapped[str] = mapped_column(sa.String(32))
    attach_mode: Mapped[str] = mapped_column(sa.String(8), default="rw")
    legacy: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    connector: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    mountpoint: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    host_name: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    target_iqn: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    auth_username: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    auth_password: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    export_state: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    export_fault: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    attached_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class Quota(VolumeBase):
    __tablename__ = "quota"
    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(sa.Integer)


class StorageHost(VolumeBase):
    """A storage agent's host: its registration, its desired-state ``generation`` (bumped
    with every change of what should exist there) and its last report."""

    __tablename__ = "storage_host"
    host: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    portal: Mapped[str] = mapped_column(sa.String(255))
    iqn_prefix: Mapped[str] = mapped_column(sa.String(200))
    capacity_gb: Mapped[int] = mapped_column(sa.Integer, default=0)
    free_gb: Mapped[int] = mapped_column(sa.Integer, default=0)
    formats: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    generation: Mapped[int] = mapped_column(sa.Integer, default=1)
    last_report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    heartbeat_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class ServerEvent(VolumeBase):
    """An external event owed to the compute API (Cinder's ``volume-extended`` after an
    extend of an attached volume), written in the transaction that finished the extend and
    removed once the compute API has answered it (``volume/server_events.py``)."""

    __tablename__ = "server_event"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    server_uuid: Mapped[str] = mapped_column(sa.String(36))
    tag: Mapped[str] = mapped_column(sa.String(255))  # the volume id
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
