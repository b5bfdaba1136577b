"""Snapshots: made by the storage agent next to their volume (``creating`` until it
reports them), of an ``available`` volume or, with ``force``, an ``in-use`` one;
deleted by the agent (``deleting`` until it no longer lists them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, NotFound
from stratus.common.timeutil import new_id, utcnow
from stratus.volume import models as m

if TYPE_CHECKING:
    from stratus.volume.core import VolumeCore


class Snapshots:
    def __init__(self, core: VolumeCore) -> None:
        self.core = core

    def visible(self, ctx: AuthContext, project_id: str, all_projects: bool) -> list[m.Snapshot]:
        with self.core.db.session() as s:
            q = sa.select(m.Snapshot)
            if not (all_projects and ctx.is_admin):
                q = q.where(m.Snapshot.project_id == project_id)
            return list(s.scalars(q))

    def show(self, ctx: AuthContext, snapshot_id: str) -> m.Snapshot:
        with self.core.db.session() as s:
            return self.core.snapshot(s, ctx, snapshot_id)

    def create(self, ctx: AuthContext, project_id: str, volume_id: str, force: bool,
               name: str | None, description: str | None, metadata: dict[str, str]
               ) -> m.Snapshot:
        def work(s: Session) -> m.Snapshot:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            allowed = ("available", "in-use") if force else ("available",)
            if vol.status not in allowed:
                hint = "" if force or vol.status != "in-use" else \
                    " (a snapshot of an in-use volume needs force=true)"
                raise BadRequest(f"Invalid volume: Volume {vol.id} status must be "
                                 f"{' or '.join(allowed)} to snapshot it, but the current "
                                 f"status is: {vol.status}{hint}.")
            self.core.quotas.check(s, vol.project_id, snapshots=1, gigabytes=vol.size)
            now = utcnow(precise=True)
            snap = m.Snapshot(id=new_id(), project_id=vol.project_id, user_id=ctx.user_id,
                              volume_id=vol.id, host=vol.host, name=name,
                              description=description, size=vol.size, status="creating",
                              metadata_=dict(metadata), created_at=now, updated_at=now)
            s.add(snap)
            self.core.bump(s, vol.host)
            return snap
        return self.core.transaction(work)

    def update(self, ctx: AuthContext, snapshot_id: str, changes: dict[str, Any]
               ) -> m.Snapshot:
        def work(s: Session) -> m.Snapshot:
            snap = self.core.snapshot(s, ctx, snapshot_id)
            for key, value in changes.items():
                setattr(snap, "metadata_" if key == "metadata" else key, value)
            snap.updated_at = utcnow(precise=True)
            return snap
        return self.core.transaction(work)

    def delete(self, ctx: AuthContext, snapshot_id: str, force: bool = False) -> None:
        def work(s: Session) -> None:
            snap = self.core.snapshot(s, ctx, snapshot_id)
            if not force and snap.status not in ("available", "error", "error_deleting"):
                raise BadRequest(f"Invalid snapshot: Snapshot {snap.id} status must be "
                                 f"available or error to delete it, not {snap.status}.")
            busy = s.scalar(sa.select(sa.func.count()).select_from(m.Volume).where(
                m.Volume.source_kind == "snapshot", m.Volume.source_id == snap.id,
                m.Volume.status == "creating"))
            if busy:
                raise BadRequest(f"Invalid snapshot: a volume is being made from snapshot "
                                 f"{snap.id}; delete it when that volume is available.")
            snap.status = "deleting"
            snap.updated_at = utcnow(precise=True)
            self.core.bump(s, snap.host)
            if snap.host is None:
                s.delete(snap)
        self.core.transaction(work)

    def reset_status(self, ctx: AuthContext, snapshot_id: str, status: str) -> None:
        def work(s: Session) -> None:
            snap = self.core.snapshot(s, ctx, snapshot_id)
            snap.status = status
            snap.updated_at = utcnow(precise=True)
        self.core.transaction(work)

    def set_metadata(self, ctx: AuthContext, snapshot_id: str, items: dict[str, str],
                     replace: bool) -> dict[str, str]:
        def work(s: Session) -> dict[str, str]:
            snap = self.core.snapshot(s, ctx, snapshot_id)
            snap.metadata_ = dict(items) if replace else {**(snap.metadata_ or {}), **items}
            return dict(snap.metadata_)
        return self.core.transaction(work)

    def delete_metadata(self, ctx: AuthContext, snapshot_id: str, key: str) -> None:
        def work(s: Session) -> None:
            snap = self.core.snapshot(s, ctx, snapshot_id)
            meta = dict(snap.metadata_ or {})
            if key not in meta:
                raise NotFound(f"Snapshot {snap.id} has no metadata with key {key}.")
            del meta[key]
            snap.metadata_ = meta
        self.core.transaction(work)
