"""Volume types: the default type (made when missing), lookups by id or name, admin
create/update/delete, extra specs (``volume_backend_name`` chooses the storage hosts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.common.timeutil import new_id, utcnow
from stratus.volume import models as m

if TYPE_CHECKING:
    from stratus.volume.core import VolumeCore


class VolumeTypes:
    def __init__(self, core: VolumeCore) -> None:
        self.core = core

    def ensure_default(self, s: Session) -> m.VolumeType:
        """The default type (``[volume] default_volume_type``), made when missing."""
        name = self.core.settings.default_volume_type
        vt = s.scalar(sa.select(m.VolumeType).where(m.VolumeType.name == name))
        if vt is None:
            vt = m.VolumeType(id=new_id(), name=name, description="Default Volume Type",
                              is_public=True,
                              extra_specs={"volume_backend_name": self.core.settings.backend_name},
                              created_at=utcnow())
            s.add(vt)
            s.flush()
        return vt

    def find(self, s: Session, ref: object) -> m.VolumeType:
        """A type by id or name (404 naming it)."""
        if isinstance(ref, str) and ref:
            vt = s.get(m.VolumeType, ref) or s.scalar(
                sa.select(m.VolumeType).where(m.VolumeType.name == ref))
            if vt is not None:
                return vt
        raise NotFound(f"Volume type {ref} could not be found.")

    def names(self, s: Session) -> dict[str, str]:
        return {vt.id: vt.name for vt in s.scalars(sa.select(m.VolumeType))}

    # ---- API -------------------------------------------------------------------------

    def visible(self, ctx: AuthContext) -> list[m.VolumeType]:
        def work(s: Session) -> list[m.VolumeType]:
            self.ensure_default(s)
            rows = s.scalars(sa.select(m.VolumeType).order_by(m.VolumeType.name)).all()
            return [vt for vt in rows if vt.is_public or ctx.is_admin]
        return self.core.transaction(work)

    def show(self, ctx: AuthContext, ref: str) -> m.VolumeType:
        def work(s: Session) -> m.VolumeType:
            if ref == "default":
                return self.ensure_default(s)
            vt = self.find(s, ref)
            if not vt.is_public and not ctx.is_admin:
                raise NotFound(f"Volume type {ref} could not be found.")
            return vt
        return self.core.transaction(work)

    def create(self, ctx: AuthContext, name: str, description: str | None, is_public: bool,
               extra_specs: dict[str, str]) -> m.VolumeType:
        def work(s: Session) -> m.VolumeType:
            if s.scalar(sa.select(m.VolumeType).where(m.VolumeType.name == name)):
                raise Conflict(f"Volume Type {name} already exists.")
            vt = m.VolumeType(id=new_id(), name=name, description=description,
                              is_public=is_public, extra_specs=dict(extra_specs),
                              created_at=utcnow())
            s.add(vt)
            return vt
        return self.core.transaction(work)

    def update(self, ctx: AuthContext, ref: str, changes: dict[str, Any]) -> m.VolumeType:
        def work(s: Session) -> m.VolumeType:
            vt = self.find(s, ref)
            if "name" in changes and changes["name"] != vt.name:
                if vt.name == self.core.settings.default_volume_type:
                    raise BadRequest("The default volume type cannot be renamed.")
                if s.scalar(sa.select(m.VolumeType).where(
                        m.VolumeType.name == changes["name"])):
                    raise Conflict(f"Volume Type {changes['name']} already exists.")
            for key, value in changes.items():
                setattr(vt, key, value)
            return vt
        return self.core.transaction(work)

    def delete(self, ctx: AuthContext, ref: str) -> None:
        def work(s: Session) -> None:
            vt = self.find(s, ref)
            if vt.name == self.core.settings.default_volume_type:
                raise BadRequest("The default volume type cannot be deleted.")
            used = s.scalar(sa.select(sa.func.count()).select_from(m.Volume)
                            .where(m.Volume.volume_type_id == vt.id))
            if used:
                raise BadRequest(f"Target volume type {vt.id} is still in use by "
                                 f"{used} volume(s).")
            s.delete(vt)
        self.core.transaction(work)

    def set_specs(self, ref: str, specs: dict[str, str], replace_key: str | None = None
                  ) -> dict[str, str]:
        """Merge ``specs`` into the type's extra specs; answer them."""
        def work(s: Session) -> dict[str, str]:
            vt = self.find(s, ref)
            vt.extra_specs = {**(vt.extra_specs or {}), **specs}
            return dict(vt.extra_specs)
        return self.core.transaction(work)

    def delete_spec(self, ref: str, key: str) -> None:
        def work(s: Session) -> None:
            vt = self.find(s, ref)
            specs = dict(vt.extra_specs or {})
            if key not in specs:
                raise NotFound(f"Volume Type {vt.id} has no extra specs with key {key}.")
            del specs[key]
            vt.extra_specs = specs
        self.core.transaction(work)
