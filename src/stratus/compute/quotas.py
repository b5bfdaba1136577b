"""Quotas: the per-project limits (defaults from [compute] quota_*, overrides in the
database), what a project uses, and the counted reservation of servers against them.

The reservation is one conditional UPDATE (``... SET used = used + n WHERE used + n <=
limit``), so concurrent creates cannot pass a quota on SQLite or PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import ApiError, Forbidden
from stratus.compute import models as m
from stratus.compute.quota_classes import class_limits

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

QUOTA_RESOURCES = ("instances", "cores", "ram", "key_pairs", "server_groups",
                   "server_group_members", "metadata_items")
# Limits Nova shows but Stratus does not enforce (no file injection).
FIXED_LIMITS = {"injected_files": 5, "injected_file_content_bytes": 10240,
                "injected_file_path_bytes": 255}


class OverLimit(ApiError):
    """Nova's quota refusal: 403 with the body key ``overLimit``."""

    status = 403
    title = "overLimit"


def quota_limits(s: Session, defaults: dict[str, int], project_id: str) -> dict[str, int]:
    """The project's hard limits: the defaults (the configured ones with the ``default``
    quota class's, quota_classes.py) with its overrides."""
    limits = class_limits(s, defaults)
    for row in s.scalars(sa.select(m.QuotaLimit).where(m.QuotaLimit.project_id == project_id)):
        limits[row.resource] = row.hard_limit
    return limits


def check_metadata_items(limits: dict[str, int], count: int) -> None:
    """403 (as Nova answers) when ``count`` metadata items are over the ``metadata_items``
    limit of ``limits`` (a project's :func:`quota_limits`: its override, else the
    ``default`` quota class, else the configured default)."""
    limit = limits["metadata_items"]
    if 0 <= limit < count:
        raise Forbidden(f"Quota exceeded for metadata_items: at most {limit} items are "
                        "allowed.")


def usage(s: Session, project_id: str) -> m.ProjectUsage:
    """What the project's servers count (a zero row when it has none)."""
    row = s.get(m.ProjectUsage, project_id)
    if row is None:
        return m.ProjectUsage(project_id=project_id, instances=0, cores=0, ram=0)
    return row


def reserve(s: Session, defaults: dict[str, int], project_id: str, instances: int, cores: int,
            ram: int, must: bool = True) -> bool:
    """Count servers against the project's quota, atomically; 403 overLimit if over (or
    False when not ``must``)."""
    if s.get(m.ProjectUsage, project_id) is None:
        s.add(m.ProjectUsage(project_id=project_id, instances=0, cores=0, ram=0))
        s.flush()
    limits = quota_limits(s, defaults, project_id)
    t = cast(sa.Table, m.ProjectUsage.__table__)
    conds = [t.c.project_id == project_id]
    wanted = {"instances": instances, "cores": cores, "ram": ram}
    for res, n in wanted.items():
        if limits[res] >= 0:
            conds.append(t.c[res] + n <= limits[res])
    res_update = s.execute(sa.update(t).where(*conds).values(
        instances=t.c.instances + instances, cores=t.c.cores + cores, ram=t.c.ram + ram))
    if res_update.rowcount == 1:  # type: ignore[attr-defined]
        return True
    if not must:
        return False
    used = s.get(m.ProjectUsage, project_id, populate_existing=True)
    assert used is not None
    over = [r for r, n in wanted.items()
            if limits[r] >= 0 and getattr(used, r) + n > limits[r]]
    detail = "; ".join(
        f"requested {wanted[r]} {r}, already used {getattr(used, r)} of {limits[r]}"
        for r in over)
    raise OverLimit(f"Quota exceeded for {', '.join(over)}: {detail}.")


def release(s: Session, project_id: str, instances: int, cores: int, ram: int) -> None:
    """Give back what :func:`reserve` counted."""
    t = cast(sa.Table, m.ProjectUsage.__table__)
    s.execute(sa.update(t).where(t.c.project_id == project_id).values(
        instances=t.c.instances - instances, cores=t.c.cores - cores, ram=t.c.ram - ram))


def count_server_groups(s: Session, project_id: str | None) -> int:
    return s.scalar(sa.select(sa.func.count()).select_from(m.ServerGroup).where(
        m.ServerGroup.project_id == project_id)) or 0


class Quotas:
    """The os-quota-sets and limits resources."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def _quota_set(self, s: Session, project: str, detail: bool) -> dict[str, Any]:
        limits = self.core.quota_limits(s, project)
        used = usage(s, project)
        in_use = {"instances": used.instances, "cores": used.cores, "ram": used.ram,
                  "server_groups": count_server_groups(s, project)}
        out: dict[str, Any] = {"id": project}
        for res in QUOTA_RESOURCES:
            out[res] = {"limit": limits[res], "in_use": in_use.get(res, 0), "reserved": 0} \
                if detail else limits[res]
        for res, val in FIXED_LIMITS.items():
            out[res] = {"limit": val, "in_use": 0, "reserved": 0} if detail else val
        return out

    def quota_set(self, project: str, detail: bool = False) -> dict[str, Any]:
        """The project's quota set: limits, or with ``detail`` limit/in_use/reserved."""
        with self.core.db.session() as s:
            return self._quota_set(s, project, detail)

    def defaults(self, project: str) -> dict[str, Any]:
        """The defaults a project without overrides gets (the ``default`` quota class)."""
        with self.core.db.session() as s:
            limits = class_limits(s, self.core.settings.quotas)
        return {"id": project, **limits, **FIXED_LIMITS}

    def update(self, project: str, values: dict[str, int]) -> dict[str, Any]:
        """Set the project's overrides; returns its new quota set (without ``id``)."""
        def work(s: Session) -> dict[str, Any]:
            for res, val in values.items():
                row = s.get(m.QuotaLimit, (project, res))
                if row is None:
                    s.add(m.QuotaLimit(project_id=project, resource=res, hard_limit=val))
                else:
                    row.hard_limit = val
            s.flush()
            out = self._quota_set(s, project, False)
            out.pop("id")
            return out

        return self.core.transaction(work)

    def reset(self, project: str) -> None:
        """Drop the project's overrides: the defaults apply again."""
        def work(s: Session) -> None:
            s.execute(sa.delete(m.QuotaLimit).where(m.QuotaLimit.project_id == project))

        self.core.transaction(work)
