"""Server groups: affinity policies whose members the scheduler places together or apart."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.timeutil import new_id, utcnow
from stratus.compute import models as m
from stratus.compute.quotas import OverLimit, count_server_groups

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

POLICIES = {"affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"}


class ServerGroups:
    """The os-server-groups resource over the compute database."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def visible(self, ctx: AuthContext, all_projects: bool) -> list[m.ServerGroup]:
        """The caller's project's groups (every project's for an admin who asks), oldest
        first."""
        stmt = sa.select(m.ServerGroup).order_by(m.ServerGroup.created_at)
        if not (ctx.is_admin and all_projects):
            stmt = stmt.where(m.ServerGroup.project_id == ctx.project_id)
        with self.core.db.session() as s:
            return list(s.scalars(stmt))

    def show(self, ctx: AuthContext, group_id: str) -> m.ServerGroup:
        with self.core.db.session() as s:
            return self.core.group(s, ctx, group_id)

    def create(self, ctx: AuthContext, name: str, policy: str) -> m.ServerGroup:
        """A new empty group in the caller's project, within its server_groups quota."""
        core = self.core

        def work(s: Session) -> m.ServerGroup:
            limit = core.quota_limits(s, ctx.project_id or "")["server_groups"]
            count = count_server_groups(s, ctx.project_id)
            if 0 <= limit <= count:
                raise OverLimit(f"Quota exceeded, too many server groups: {count} of {limit}.")
            g = m.ServerGroup(id=new_id(), name=name, project_id=ctx.project_id or "",
                              user_id=ctx.user_id, policy=policy, members=[],
                              created_at=utcnow())
            s.add(g)
            return g

        return core.transaction(work)

    def delete(self, ctx: AuthContext, group_id: str) -> None:
        def work(s: Session) -> None:
            s.delete(self.core.group(s, ctx, group_id))

        self.core.transaction(work)
