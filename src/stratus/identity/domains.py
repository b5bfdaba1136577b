"""Identity service layer: domains (list, create, read, update, and the
cascade that deletes a disabled domain with everything in it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from stratus.common.errors import Conflict, Forbidden
from stratus.common.timeutil import new_hex_id
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.rows import get, stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity


class Domains:
    """Domains over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def find(self, filters: dict[str, str], enabled: bool | None) -> list[m.Domain]:
        """Domains by name, with an optional ``name`` filter and enabled state."""
        q = sa.select(m.Domain).order_by(m.Domain.name)
        if "name" in filters:
            q = q.where(m.Domain.name == filters["name"])
        if enabled is not None:
            q = q.where(m.Domain.enabled.is_(enabled))
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, domain_id: str) -> m.Domain:
        with self.core.db.session() as s:
            dom: m.Domain = get(s, m.Domain, domain_id, "domain")
            return dom

    def create(self, name: str, obj: dict[str, Any]) -> m.Domain:
        """A new domain named ``name``; the rest of ``obj`` (id, description,
        enabled, extra attributes) is checked once the name is known to be free."""
        with self.core.db.session() as s:
            if s.scalar(sa.select(m.Domain).where(m.Domain.name == name)) is not None:
                raise Conflict(
                    f"Conflict occurred attempting to store domain - "
                    f"a domain named {name!r} already exists."
                )
            dom = m.Domain(
                id=views.text(obj, "id", max_len=64) or new_hex_id(),
                name=name,
                description=views.text(
                    obj, "description", allow_empty=True, max_len=65535, default=""
                )
                or "",
                enabled=views.boolean(obj, "enabled", True),
                extra=views.extras(obj),
            )
            with stored(s, f"domain {name!r}"):
                s.add(dom)
            return dom

    def update(self, domain_id: str, obj: dict[str, Any]) -> m.Domain:
        """Change a domain; disabling it revokes every token it is part of."""
        with self.core.db.session() as s:
            dom: m.Domain = get(s, m.Domain, domain_id, "domain")
            if "name" in obj:
                dom.name = views.text(obj, "name", required=True, max_len=64) or dom.name
            if "description" in obj:
                dom.description = (
                    views.text(obj, "description", allow_empty=True, max_len=65535, default="")
                    or ""
                )
            enabled = views.boolean(obj, "enabled")
            if enabled is not None:
                if dom.id == "default" and not enabled:
                    raise Forbidden("The default domain cannot be disabled.")
                if dom.enabled and not enabled:
                    # Every token of its users, on its projects or scoped to it.
                    self.core.revoke(s, domain_id=dom.id)
                dom.enabled = enabled
            dom.extra = {**(dom.extra or {}), **views.extras(obj)}
            with stored(s, f"domain {dom.name!r}"):
                pass
            return dom

    def delete(self, domain_id: str) -> None:
        """Delete a disabled domain with its projects, users, groups, roles, their
        grants, memberships and application credentials; revoke its users' tokens."""
        with self.core.db.session() as s:
            dom = get(s, m.Domain, domain_id, "domain")
            if dom.id == "default":
                raise Forbidden("The default domain cannot be deleted.")
            if dom.enabled:
                raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
            projects = s.scalars(sa.select(m.Project.id).where(m.Project.domain_id == dom.id)).all()
            users = s.scalars(sa.select(m.User.id).where(m.User.domain_id == dom.id)).all()
            groups = s.scalars(sa.select(m.Group.id).where(m.Group.domain_id == dom.id)).all()
            ids = [dom.id, *projects, *users, *groups]
            # Its groups' grants may be on other domains' projects, for other domains' users.
            for row in s.scalars(sa.select(m.Assignment).where(
                    m.Assignment.actor_id.in_(groups),
                    m.Assignment.type.in_(("GroupProject", "GroupDomain", "GroupSystem")))).all():
                self.core.revoke_grant(s, "Group", row.actor_id, row.type.removeprefix("Group"),
                                       row.target_id)
            s.execute(
                sa.delete(m.Assignment).where(
                    sa.or_(m.Assignment.target_id.in_(ids), m.Assignment.actor_id.in_(ids))
                )
            )
            s.execute(
                sa.delete(m.Membership).where(
                    sa.or_(m.Membership.user_id.in_(users), m.Membership.group_id.in_(groups))
                )
            )
            s.execute(
                sa.delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id.in_(users))
            )
            s.execute(
                sa.update(m.Project).where(m.Project.domain_id == dom.id).values(parent_id=None)
            )
            for model in (m.Project, m.User, m.Group):
                s.execute(sa.delete(model).where(model.domain_id == dom.id))
            s.execute(sa.delete(m.Role).where(m.Role.domain_id == dom.id))
            for uid in users:
                self.core.revoke(s, user_id=uid)
            self.core.revoke(s, domain_id=dom.id)
            s.delete(dom)
