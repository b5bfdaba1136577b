"""Quotas: per-project limits over the configured defaults, and their usage.

``QuotaService`` (``core.quotas``) reads and writes the ``quotas`` rows; the
limits themselves are enforced where resources are made
(``NetworkCore.check_quota``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.network import models as m
from stratus.network.settings import QUOTA_RESOURCES

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore


class QuotaService:
    """The quota resource over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    def every_project(self) -> list[dict[str, Any]]:
        """The limits of every project that has a quota row, by project ID."""
        with self.core.db.session() as s:
            projects = sorted(set(s.scalars(sa.select(m.Quota.project_id))))
            return [{"project_id": p, "tenant_id": p, **self.core.quota_limits(s, p)}
                    for p in projects]

    def limits(self, project: str) -> dict[str, int]:
        with self.core.db.session() as s:
            return self.core.quota_limits(s, project)

    def defaults(self) -> dict[str, int]:
        return dict(self.core.settings.quotas)

    def details(self, project: str) -> dict[str, dict[str, int]]:
        """Limit, use and (always 0) reservations of each resource."""
        core = self.core
        with core.db.session() as s:
            limits = core.quota_limits(s, project)
            return {r: {"limit": limits[r], "used": core.usage(s, project, r), "reserved": 0}
                    for r in QUOTA_RESOURCES}

    def update(self, project: str, values: dict[str, int | None]) -> dict[str, int]:
        """Set the limits given (None: leave as is); answers all the project's limits."""

        def work(s: Session) -> dict[str, int]:
            for resource, limit in values.items():
                if limit is None:
                    continue
                row = s.get(m.Quota, (project, resource))
                if row is None:
                    s.add(m.Quota(project_id=project, resource=resource, limit=limit))
                else:
                    row.limit = limit
            s.flush()
            return self.core.quota_limits(s, project)

        return self.core.transaction(work)

    def reset(self, project: str) -> None:
        """Back to the configured defaults."""

        def work(s: Session) -> None:
            s.execute(sa.delete(m.Quota).where(m.Quota.project_id == project))

        self.core.transaction(work)
