"""Identity HTTP routes: domains and projects, and the helpers every identity route uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common import policy
from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest, Conflict, Forbidden
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.core import Identity, new_id
from stratus.identity.passwords import MAX_PASSWORD_BYTES


def admin(req: Req, action: str) -> None:
    policy.enforce(req.ctx, f"identity:{action}", "admin")


@contextmanager
def stored(session: Session, what: str) -> Iterator[None]:
    """Flush inside; a unique-constraint race becomes a clear 409."""
    try:
        yield
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        raise Conflict(f"Conflict occurred attempting to store {what}.") from None


def password_value(obj: dict[str, Any]) -> str | None:
    if "password" not in obj or obj["password"] is None:
        return None
    pw = obj["password"]
    if not isinstance(pw, str) or not pw:
        raise BadRequest("'password' must be a non-empty string.")
    if len(pw.encode()) > MAX_PASSWORD_BYTES:
        raise BadRequest(f"'password' is longer than {MAX_PASSWORD_BYTES} bytes.")
    return pw


def require_domain(session: Session, domain_id: str) -> m.Domain:
    dom = session.get(m.Domain, domain_id)
    if dom is None:
        raise BadRequest(f"domain_id {domain_id!r} does not refer to an existing domain.")
    return dom


def default_domain(req: Req) -> str:
    ctx = req.ctx
    return ctx.domain_id or ctx.project_domain_id or ctx.user_domain_id or "default"


def add_routes(router: Router, identity: Identity) -> None:
    get = identity.get

    # ---- domains -------------------------------------------------------------------------

    @router.add("GET", "/v3/domains")
    def list_domains(req: Req) -> dict[str, Any]:
        admin(req, "list_domains")
        q = sa.select(m.Domain).order_by(m.Domain.name)
        if "name" in req.query:
            q = q.where(m.Domain.name == req.query["name"])
        enabled = views.query_bool(req.query.get("enabled"), "enabled")
        if enabled is not None:
            q = q.where(m.Domain.enabled.is_(enabled))
        with identity.db.session() as s:
            items = [views.domain(req.base_url, d) for d in s.scalars(q)]
        return views.collection(req.base_url, "/v3/domains", "domains", items)

    @router.add("POST", "/v3/domains", status=201)
    def create_domain(req: Req) -> dict[str, Any]:
        admin(req, "create_domain")
        obj = views.entity(req.body, "domain")
        name = views.text(obj, "name", required=True, max_len=64)
        assert name is not None
        with identity.db.session() as s:
            if s.scalar(sa.select(m.Domain).where(m.Domain.name == name)) is not None:
                raise Conflict(
                    f"Conflict occurred attempting to store domain - "
                    f"a domain named {name!r} already exists."
                )
            dom = m.Domain(
                id=views.text(obj, "id", max_len=64) or new_id(),
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
            return {"domain": views.domain(req.base_url, dom)}

    @router.add("GET", "/v3/domains/{domain_id}")
    def show_domain(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        did = req.params["domain_id"]
        if not ctx.is_admin and did not in (ctx.domain_id, ctx.project_domain_id):
            raise Forbidden(
                "You are not authorized to perform the requested action: identity:get_domain."
            )
        with identity.db.session() as s:
            return {"domain": views.domain(req.base_url, get(s, m.Domain, did, "domain"))}

    @router.add("PATCH", "/v3/domains/{domain_id}")
    def update_domain(req: Req) -> dict[str, Any]:
        admin(req, "update_domain")
        obj = views.entity(req.body, "domain")
        with identity.db.session() as s:
            dom = get(s, m.Domain, req.params["domain_id"], "domain")
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
                dom.enabled = enabled
            dom.extra = {**(dom.extra or {}), **views.extras(obj)}
            with stored(s, f"domain {dom.name!r}"):
                pass
            return {"domain": views.domain(req.base_url, dom)}

    @router.add("DELETE", "/v3/domains/{domain_id}")
    def delete_domain(req: Req) -> None:
        admin(req, "delete_domain")
        with identity.db.session() as s:
            dom = get(s, m.Domain, req.params["domain_id"], "domain")
            if dom.id == "default":
                raise Forbidden("The default domain cannot be deleted.")
            if dom.enabled:
                raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
            projects = s.scalars(sa.select(m.Project.id).where(m.Project.domain_id == dom.id)).all()
            users = s.scalars(sa.select(m.User.id).where(m.User.domain_id == dom.id)).all()
            groups = s.scalars(sa.select(m.Group.id).where(m.Group.domain_id == dom.id)).all()
            ids = [dom.id, *projects, *users, *groups]
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
                identity.revoke(s, user_id=uid)
            s.delete(dom)

    # ---- projects ------------------------------------------------------------------------

    @router.add("GET", "/v3/projects")
    def list_projects(req: Req) -> dict[str, Any]:
        admin(req, "list_projects")
        q = sa.select(m.Project).order_by(m.Project.name)
        for key, col in (
            ("name", m.Project.name),
            ("domain_id", m.Project.domain_id),
            ("parent_id", m.Project.parent_id),
        ):
            if key in req.query:
                q = q.where(col == req.query[key])
        enabled = views.query_bool(req.query.get("enabled"), "enabled")
        if enabled is not None:
            q = q.where(m.Project.enabled.is_(enabled))
        if views.query_bool(req.query.get("is_domain"), "is_domain"):
            return views.collection(req.base_url, "/v3/projects", "projects", [])
        with identity.db.session() as s:
            items = [views.project(req.base_url, p) for p in s.scalars(q)]
        return views.collection(req.base_url, "/v3/projects", "projects", items)

    @router.add("POST", "/v3/projects", status=201)
    def create_project(req: Req) -> dict[str, Any]:
        admin(req, "create_project")
        obj = views.entity(req.body, "project")
        name = views.text(obj, "name", required=True, max_len=64)
        if views.boolean(obj, "is_domain", False):
            raise BadRequest("Projects acting as domains (is_domain=true) are not supported.")
        with identity.db.session() as s:
            parent_id = views.text(obj, "parent_id", max_len=64)
            domain_id = views.text(obj, "domain_id", max_len=64)
            parent = None
            if parent_id is not None:
                parent = s.get(m.Project, parent_id)
                if parent is None and s.get(m.Domain, parent_id) is None:
                    raise BadRequest(f"parent_id {parent_id!r} is neither a project nor a domain.")
            if parent is not None and domain_id and domain_id != parent.domain_id:
                raise BadRequest("A project must be in the same domain as its parent.")
            domain_id = (
                domain_id or (parent.domain_id if parent else parent_id) or default_domain(req)
            )
            require_domain(s, domain_id)
            if (
                s.scalar(
                    sa.select(m.Project).where(
                        m.Project.domain_id == domain_id, m.Project.name == name
                    )
                )
                is not None
            ):
                raise Conflict(
                    f"Conflict occurred attempting to store project - a project "
                    f"named {name!r} already exists in domain {domain_id!r}."
                )
            proj = m.Project(
                id=new_id(),
                name=name,
                domain_id=domain_id,
                parent_id=parent.id if parent else None,
                description=views.text(
                    obj, "description", allow_empty=True, max_len=65535, default=""
                )
                or "",
                enabled=views.boolean(obj, "enabled", True),
                tags=views.tags(obj) or [],
                extra=views.extras(obj),
            )
            with stored(s, f"project {name!r}"):
                s.add(proj)
            return {"project": views.project(req.base_url, proj)}

    @router.add("GET", "/v3/projects/{project_id}")
    def show_project(req: Req) -> dict[str, Any]:
        ctx = req.ctx
        pid = req.params["project_id"]
        if not ctx.is_admin and ctx.project_id != pid:
            raise Forbidden(
                "You are not authorized to perform the requested action: identity:get_project."
            )
        with identity.db.session() as s:
            return {"project": views.project(req.base_url, get(s, m.Project, pid, "project"))}

    @router.add("PATCH", "/v3/projects/{project_id}")
    def update_project(req: Req) -> dict[str, Any]:
        admin(req, "update_project")
        obj = views.entity(req.body, "project")
        if "domain_id" in obj:
            raise BadRequest("A project cannot be moved to another domain.")
        with identity.db.session() as s:
            proj = get(s, m.Project, req.params["project_id"], "project")
            if "name" in obj:
                proj.name = views.text(obj, "name", required=True, max_len=64) or proj.name
            if "description" in obj:
                proj.description = (
                    views.text(obj, "description", allow_empty=True, max_len=65535, default="")
                    or ""
                )
            new_tags = views.tags(obj)
            if new_tags is not None:
                proj.tags = new_tags
            enabled = views.boolean(obj, "enabled")
            if enabled is False and proj.enabled:
                identity.revoke(s, project_id=proj.id)
            if enabled is not None:
                proj.enabled = enabled
            proj.extra = {**(proj.extra or {}), **views.extras(obj)}
            with stored(s, f"project {proj.name!r}"):
                pass
            return {"project": views.project(req.base_url, proj)}

    @router.add("DELETE", "/v3/projects/{project_id}")
    def delete_project(req: Req) -> None:
        admin(req, "delete_project")
        with identity.db.session() as s:
            proj = get(s, m.Project, req.params["project_id"], "project")
            if s.scalar(sa.select(m.Project.id).where(m.Project.parent_id == proj.id).limit(1)):
                raise Forbidden(
                    "Cannot delete a project that has child projects; delete them first."
                )
            s.execute(sa.delete(m.Assignment).where(m.Assignment.target_id == proj.id))
            s.execute(
                sa.delete(m.ApplicationCredential).where(
                    m.ApplicationCredential.project_id == proj.id
                )
            )
            identity.revoke(s, project_id=proj.id)
            s.delete(proj)
