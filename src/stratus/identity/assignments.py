"""Identity service layer: role grants (a user or group holds a role on a
project, a domain or the system), the /v3/role_assignments listing (direct or
effective), and the projects and domains a user can scope a token to.

System grants are rows like the others, of kind ``UserSystem`` or ``GroupSystem``,
whose target is the fixed id :data:`SYSTEM_ID` (``system``, as Keystone stores
them): there is one system, ``{"all": true}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import NotFound
from stratus.identity import models as m
from stratus.identity.rows import GLOBAL, get, stored

if TYPE_CHECKING:
    from stratus.identity.core import Identity

# Grant kinds are "<Actor><Target>": UserProject, GroupDomain, UserSystem...
TARGETS: dict[str, tuple[Any, str]] = {"Project": (m.Project, "project"),
                                       "Domain": (m.Domain, "domain"),
                                       "System": (None, "system")}
# The target id of every system grant (project and domain ids are hex, never this).
SYSTEM_ID = "system"
ACTORS: dict[str, tuple[Any, str]] = {"User": (m.User, "user"), "Group": (m.Group, "group")}
# The filters /v3/role_assignments understands (exact match on an id).
# ``scope.system`` takes ``all`` only (the API layer checks it).
FILTERS = ("user.id", "group.id", "scope.project.id", "scope.domain.id", "scope.system",
           "role.id")


def projects_of_user(core: Identity, session: Session, user_id: str) -> list[m.Project]:
    """The projects the user (or one of its groups) holds a role on, by name."""
    actors = [user_id, *core.group_ids(session, user_id)]
    ids = session.scalars(
        sa.select(m.Assignment.target_id).where(
            m.Assignment.type.in_(("UserProject", "GroupProject")),
            m.Assignment.actor_id.in_(actors),
        )
    ).all()
    if not ids:
        return []
    return list(
        session.scalars(
            sa.select(m.Project).where(m.Project.id.in_(set(ids))).order_by(m.Project.name)
        ).all()
    )


class Assignments:
    """Role grants over the identity database."""

    def __init__(self, core: Identity) -> None:
        self.core = core

    def _resolve(
        self, s: Session, actor: str, target: str, target_id: str, actor_id: str
    ) -> tuple[str, str]:
        act = get(s, ACTORS[actor][0], actor_id, ACTORS[actor][1])
        if target == "System":
            return SYSTEM_ID, act.id
        tgt = get(s, TARGETS[target][0], target_id, TARGETS[target][1])
        return tgt.id, act.id

    def _missing(self, actor: str, target: str, role_id: str, aid: str, tid: str) -> NotFound:
        if target == "System":
            return NotFound(f"Could not find system role assignment with role: {role_id}, "
                            f"{ACTORS[actor][1]}: {aid}.")
        return NotFound(
            f"Could not find role assignment with role: {role_id}, "
            f"{ACTORS[actor][1]}: {aid}, {TARGETS[target][1]}: {tid}."
        )

    def roles_granted(
        self, actor: str, target: str, target_id: str, actor_id: str
    ) -> tuple[str, str, list[m.Role]]:
        """(target id, actor id, the roles granted directly to the actor on the target)."""
        with self.core.db.session() as s:
            tid, aid = self._resolve(s, actor, target, target_id, actor_id)
            roles = s.scalars(
                sa.select(m.Role)
                .join(m.Assignment, m.Assignment.role_id == m.Role.id)
                .where(
                    m.Assignment.type == actor + target,
                    m.Assignment.actor_id == aid,
                    m.Assignment.target_id == tid,
                )
            ).all()
            return tid, aid, list(roles)

    def grant(self, actor: str, target: str, target_id: str, actor_id: str, role_id: str) -> None:
        """Grant the role (nothing changes when it is already granted)."""
        kind = actor + target
        with self.core.db.session() as s:
            tid, aid = self._resolve(s, actor, target, target_id, actor_id)
            role = get(s, m.Role, role_id, "role")
            if s.get(m.Assignment, (kind, aid, tid, role.id)) is None:
                with stored(s, "role assignment"):
                    s.add(m.Assignment(type=kind, actor_id=aid, target_id=tid, role_id=role.id))

    def check(self, actor: str, target: str, target_id: str, actor_id: str, role_id: str) -> None:
        """404 unless the role is granted directly."""
        with self.core.db.session() as s:
            tid, aid = self._resolve(s, actor, target, target_id, actor_id)
            role = get(s, m.Role, role_id, "role")
            if s.get(m.Assignment, (actor + target, aid, tid, role.id)) is None:
                raise self._missing(actor, target, role.id, aid, tid)

    def revoke(self, actor: str, target: str, target_id: str, actor_id: str, role_id: str) -> None:
        """Remove a grant and revoke the tokens it gave the role (they stay revoked
        when the role is granted again)."""
        with self.core.db.session() as s:
            tid, aid = self._resolve(s, actor, target, target_id, actor_id)
            role = get(s, m.Role, role_id, "role")
            row = s.get(m.Assignment, (actor + target, aid, tid, role.id))
            if row is None:
                raise self._missing(actor, target, role.id, aid, tid)
            self.core.revoke_grant(s, actor, aid, target, tid)
            s.delete(row)

    def listing(
        self, filters: dict[str, str], effective: bool, include_names: bool
    ) -> tuple[list[m.Assignment], dict[str, dict[str, Any]]]:
        """The grants matching ``filters`` (keys of FILTERS), expanded to what each
        user effectively holds when ``effective``, and the names of everything they
        mention when ``include_names`` (else an empty mapping)."""
        with self.core.db.session() as s:
            rows = list(s.scalars(sa.select(m.Assignment)))
            if effective:
                rows = self._effective(s, rows)
            rows = [r for r in rows if _matches(r, filters)]
            names = _names(s, rows) if include_names else {}
            return rows, names

    def _effective(self, s: Session, rows: list[m.Assignment]) -> list[m.Assignment]:
        """Group grants expanded to each member, and implied roles added."""
        members: dict[str, list[str]] = {}
        for mem in s.scalars(sa.select(m.Membership)):
            members.setdefault(mem.group_id, []).append(mem.user_id)
        out: dict[tuple[str, str, str, str], m.Assignment] = {}
        # Domain-specific roles are never effective themselves, only what they imply.
        domain_roles = set(s.scalars(sa.select(m.Role.id).where(m.Role.domain_id != GLOBAL)))
        for row in rows:
            users = (
                members.get(row.actor_id, []) if row.type.startswith("Group") else [row.actor_id]
            )
            kind = "User" + row.type.removeprefix("Group").removeprefix("User")
            for role_id in self.core.expand_implied(s, [row.role_id]) - domain_roles:
                for uid in users:
                    key = (kind, uid, row.target_id, role_id)
                    out.setdefault(
                        key,
                        m.Assignment(
                            type=kind, actor_id=uid, target_id=row.target_id, role_id=role_id
                        ),
                    )
        return list(out.values())

    def projects_for(self, user_id: str) -> list[m.Project]:
        """The projects a token of this user may be scoped to (enabled ones)."""
        with self.core.db.session() as s:
            return [p for p in projects_of_user(self.core, s, user_id) if p.enabled]

    def domains_for(self, user_id: str) -> list[m.Domain]:
        """The enabled domains the user (or one of its groups) holds a role on."""
        with self.core.db.session() as s:
            actors = [user_id, *self.core.group_ids(s, user_id)]
            ids = s.scalars(
                sa.select(m.Assignment.target_id).where(
                    m.Assignment.type.in_(("UserDomain", "GroupDomain")),
                    m.Assignment.actor_id.in_(actors),
                )
            ).all()
            return list(
                s.scalars(
                    sa.select(m.Domain).where(
                        m.Domain.id.in_(set(ids)), m.Domain.enabled.is_(True)
                    )
                ).all()
            )


def target_kind(kind: str) -> str:
    """``Project``, ``Domain`` or ``System`` for a grant kind such as ``GroupSystem``."""
    return kind.removeprefix("User").removeprefix("Group")


def _matches(row: m.Assignment, q: dict[str, str]) -> bool:
    actor_kind = "User" if row.type.startswith("User") else "Group"
    target = target_kind(row.type)
    if "scope.system" in q and target != "System":
        return False
    checks = (
        ("user.id", actor_kind == "User"),
        ("group.id", actor_kind == "Group"),
        ("scope.project.id", target == "Project"),
        ("scope.domain.id", target == "Domain"),
    )
    for key, kind_ok in checks:
        if key in q:
            value = row.actor_id if key.split(".")[0] in ("user", "group") else row.target_id
            if not kind_ok or value != q[key]:
                return False
    return "role.id" not in q or row.role_id == q["role.id"]


def _names(s: Session, rows: list[m.Assignment]) -> dict[str, dict[str, Any]]:
    ids = {r.actor_id for r in rows} | {r.target_id for r in rows} | {r.role_id for r in rows}
    domains = {d.id: d for d in s.scalars(sa.select(m.Domain))}
    names: dict[str, dict[str, Any]] = {}
    model: Any
    for model in (m.User, m.Group, m.Project):
        for obj in s.scalars(sa.select(model).where(model.id.in_(ids))):
            dom = domains.get(obj.domain_id)
            names[obj.id] = {
                "name": obj.name,
                "domain": {"id": obj.domain_id, "name": dom.name if dom else ""},
            }
    for role in s.scalars(sa.select(m.Role).where(m.Role.id.in_(ids))):
        names[role.id] = {"name": role.name}
    for dom in domains.values():
        names.setdefault(dom.id, {"name": dom.name})
    return names
