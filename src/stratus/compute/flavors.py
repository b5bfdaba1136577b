"""Flavors: the catalogue, who may see a private flavor (flavor access), extra specs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import Conflict, NotFound
from stratus.common.timeutil import utcnow
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore


class Flavors:
    """The flavor resources over the compute database."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def visible(self, ctx: AuthContext) -> list[m.Flavor]:
        """Every flavor the caller may see: all for an admin; else the public ones and the
        private ones its project was given access to."""
        with self.core.db.session() as s:
            rows = list(s.scalars(sa.select(m.Flavor)))
            if ctx.is_admin:
                return rows
            granted = set(s.scalars(sa.select(m.FlavorAccess.flavor_id).where(
                m.FlavorAccess.project_id == (ctx.project_id or ""))))
        return [f for f in rows if f.is_public or f.id in granted]

    def show(self, ctx: AuthContext, flavor_id: str) -> m.Flavor:
        with self.core.db.session() as s:
            return self.core.flavor(s, ctx, flavor_id)

    def create(self, flavor_id: str, name: str, vcpus: int, ram: int, disk: int,
               ephemeral: int, swap: int, rxtx_factor: float, is_public: bool,
               description: str | None = None) -> m.Flavor:
        """A new flavor; 409 when its id or its name is taken."""
        flavor = m.Flavor(
            id=flavor_id, name=name, vcpus=vcpus, ram=ram, disk=disk, ephemeral=ephemeral,
            swap=swap, rxtx_factor=rxtx_factor, is_public=is_public, extra_specs={},
            description=description, created_at=utcnow())

        def work(s: Session) -> m.Flavor:
            if s.get(m.Flavor, flavor.id) is not None:
                raise Conflict(f"Flavor with ID {flavor.id} already exists.")
            if s.scalars(sa.select(m.Flavor).where(m.Flavor.name == name)).first():
                raise Conflict(f"Flavor with name {name} already exists.")
            s.add(flavor)
            return flavor

        return self.core.transaction(work)

    def describe(self, ctx: AuthContext, flavor_id: str, description: str | None) -> m.Flavor:
        """Set a flavor's description (2.55: the one thing of a flavor that changes)."""
        def work(s: Session) -> m.Flavor:
            f = self.core.flavor(s, ctx, flavor_id)
            f.description = description
            s.flush()
            return f

        return self.core.transaction(work)

    def delete(self, flavor_id: str) -> None:
        def work(s: Session) -> None:
            f = s.get(m.Flavor, flavor_id)
            if f is None:
                raise NotFound(f"Flavor {flavor_id} could not be found.")
            s.execute(sa.delete(m.FlavorAccess).where(m.FlavorAccess.flavor_id == f.id))
            s.delete(f)

        self.core.transaction(work)

    # ---- flavor access ----------------------------------------------------------------

    def access(self, ctx: AuthContext, flavor_id: str) -> tuple[str, list[str]]:
        """The private flavor's id and the projects given access to it (404 if public)."""
        with self.core.db.session() as s:
            f = self.core.flavor(s, ctx, flavor_id)
            if f.is_public:
                raise NotFound("Access list not available for public flavors.")
            return f.id, [a.project_id for a in s.scalars(sa.select(m.FlavorAccess).where(
                m.FlavorAccess.flavor_id == f.id))]

    def change_access(self, ctx: AuthContext, flavor_id: str, tenant: str, add: bool) -> None:
        """Give (or take back) the project's access to a private flavor."""
        core = self.core

        def work(s: Session) -> None:
            f = core.flavor(s, ctx, flavor_id)
            if f.is_public:
                raise Conflict(f"Can not add access to a public flavor {f.id}.")
            row = s.get(m.FlavorAccess, (f.id, tenant))
            if add:
                if row is not None:
                    raise Conflict(f"Flavor access already exists for flavor {f.id} and "
                                   f"project {tenant} combination.")
                s.add(m.FlavorAccess(flavor_id=f.id, project_id=tenant))
            else:
                if row is None:
                    raise NotFound(f"Flavor access not found for {f.id} / {tenant} "
                                   "combination.")
                s.delete(row)

        core.transaction(work)

    # ---- extra specs ------------------------------------------------------------------

    def extra_specs(self, ctx: AuthContext, flavor_id: str) -> dict[str, str]:
        with self.core.db.session() as s:
            return dict(self.core.flavor(s, ctx, flavor_id).extra_specs)

    def merge_extra_specs(self, ctx: AuthContext, flavor_id: str, new: dict[str, str]) -> None:
        """Add or overwrite these extra specs; the others stay."""
        def work(s: Session) -> None:
            f = self.core.flavor(s, ctx, flavor_id)
            f.extra_specs = {**f.extra_specs, **new}

        self.core.transaction(work)

    def delete_extra_spec(self, ctx: AuthContext, flavor_id: str, key: str) -> None:
        def work(s: Session) -> None:
            f = self.core.flavor(s, ctx, flavor_id)
            cur = dict(f.extra_specs)
            if key not in cur:
                raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
            cur.pop(key)
            f.extra_specs = cur

        self.core.transaction(work)
