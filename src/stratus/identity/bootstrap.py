"""Idempotent set-up of a new cloud's identity data (used by stratus-manage)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.timeutil import new_hex_id, utcnow
from stratus.identity import models as m
from stratus.identity.assignments import SYSTEM_ID
from stratus.identity.core import GLOBAL, Identity
from stratus.identity.passwords import verify_password

# The roles Keystone's bootstrap makes: "manager" (a project's manager, implying member) and
# "service" (service users under the new default policies) too, which Tempest's dynamic
# credentials assign (project manager and service credentials) and look up by name.
BASE_ROLES = ("admin", "manager", "member", "reader", "service")
IMPLIED = (("admin", "member"), ("manager", "member"), ("member", "reader"))


@dataclass
class Tracker:
    changed: bool = False

    def mark(self) -> None:
        self.changed = True


def ensure_role(s: Session, name: str, t: Tracker) -> m.Role:
    role = s.scalar(sa.select(m.Role).where(m.Role.name == name, m.Role.domain_id == GLOBAL))
    if role is None:
        role = m.Role(id=new_hex_id(), name=name, domain_id=GLOBAL, extra={})
        s.add(role)
        s.flush()
        t.mark()
    return role


def ensure_region(s: Session, region_id: str, t: Tracker) -> None:
    if s.get(m.Region, region_id) is None:
        s.add(m.Region(id=region_id, description=""))
        s.flush()
        t.mark()


def ensure_service(
    s: Session, t: Tracker, stype: str, name: str, region_id: str, urls: dict[str, str]
) -> m.Service:
    """A service of ``stype`` with exactly one endpoint per given interface in the region."""
    ensure_region(s, region_id, t)
    svc = s.scalar(sa.select(m.Service).where(m.Service.type == stype, m.Service.name == name))
    if svc is None:
        svc = m.Service(id=new_hex_id(), type=stype, name=name, description="", enabled=True)
        s.add(svc)
        s.flush()
        t.mark()
    for interface, url in urls.items():
        eps = s.scalars(
            sa.select(m.Endpoint).where(
                m.Endpoint.service_id == svc.id,
                m.Endpoint.interface == interface,
                m.Endpoint.region_id == region_id,
            )
        ).all()
        if len(eps) == 1 and eps[0].url == url and eps[0].enabled:
            continue
        for ep in eps:
            s.delete(ep)
        s.add(
            m.Endpoint(
                id=new_hex_id(),
                service_id=svc.id,
                interface=interface,
                url=url,
                region_id=region_id,
                enabled=True,
            )
        )
        t.mark()
    return svc


def bootstrap(
    identity: Identity,
    *,
    password: str,
    username: str = "admin",
    project_name: str = "admin",
    region_id: str = "RegionOne",
    public_url: str,
    internal_url: str | None = None,
) -> bool:
    """Create or repair the admin user/project/roles and the identity catalog entry."""
    t = Tracker()
    with identity.db.session() as s:
        if s.get(m.Domain, "default") is None:
            s.add(
                m.Domain(
                    id="default",
                    name="Default",
                    description="The default domain",
                    enabled=True,
                    extra={},
                )
            )
            t.mark()
        roles = {name: ensure_role(s, name, t) for name in BASE_ROLES}
        for prior, implied in IMPLIED:
            key = (roles[prior].id, roles[implied].id)
            if s.get(m.ImpliedRole, key) is None:
                s.add(m.ImpliedRole(prior_role_id=key[0], implied_role_id=key[1]))
                t.mark()
        project = s.scalar(
            sa.select(m.Project).where(
                m.Project.domain_id == "default", m.Project.name == project_name
            )
        )
        if project is None:
            project = m.Project(
                id=new_hex_id(),
                name=project_name,
                domain_id="default",
                description="Bootstrap project for initializing the cloud.",
                enabled=True,
                tags=[],
                extra={},
            )
            s.add(project)
            t.mark()
        user = s.scalar(
            sa.select(m.User).where(m.User.domain_id == "default", m.User.name == username)
        )
        if user is None:
            user = m.User(
                id=new_hex_id(),
                name=username,
                domain_id="default",
                enabled=True,
                extra={},
                created_at=utcnow(precise=True),
                default_project_id=project.id,
            )
            s.add(user)
            identity.set_password(s, user, password)
            t.mark()
        else:
            if not verify_password(password, user.password_hash):
                identity.set_password(s, user, password)
                identity.revoke(s, user_id=user.id)
                t.mark()
            if not user.enabled:
                user.enabled = True
                t.mark()
        s.flush()
        # The admin role on the admin project and, as keystone-manage bootstrap
        # gives it, on the system (system-scoped tokens).
        for key4 in (("UserProject", user.id, project.id, roles["admin"].id),
                     ("UserSystem", user.id, SYSTEM_ID, roles["admin"].id)):
            if s.get(m.Assignment, key4) is None:
                s.add(m.Assignment(type=key4[0], actor_id=key4[1], target_id=key4[2],
                                   role_id=key4[3]))
                t.mark()
        ensure_service(
            s,
            t,
            "identity",
            "keystone",
            region_id,
            {"public": public_url, "internal": internal_url or public_url},
        )
        if not t.changed:
            s.rollback()
    return t.changed


def ensure_catalog_entry(
    identity: Identity, *, stype: str, name: str, region_id: str, urls: dict[str, str]
) -> bool:
    t = Tracker()
    with identity.db.session() as s:
        ensure_service(s, t, stype, name, region_id, urls)
    return t.changed


def ensure_service_user(
    identity: Identity, *, name: str, password: str, project_name: str = "service",
    role_name: str = "admin",
) -> bool:
    """A service's own user: enabled, with ``password``, holding ``role_name`` on the
    project ``project_name`` of the default domain (both made when missing)."""
    t = Tracker()
    with identity.db.session() as s:
        role = ensure_role(s, role_name, t)
        project = s.scalar(
            sa.select(m.Project).where(
                m.Project.domain_id == "default", m.Project.name == project_name
            )
        )
        if project is None:
            project = m.Project(id=new_hex_id(), name=project_name, domain_id="default",
                                description="Service users", enabled=True, tags=[], extra={})
            s.add(project)
            t.mark()
        user = s.scalar(
            sa.select(m.User).where(m.User.domain_id == "default", m.User.name == name)
        )
        if user is None:
            user = m.User(id=new_hex_id(), name=name, domain_id="default", enabled=True, extra={},
                          created_at=utcnow(precise=True), default_project_id=project.id)
            s.add(user)
            identity.set_password(s, user, password)
            t.mark()
        else:
            if not verify_password(password, user.password_hash):
                identity.set_password(s, user, password)
                identity.revoke(s, user_id=user.id)
                t.mark()
            if not user.enabled:
                user.enabled = True
                t.mark()
        s.flush()
        key = ("UserProject", user.id, project.id, role.id)
        if s.get(m.Assignment, key) is None:
            s.add(m.Assignment(type=key[0], actor_id=key[1], target_id=key[2], role_id=key[3]))
            t.mark()
        if not t.changed:
            s.rollback()
    return t.changed
