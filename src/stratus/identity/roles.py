"""Identity service layer: roles and implied roles (role inference rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.common.timeutil import new_hex_id
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.rows import GLOBAL, get, require_domain, stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity


class Roles:
    """Roles over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def find(self, domain_id: str, name: str | None) -> list[m.Role]:
        """The roles of one domain (GLOBAL: the global roles), by name."""
        q = sa.select(m.Role).order_by(m.Role.name).where(m.Role.domain_id == domain_id)
        if name is not None:
            q = q.where(m.Role.name == name)
        with self.core.db.session() as s:
            return list(s.scalars(q))

    def show(self, role_id: str) -> m.Role:
        with self.core.db.session() as s:
            role: m.Role = get(s, m.Role, role_id, "role")
            return role

    def create(self, name: str | None, domain_id: str, obj: dict[str, Any]) -> m.Role:
        with self.core.db.session() as s:
            if domain_id != GLOBAL:
                require_domain(s, domain_id)
            if (
                s.scalar(
                    sa.select(m.Role).where(m.Role.domain_id == domain_id, m.Role.name == name)
                )
                is not None
            ):
                raise Conflict(
                    f"Conflict occurred attempting to store role - a role named "
                    f"{name!r} already exists."
                )
            role = m.Role(
                id=new_hex_id(),
                name=name,
                domain_id=domain_id,
                description=views.text(obj, "description", allow_empty=True, max_len=65535),
                extra=views.extras(obj),
            )
            with stored(s, f"role {name!r}"):
                s.add(role)
            return role

    def update(self, role_id: str, obj: dict[str, Any]) -> m.Role:
        with self.core.db.session() as s:
            role: m.Role = get(s, m.Role, role_id, "role")
            if "name" in obj:
                role.name = views.text(obj, "name", required=True) or role.name
            if "description" in obj:
                role.description = views.text(obj, "description", allow_empty=True, max_len=65535)
            role.extra = {**(role.extra or {}), **views.extras(obj)}
            with stored(s, f"role {role.name!r}"):
                pass
            return role

    def delete(self, role_id: str) -> None:
        """Delete a role with its grants and the inference rules that name it; revoke
        every token that carries it, and the tokens its grants gave."""
        with self.core.db.session() as s:
            role = get(s, m.Role, role_id, "role")
            self.core.revoke(s, role_id=role.id)
            grants = s.scalars(sa.select(m.Assignment).where(m.Assignment.role_id == role.id))
            for grant in grants.all():
                actor, target = ("Group", grant.type[5:]) if grant.type.startswith("Group") else (
                    "User", grant.type[4:])
                self.core.revoke_grant(s, actor, grant.actor_id, target, grant.target_id)
            s.execute(sa.delete(m.Assignment).where(m.Assignment.role_id == role.id))
            s.execute(
                sa.delete(m.ImpliedRole).where(
                    sa.or_(
                        m.ImpliedRole.prior_role_id == role.id,
                        m.ImpliedRole.implied_role_id == role.id,
                    )
                )
            )
            s.delete(role)

    def imply(self, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
        """Make ``prior`` imply ``implied`` (400 if that would close a loop)."""
        with self.core.db.session() as s:
            prior = get(s, m.Role, prior_id, "role")
            implied = get(s, m.Role, implied_id, "role")
            if prior.domain_id == GLOBAL and implied.domain_id != GLOBAL:
                raise Forbidden(f"Global role {prior.name} cannot imply domain-specific role "
                                f"{implied.name} (a domain role may imply a global one).")
            if prior.id in self.core.expand_implied(s, [implied.id]):
                raise BadRequest(
                    f"Role {implied.name} already implies {prior.name}; "
                    "an implied-role loop is not allowed."
                )
            if s.get(m.ImpliedRole, (prior.id, implied.id)) is None:
                with stored(s, "implied role"):
                    s.add(m.ImpliedRole(prior_role_id=prior.id, implied_role_id=implied.id))
            return prior, implied

    def implied_by(self, prior_id: str) -> tuple[m.Role, list[m.Role]]:
        """A role and the roles it directly implies."""
        with self.core.db.session() as s:
            prior = get(s, m.Role, prior_id, "role")
            implied = s.scalars(
                sa.select(m.Role)
                .join(m.ImpliedRole, m.ImpliedRole.implied_role_id == m.Role.id)
                .where(m.ImpliedRole.prior_role_id == prior.id)
            ).all()
            return prior, list(implied)

    def unimply(self, prior_id: str, implied_id: str) -> None:
        """Drop an inference rule; revoke the tokens that carry the prior role (they
        carried the implied one too)."""
        with self.core.db.session() as s:
            row = s.get(m.ImpliedRole, (prior_id, implied_id))
            if row is None:
                raise NotFound("That role does not imply the other.")
            self.core.revoke(s, role_id=prior_id)
            s.delete(row)

    def inferences(self) -> list[tuple[m.Role, list[m.Role]]]:
        """Every inference rule: each prior role with the roles it implies."""
        with self.core.db.session() as s:
            rows = s.scalars(sa.select(m.ImpliedRole)).all()
            roles = {r.id: r for r in s.scalars(sa.select(m.Role))}
            grouped: dict[str, list[m.Role]] = {}
            for row in rows:
                grouped.setdefault(row.prior_role_id, []).append(roles[row.implied_role_id])
            return [(roles[p], imp) for p, imp in grouped.items()]
