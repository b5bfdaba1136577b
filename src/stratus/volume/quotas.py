"""Quotas: volumes, gigabytes (volumes and snapshots) and snapshots per project.

Usage is counted in the same transaction as the change it guards, after a write to a
per-project lock row (made when missing): concurrent creates of one project take turns, so
two can never both pass a limit (on SQLite and on PostgreSQL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import ApiError
from stratus.volume import models as m

if TYPE_CHECKING:
    from stratus.volume.core import VolumeCore

LOCK_RESOURCE = "_lock"
# Cinder answers 413 (overLimit) when a quota is exceeded.


class OverQuota(ApiError):
    status = 413
    title = "overLimit"


class Quotas:
    def __init__(self, core: VolumeCore) -> None:
        self.core = core

    def limits(self, s: Session, project_id: str) -> dict[str, int]:
        out = dict(self.core.settings.quotas)
        for row in s.scalars(sa.select(m.Quota).where(m.Quota.project_id == project_id)):
            if row.resource in out:
                out[row.resource] = row.limit
        return out

    def usage(self, s: Session, project_id: str) -> dict[str, int]:
        vols = s.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(m.Volume.size), 0))
                         .where(m.Volume.project_id == project_id)).one()
        snaps = s.execute(sa.select(sa.func.count(),
                                    sa.func.coalesce(sa.func.sum(m.Snapshot.size), 0))
                          .where(m.Snapshot.project_id == project_id)).one()
        return {"volumes": int(vols[0]), "snapshots": int(snaps[0]),
                "gigabytes": int(vols[1]) + int(snaps[1])}

    def lock(self, s: Session, project_id: str) -> None:
        """Serialize quota checks of one project: a write to its lock row before the
        counts are read (PostgreSQL: a row lock until commit; SQLite: the write starts the
        transaction and takes the database's write lock, so the counts read next are
        current and no other writer runs until this one commits)."""
        done = s.execute(sa.update(m.Quota).where(
            m.Quota.project_id == project_id, m.Quota.resource == LOCK_RESOURCE)
            .values(limit=0))
        if not getattr(done, "rowcount", 0):
            s.add(m.Quota(project_id=project_id, resource=LOCK_RESOURCE, limit=0))
            s.flush()  # a concurrent twin fails on the primary key and is retried

    def check(self, s: Session, project_id: str, **adding: int) -> None:
        """413 when adding ``adding`` (volumes=1, gigabytes=10...) passes a limit."""
        self.lock(s, project_id)
        limits = self.limits(s, project_id)
        used = self.usage(s, project_id)
        for resource, amount in adding.items():
            limit = limits[resource]
            if amount <= 0 or limit < 0:
                continue
            if used[resource] + amount > limit:
                if resource == "gigabytes":
                    raise OverQuota(
                        f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot "
                        f"exceeds allowed gigabytes quota. Requested {amount}G, quota is "
                        f"{limit}G and {used[resource]}G has been consumed.")
                raise OverQuota(
                    f"Maximum number of {resource} allowed ({limit}) exceeded for quota "
                    f"'{resource}'.")

    # ---- API -------------------------------------------------------------------------

    def show(self, project_id: str) -> tuple[dict[str, int], dict[str, int]]:
        with self.core.db.session() as s:
            return self.limits(s, project_id), self.usage(s, project_id)

    def update(self, project_id: str, values: dict[str, int]) -> dict[str, int]:
        def work(s: Session) -> dict[str, int]:
            for resource, limit in values.items():
                row = s.get(m.Quota, (project_id, resource))
                if row is None:
                    s.add(m.Quota(project_id=project_id, resource=resource, limit=limit))
                else:
                    row.limit = limit
            s.flush()
            return self.limits(s, project_id)
        return self.core.transaction(work)

    def reset(self, project_id: str) -> None:
        def work(s: Session) -> None:
            s.execute(sa.delete(m.Quota).where(m.Quota.project_id == project_id,
                                               m.Quota.resource != LOCK_RESOURCE))
        self.core.transaction(work)
