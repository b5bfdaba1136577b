"""Quota classes (os-quota-class-sets): named sets of limits. Only the ``default`` class
means anything, as in Nova: its limits, kept in the database over the configured
``[compute] quota_*`` values, are the quotas of every project without its own override."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

DEFAULT_CLASS = "default"


def class_limits(s: Session, defaults: dict[str, int], name: str = DEFAULT_CLASS,
                 every: bool = False) -> dict[str, int]:
    """The class's limits: ``defaults`` with the class's stored values (only those of the
    resources in ``defaults`` unless ``every``: the unenforced ones are kept only to be
    shown back, as Nova does)."""
    limits = dict(defaults)
    for row in s.scalars(sa.select(m.QuotaClassLimit).where(
            m.QuotaClassLimit.class_name == name)):
        if every or row.resource in defaults:
            limits[row.resource] = row.hard_limit
    return limits


class QuotaClasses:
    """Show and change a quota class (admin; the API checks the policy)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def show(self, name: str, unenforced: dict[str, int]) -> dict[str, int]:
        """The class's limits (a class never set shows the configured defaults, and
        ``unenforced``'s for the limits Stratus only shows)."""
        with self.core.db.session() as s:
            return class_limits(s, {**self.core.settings.quotas, **unenforced}, name, True)

    def update(self, name: str, values: dict[str, int], unenforced: dict[str, int]
               ) -> dict[str, int]:
        """Store the given limits of the class, in one transaction; its new limits (as
        :meth:`show`)."""
        def work(s: Session) -> dict[str, int]:
            for res, val in values.items():
                row = s.get(m.QuotaClassLimit, (name, res))
                if row is None:
                    s.add(m.QuotaClassLimit(class_name=name, resource=res, hard_limit=val))
                else:
                    row.hard_limit = val
            s.flush()
            return class_limits(s, {**self.core.settings.quotas, **unenforced}, name, True)

        result: dict[str, Any] = self.core.transaction(work)
        return result
