"""The volume service layer's root: settings, transactions, policy, lookups, quotas and
the storage hosts' generations.

``VolumeCore`` is the one object the API binds its routes to. It owns the database and
the image API client, and carries one service object per resource family:
``volumes`` (volumes.py: life cycle and actions), ``attachments`` (attachments.py:
the attachments API and the legacy attach actions), ``snapshots`` (snapshots.py),
``types`` (types.py), ``quotas`` (quotas.py) and ``storage`` (storage.py: the storage
agents' registration, desired state, reports, and the sweep that re-derives statuses).

Every change of what should exist on a storage host bumps that host's ``generation``
in the same transaction (:meth:`VolumeCore.bump`), which wakes its agent's long-poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common import policy
from stratus.common.auth import AuthContext
from stratus.common.config import Config
from stratus.common.db import Database
from stratus.common.errors import BadRequest, Forbidden, NotFound
from stratus.common.longpoll import KeyedWatch
from stratus.volume import models as m
from stratus.volume.images import ImageApi

if TYPE_CHECKING:
    from stratus.volume.server_events import ComputeEvents

T = TypeVar("T")
SECTION = "volume"
TRANSACTION_ATTEMPTS = 40
QUOTA_RESOURCES = ("volumes", "gigabytes", "snapshots")
FORMATS = ("raw", "qcow2")

__all__ = ["QUOTA_RESOURCES", "SECTION", "Settings", "VolumeCore"]


@dataclass
class Settings:
    """The [volume] section, parsed and checked once."""

    default_availability_zone: str = "nova"
    default_volume_type: str = "__DEFAULT__"
    backend_name: str = "stratus"
    volume_format: str = "raw"
    service_down_time: int = 60
    export_timeout: float = 30.0
    sweep_interval: float = 10.0
    stale_attachment_seconds: int = 3600
    quotas: dict[str, int] = field(default_factory=lambda: {
        "volumes": 10, "gigabytes": 1000, "snapshots": 10})

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        fmt = config.get(SECTION, "volume_format")
        if fmt not in FORMATS:
            raise ValueError(f"[volume] volume_format={fmt!r}: use raw or qcow2")
        for key in ("default_availability_zone", "default_volume_type", "backend_name"):
            if not config.get(SECTION, key).strip():
                raise ValueError(f"[volume] {key} must not be empty")
        return cls(
            default_availability_zone=config.get(SECTION, "default_availability_zone"),
            default_volume_type=config.get(SECTION, "default_volume_type"),
            backend_name=config.get(SECTION, "backend_name"),
            volume_format=fmt,
            service_down_time=config.get_int(SECTION, "service_down_time", 1),
            export_timeout=float(config.get_int(SECTION, "export_timeout", 1)),
            sweep_interval=float(config.get_int(SECTION, "sweep_interval", 1)),
            stale_attachment_seconds=config.get_int(SECTION, "stale_attachment_seconds", 0),
            quotas={r: config.get_int(SECTION, f"quota_{r}", -1) for r in QUOTA_RESOURCES},
        )


class VolumeCore:
    """The volume service's behaviour over its database and the image API."""

    def __init__(self, db: Database, settings: Settings | None = None,
                 images: ImageApi | None = None, compute: ComputeEvents | None = None) -> None:
        from stratus.volume.attachments import Attachments
        from stratus.volume.quotas import Quotas
        from stratus.volume.server_events import ServerEvents
        from stratus.volume.snapshots import Snapshots
        from stratus.volume.storage import Storage
        from stratus.volume.types import VolumeTypes
        from stratus.volume.volumes import Volumes

        self.db = db
        self.settings = settings or Settings()
        self.images = images
        self.types = VolumeTypes(self)
        self.quotas = Quotas(self)
        self.volumes = Volumes(self)
        self.snapshots = Snapshots(self)
        self.attachments = Attachments(self)
        self.storage = Storage(self)
        self.server_events = ServerEvents(self, compute)
        self.watch: KeyedWatch[str] = KeyedWatch(self.storage.generations)
        self._sweep_lock = threading.Lock()

    # ---- transactions ----------------------------------------------------------------

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction (rerun when it lost a race).

        A status guard reads a row and then writes: on PostgreSQL the read locks the row
        (``SELECT ... FOR UPDATE``); on SQLite, whose driver would begin the transaction
        only at the first write, the transaction begins IMMEDIATE (taking the write lock
        first), so two requests cannot both pass a guard on the same volume."""
        return self.db.transaction(work, attempts=TRANSACTION_ATTEMPTS, conflict_after=3,
                                   begin=self._begin)

    def _begin(self, s: Session) -> None:
        if self.db.url.startswith("sqlite"):
            s.connection().exec_driver_sql("BEGIN IMMEDIATE")

    @staticmethod
    def bump(s: Session, host: str | None) -> None:
        """The desired state of ``host`` changed: wake its agent."""
        if host:
            s.execute(sa.update(m.StorageHost).where(m.StorageHost.host == host)
                      .values(generation=m.StorageHost.generation + 1))

    # ---- policy ----------------------------------------------------------------------

    @staticmethod
    def require_member(ctx: AuthContext, action: str) -> None:
        if not policy.permits(ctx, action, policy.has_role(ctx, "member")):
            raise Forbidden(f"Policy doesn't allow {action} to be performed.")

    @staticmethod
    def require_admin(ctx: AuthContext, action: str) -> None:
        if not policy.permits(ctx, action, ctx.is_admin):
            raise Forbidden(f"Policy doesn't allow {action} to be performed.")

    @staticmethod
    def check_project(ctx: AuthContext, project_id: str) -> None:
        """The project in the URL must be the token's (an admin may name any)."""
        if not ctx.is_admin and project_id != ctx.project_id:
            raise BadRequest(f"Malformed request url: the project {project_id} in the URL "
                             f"is not the token's project {ctx.project_id}.")

    @staticmethod
    def visible(ctx: AuthContext, project_id: str) -> bool:
        return ctx.is_admin or project_id == ctx.project_id

    # ---- lookups ---------------------------------------------------------------------

    def volume(self, s: Session, ctx: AuthContext, volume_id: object,
               lock: bool = False) -> m.Volume:
        vol = None
        if isinstance(volume_id, str) and 0 < len(volume_id) <= 36:
            q = sa.select(m.Volume).where(m.Volume.id == volume_id)
            vol = s.scalar(q.with_for_update() if lock else q)
        if vol is None or not self.visible(ctx, vol.project_id):
            raise NotFound(f"Volume {volume_id} could not be found.")
        return vol

    def snapshot(self, s: Session, ctx: AuthContext, snapshot_id: object) -> m.Snapshot:
        snap = (s.get(m.Snapshot, snapshot_id)
                if isinstance(snapshot_id, str) and 0 < len(snapshot_id) <= 36 else None)
        if snap is None or not self.visible(ctx, snap.project_id):
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        return snap

    def attachment(self, s: Session, ctx: AuthContext, attachment_id: object) -> m.Attachment:
        att = (s.get(m.Attachment, attachment_id)
               if isinstance(attachment_id, str) and 0 < len(attachment_id) <= 36 else None)
        if att is None or not self.visible(ctx, att.project_id):
            raise NotFound(f"Volume attachment could not be found with filter: "
                           f"attachment_id = {attachment_id}.")
        return att

    # ---- periodic work ---------------------------------------------------------------

    def sweep(self) -> dict[str, int]:
        """Re-derive statuses from the agents' last reports (one sweep at a time)."""
        if not self._sweep_lock.acquire(blocking=False):
            return {}
        try:
            return self.storage.sweep()
        finally:
            self._sweep_lock.release()


def owner_of(obj: Any) -> str:
    """The project that owns a row."""
    return str(obj.project_id)
