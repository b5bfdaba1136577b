"""Identity HTTP routes: domains, projects, users, groups, roles, grants, assignments."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common import policy
from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.api_auth import projects_of_user
from stratus.identity.core import GLOBAL, Identity, new_id, utcnow
from stratus.identity.passwords import MAX_PASSWORD_BYTES, hash_password, verify_password


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

    # ---- users ---------------------------------------------------------------------------

    @router.add("GET", "/v3/users")
    def list_users(req: Req) -> dict[str, Any]:
        admin(req, "list_users")
        q = sa.select(m.User).order_by(m.User.name)
        for key, col in (("name", m.User.name), ("domain_id", m.User.domain_id)):
            if key in req.query:
                q = q.where(col == req.query[key])
        enabled = views.query_bool(req.query.get("enabled"), "enabled")
        if enabled is not None:
            q = q.where(m.User.enabled.is_(enabled))
        with identity.db.session() as s:
            items = [views.user(req.base_url, u) for u in s.scalars(q)]
        return views.collection(req.base_url, "/v3/users", "users", items)

    @router.add("POST", "/v3/users", status=201)
    def create_user(req: Req) -> dict[str, Any]:
        admin(req, "create_user")
        obj = views.entity(req.body, "user")
        name = views.text(obj, "name", required=True, max_len=255)
        password = password_value(obj)
        with identity.db.session() as s:
            domain_id = views.text(obj, "domain_id", max_len=64) or default_domain(req)
            require_domain(s, domain_id)
            default_project_id = views.text(obj, "default_project_id", max_len=64)
            if default_project_id and s.get(m.Project, default_project_id) is None:
                raise BadRequest(
                    f"default_project_id {default_project_id!r} does not refer "
                    "to an existing project."
                )
            if (
                s.scalar(
                    sa.select(m.User).where(m.User.domain_id == domain_id, m.User.name == name)
                )
                is not None
            ):
                raise Conflict(
                    f"Conflict occurred attempting to store user - Duplicate entry "
                    f"found with name {name} at domain ID {domain_id}."
                )
            user = m.User(
                id=new_id(),
                name=name,
                domain_id=domain_id,
                default_project_id=default_project_id,
                description=views.text(obj, "description", allow_empty=True, max_len=65535),
                enabled=views.boolean(obj, "enabled", True),
                extra=views.extras(obj),
                created_at=utcnow(),
            )
            if password is not None:
                identity.set_password(s, user, password)
            with stored(
                s, f"user - Duplicate entry found with name {name} at domain ID {domain_id}"
            ):
                s.add(user)
            return {"user": views.user(req.base_url, user)}

    def self_or_admin(req: Req, uid: str, action: str) -> None:
        if not req.ctx.is_admin and req.ctx.user_id != uid:
            raise Forbidden(
                f"You are not authorized to perform the requested action: identity:{action}."
            )

    @router.add("GET", "/v3/users/{user_id}")
    def show_user(req: Req) -> dict[str, Any]:
        uid = req.params["user_id"]
        self_or_admin(req, uid, "get_user")
        with identity.db.session() as s:
            return {"user": views.user(req.base_url, get(s, m.User, uid, "user"))}

    @router.add("PATCH", "/v3/users/{user_id}")
    def update_user(req: Req) -> dict[str, Any]:
        admin(req, "update_user")
        obj = views.entity(req.body, "user")
        if "domain_id" in obj:
            raise BadRequest("A user cannot be moved to another domain.")
        password = password_value(obj)
        with identity.db.session() as s:
            user = get(s, m.User, req.params["user_id"], "user")
            if "name" in obj:
                user.name = views.text(obj, "name", required=True) or user.name
            if "description" in obj:
                user.description = views.text(obj, "description", allow_empty=True, max_len=65535)
            if "default_project_id" in obj:
                dpid = views.text(obj, "default_project_id", max_len=64)
                if dpid and s.get(m.Project, dpid) is None:
                    raise BadRequest(
                        f"default_project_id {dpid!r} does not refer to an existing project."
                    )
                user.default_project_id = dpid
            enabled = views.boolean(obj, "enabled")
            if (enabled is False and user.enabled) or password is not None:
                identity.revoke(s, user_id=user.id)
            if enabled is not None:
                user.enabled = enabled
            if password is not None:
                identity.set_password(s, user, password)
            user.extra = {**(user.extra or {}), **views.extras(obj)}
            with stored(
                s,
                f"user - Duplicate entry found with name {user.name} at domain ID {user.domain_id}",
            ):
                pass
            return {"user": views.user(req.base_url, user)}

    @router.add("DELETE", "/v3/users/{user_id}")
    def delete_user(req: Req) -> None:
        admin(req, "delete_user")
        with identity.db.session() as s:
            user = get(s, m.User, req.params["user_id"], "user")
            s.execute(sa.delete(m.Assignment).where(m.Assignment.actor_id == user.id))
            s.execute(sa.delete(m.Membership).where(m.Membership.user_id == user.id))
            s.execute(
                sa.delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user.id)
            )
            identity.revoke(s, user_id=user.id)
            s.delete(user)

    @router.add("POST", "/v3/users/{user_id}/password", status=204)
    def change_password(req: Req) -> None:
        obj = views.entity(req.body, "user")
        uid = req.params["user_id"]
        new = password_value(obj)
        original = obj.get("original_password")
        if new is None or not isinstance(original, str):
            raise BadRequest("Both 'password' and 'original_password' are required.")
        with identity.db.session() as s:
            user = s.get(m.User, uid)
            if user is None or not verify_password(original, user.password_hash):
                raise Unauthorized("The request you have made requires authentication.")
            identity.set_password(s, user, new)
            identity.revoke(s, user_id=user.id)

    @router.add("GET", "/v3/users/{user_id}/projects")
    def user_projects(req: Req) -> dict[str, Any]:
        uid = req.params["user_id"]
        self_or_admin(req, uid, "list_user_projects")
        with identity.db.session() as s:
            get(s, m.User, uid, "user")
            items = [views.project(req.base_url, p) for p in projects_of_user(identity, s, uid)]
        return views.collection(req.base_url, f"/v3/users/{uid}/projects", "projects", items)

    @router.add("GET", "/v3/users/{user_id}/groups")
    def user_groups(req: Req) -> dict[str, Any]:
        uid = req.params["user_id"]
        self_or_admin(req, uid, "list_groups_for_user")
        with identity.db.session() as s:
            get(s, m.User, uid, "user")
            groups = s.scalars(
                sa.select(m.Group)
                .join(m.Membership, m.Membership.group_id == m.Group.id)
                .where(m.Membership.user_id == uid)
            ).all()
            items = [views.group(req.base_url, g) for g in groups]
        return views.collection(req.base_url, f"/v3/users/{uid}/groups", "groups", items)

    # ---- groups --------------------------------------------------------------------------

    @router.add("GET", "/v3/groups")
    def list_groups(req: Req) -> dict[str, Any]:
        admin(req, "list_groups")
        q = sa.select(m.Group).order_by(m.Group.name)
        for key, col in (("name", m.Group.name), ("domain_id", m.Group.domain_id)):
            if key in req.query:
                q = q.where(col == req.query[key])
        with identity.db.session() as s:
            items = [views.group(req.base_url, g) for g in s.scalars(q)]
        return views.collection(req.base_url, "/v3/groups", "groups", items)

    @router.add("POST", "/v3/groups", status=201)
    def create_group(req: Req) -> dict[str, Any]:
        admin(req, "create_group")
        obj = views.entity(req.body, "group")
        name = views.text(obj, "name", required=True, max_len=64)
        with identity.db.session() as s:
            domain_id = views.text(obj, "domain_id", max_len=64) or default_domain(req)
            require_domain(s, domain_id)
            if (
                s.scalar(
                    sa.select(m.Group).where(m.Group.domain_id == domain_id, m.Group.name == name)
                )
                is not None
            ):
                raise Conflict(
                    f"Conflict occurred attempting to store group - a group named "
                    f"{name!r} already exists in domain {domain_id!r}."
                )
            grp = m.Group(
                id=new_id(),
                name=name,
                domain_id=domain_id,
                description=views.text(
                    obj, "description", allow_empty=True, max_len=65535, default=""
                )
                or "",
            )
            with stored(s, f"group {name!r}"):
                s.add(grp)
            return {"group": views.group(req.base_url, grp)}

    @router.add("GET", "/v3/groups/{group_id}")
    def show_group(req: Req) -> dict[str, Any]:
        admin(req, "get_group")
        with identity.db.session() as s:
            return {
                "group": views.group(req.base_url, get(s, m.Group, req.params["group_id"], "group"))
            }

    @router.add("PATCH", "/v3/groups/{group_id}")
    def update_group(req: Req) -> dict[str, Any]:
        admin(req, "update_group")
        obj = views.entity(req.body, "group")
        with identity.db.session() as s:
            grp = get(s, m.Group, req.params["group_id"], "group")
            if "name" in obj:
                grp.name = views.text(obj, "name", required=True, max_len=64) or grp.name
            if "description" in obj:
                grp.description = (
                    views.text(obj, "description", allow_empty=True, max_len=65535, default="")
                    or ""
                )
            with stored(s, f"group {grp.name!r}"):
                pass
            return {"group": views.group(req.base_url, grp)}

    @router.add("DELETE", "/v3/groups/{group_id}")
    def delete_group(req: Req) -> None:
        admin(req, "delete_group")
        with identity.db.session() as s:
            grp = get(s, m.Group, req.params["group_id"], "group")
            s.execute(sa.delete(m.Assignment).where(m.Assignment.actor_id == grp.id))
            s.execute(sa.delete(m.Membership).where(m.Membership.group_id == grp.id))
            s.delete(grp)

    @router.add("GET", "/v3/groups/{group_id}/users")
    def group_users(req: Req) -> dict[str, Any]:
        admin(req, "list_users_in_group")
        gid = req.params["group_id"]
        with identity.db.session() as s:
            get(s, m.Group, gid, "group")
            users = s.scalars(
                sa.select(m.User)
                .join(m.Membership, m.Membership.user_id == m.User.id)
                .where(m.Membership.group_id == gid)
            ).all()
            items = [views.user(req.base_url, u) for u in users]
        return views.collection(req.base_url, f"/v3/groups/{gid}/users", "users", items)

    def membership(req: Req, s: Session) -> tuple[m.Group, m.User]:
        return (
            get(s, m.Group, req.params["group_id"], "group"),
            get(s, m.User, req.params["user_id"], "user"),
        )

    @router.add("PUT", "/v3/groups/{group_id}/users/{user_id}", status=204, body=False)
    def add_member(req: Req) -> None:
        admin(req, "add_user_to_group")
        with identity.db.session() as s:
            grp, user = membership(req, s)
            if s.get(m.Membership, (user.id, grp.id)) is None:
                with stored(s, "group membership"):
                    s.add(m.Membership(user_id=user.id, group_id=grp.id))

    @router.add("HEAD", "/v3/groups/{group_id}/users/{user_id}")
    def check_member(req: Req) -> None:
        admin(req, "check_user_in_group")
        with identity.db.session() as s:
            grp, user = membership(req, s)
            if s.get(m.Membership, (user.id, grp.id)) is None:
                raise NotFound(f"User {user.id} is not a member of group {grp.id}.")

    router.add("GET", "/v3/groups/{group_id}/users/{user_id}")(check_member)

    @router.add("DELETE", "/v3/groups/{group_id}/users/{user_id}")
    def remove_member(req: Req) -> None:
        admin(req, "remove_user_from_group")
        with identity.db.session() as s:
            grp, user = membership(req, s)
            row = s.get(m.Membership, (user.id, grp.id))
            if row is None:
                raise NotFound(f"User {user.id} is not a member of group {grp.id}.")
            s.delete(row)

    # ---- application credentials ---------------------------------------------------------

    @router.add("POST", "/v3/users/{user_id}/application_credentials", status=201)
    def create_app_cred(req: Req) -> dict[str, Any]:
        uid = req.params["user_id"]
        ctx = req.ctx
        if ctx.user_id != uid:
            raise Forbidden("Application credentials can only be created by their own user.")
        if not ctx.project_id:
            raise Forbidden("A project-scoped token is needed to create an application credential.")
        obj = views.entity(req.body, "application_credential")
        name = views.text(obj, "name", required=True)
        secret = views.text(obj, "secret", max_len=4096) or secrets.token_urlsafe(48)
        expires = None
        if obj.get("expires_at"):
            try:
                expires = datetime.fromisoformat(str(obj["expires_at"]).replace("Z", "+00:00"))
            except ValueError:
                raise BadRequest(
                    f"expires_at {obj['expires_at']!r} is not an ISO 8601 time."
                ) from None
            expires = expires.replace(tzinfo=None)
            if expires <= utcnow():
                raise BadRequest("expires_at is in the past.")
        with identity.db.session() as s:
            held = identity.effective_roles(s, uid, ctx.project_id, "Project")
            wanted = obj.get("roles")
            if wanted is None:
                roles = held
            else:
                if not isinstance(wanted, list):
                    raise BadRequest("'roles' must be a list of {'id'} or {'name'} objects.")
                roles = []
                for spec in wanted:
                    match = [
                        r
                        for r in held
                        if isinstance(spec, dict)
                        and (r.id == spec.get("id") or r.name == spec.get("name"))
                    ]
                    if not match:
                        raise Forbidden(
                            f"You do not hold role {spec!r} on this project, so "
                            "an application credential cannot delegate it."
                        )
                    roles.extend(match)
            if (
                s.scalar(
                    sa.select(m.ApplicationCredential).where(
                        m.ApplicationCredential.user_id == uid, m.ApplicationCredential.name == name
                    )
                )
                is not None
            ):
                raise Conflict(f"An application credential named {name!r} already exists.")
            cred = m.ApplicationCredential(
                id=new_id(),
                name=name,
                user_id=uid,
                project_id=ctx.project_id,
                description=views.text(obj, "description", allow_empty=True, max_len=65535),
                secret_hash=hash_password(secret, identity.hash_algorithm),
                expires_at=expires,
                unrestricted=bool(obj.get("unrestricted", False)),
                roles=[r.id for r in roles],
            )
            with stored(s, f"application credential {name!r}"):
                s.add(cred)
            body = views.app_credential(req.base_url, cred, roles)
        body["secret"] = secret
        return {"application_credential": body}

    def cred_roles(s: Session, cred: m.ApplicationCredential) -> list[m.Role]:
        return list(s.scalars(sa.select(m.Role).where(m.Role.id.in_(cred.roles or []))).all())

    @router.add("GET", "/v3/users/{user_id}/application_credentials")
    def list_app_creds(req: Req) -> dict[str, Any]:
        uid = req.params["user_id"]
        self_or_admin(req, uid, "list_application_credentials")
        with identity.db.session() as s:
            q = sa.select(m.ApplicationCredential).where(m.ApplicationCredential.user_id == uid)
            if "name" in req.query:
                q = q.where(m.ApplicationCredential.name == req.query["name"])
            items = [views.app_credential(req.base_url, c, cred_roles(s, c)) for c in s.scalars(q)]
        return views.collection(
            req.base_url,
            f"/v3/users/{uid}/application_credentials",
            "application_credentials",
            items,
        )

    def one_cred(req: Req, s: Session) -> m.ApplicationCredential:
        uid = req.params["user_id"]
        self_or_admin(req, uid, "get_application_credential")
        cred = s.get(m.ApplicationCredential, req.params["cred_id"])
        if cred is None or cred.user_id != uid:
            raise NotFound(f"Could not find application credential: {req.params['cred_id']}.")
        return cred

    @router.add("GET", "/v3/users/{user_id}/application_credentials/{cred_id}")
    def show_app_cred(req: Req) -> dict[str, Any]:
        with identity.db.session() as s:
            cred = one_cred(req, s)
            return {
                "application_credential": views.app_credential(
                    req.base_url, cred, cred_roles(s, cred)
                )
            }

    @router.add("DELETE", "/v3/users/{user_id}/application_credentials/{cred_id}")
    def delete_app_cred(req: Req) -> None:
        with identity.db.session() as s:
            s.delete(one_cred(req, s))

    # ---- roles ---------------------------------------------------------------------------

    @router.add("GET", "/v3/roles")
    def list_roles(req: Req) -> dict[str, Any]:
        admin(req, "list_roles")
        q = sa.select(m.Role).order_by(m.Role.name)
        q = q.where(m.Role.domain_id == req.query.get("domain_id", GLOBAL))
        if "name" in req.query:
            q = q.where(m.Role.name == req.query["name"])
        with identity.db.session() as s:
            items = [views.role(req.base_url, r) for r in s.scalars(q)]
        return views.collection(req.base_url, "/v3/roles", "roles", items)

    @router.add("POST", "/v3/roles", status=201)
    def create_role(req: Req) -> dict[str, Any]:
        admin(req, "create_role")
        obj = views.entity(req.body, "role")
        name = views.text(obj, "name", required=True)
        with identity.db.session() as s:
            domain_id = views.text(obj, "domain_id", max_len=64) or GLOBAL
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
                id=new_id(),
                name=name,
                domain_id=domain_id,
                description=views.text(obj, "description", allow_empty=True, max_len=65535),
                extra=views.extras(obj),
            )
            with stored(s, f"role {name!r}"):
                s.add(role)
            return {"role": views.role(req.base_url, role)}

    @router.add("GET", "/v3/roles/{role_id}")
    def show_role(req: Req) -> dict[str, Any]:
        admin(req, "get_role")
        with identity.db.session() as s:
            return {"role": views.role(req.base_url, get(s, m.Role, req.params["role_id"], "role"))}

    @router.add("PATCH", "/v3/roles/{role_id}")
    def update_role(req: Req) -> dict[str, Any]:
        admin(req, "update_role")
        obj = views.entity(req.body, "role")
        with identity.db.session() as s:
            role = get(s, m.Role, req.params["role_id"], "role")
            if "name" in obj:
                role.name = views.text(obj, "name", required=True) or role.name
            if "description" in obj:
                role.description = views.text(obj, "description", allow_empty=True, max_len=65535)
            role.extra = {**(role.extra or {}), **views.extras(obj)}
            with stored(s, f"role {role.name!r}"):
                pass
            return {"role": views.role(req.base_url, role)}

    @router.add("DELETE", "/v3/roles/{role_id}")
    def delete_role(req: Req) -> None:
        admin(req, "delete_role")
        with identity.db.session() as s:
            role = get(s, m.Role, req.params["role_id"], "role")
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

    def inference(base: str, prior: m.Role, implied: m.Role | list[m.Role]) -> dict[str, Any]:
        def short(r: m.Role) -> dict[str, Any]:
            return {"id": r.id, "name": r.name, "links": {"self": f"{base}/v3/roles/{r.id}"}}

        implies = [short(r) for r in implied] if isinstance(implied, list) else short(implied)
        return {"prior_role": short(prior), "implies": implies}

    @router.add("PUT", "/v3/roles/{prior_id}/implies/{implied_id}", status=201, body=False)
    def create_implied(req: Req) -> dict[str, Any]:
        admin(req, "create_implied_role")
        with identity.db.session() as s:
            prior = get(s, m.Role, req.params["prior_id"], "role")
            implied = get(s, m.Role, req.params["implied_id"], "role")
            if prior.id in identity.expand_implied(s, [implied.id]):
                raise BadRequest(
                    f"Role {implied.name} already implies {prior.name}; "
                    "an implied-role loop is not allowed."
                )
            if s.get(m.ImpliedRole, (prior.id, implied.id)) is None:
                with stored(s, "implied role"):
                    s.add(m.ImpliedRole(prior_role_id=prior.id, implied_role_id=implied.id))
            return {"role_inference": inference(req.base_url, prior, implied)}

    @router.add("GET", "/v3/roles/{prior_id}/implies")
    def list_implied(req: Req) -> dict[str, Any]:
        admin(req, "list_implied_roles")
        with identity.db.session() as s:
            prior = get(s, m.Role, req.params["prior_id"], "role")
            implied = s.scalars(
                sa.select(m.Role)
                .join(m.ImpliedRole, m.ImpliedRole.implied_role_id == m.Role.id)
                .where(m.ImpliedRole.prior_role_id == prior.id)
            ).all()
            return {"role_inference": inference(req.base_url, prior, list(implied))}

    @router.add("DELETE", "/v3/roles/{prior_id}/implies/{implied_id}")
    def delete_implied(req: Req) -> None:
        admin(req, "delete_implied_role")
        with identity.db.session() as s:
            row = s.get(m.ImpliedRole, (req.params["prior_id"], req.params["implied_id"]))
            if row is None:
                raise NotFound("That role does not imply the other.")
            s.delete(row)

    @router.add("GET", "/v3/role_inferences")
    def role_inferences(req: Req) -> dict[str, Any]:
        admin(req, "list_role_inference_rules")
        with identity.db.session() as s:
            rows = s.scalars(sa.select(m.ImpliedRole)).all()
            roles = {r.id: r for r in s.scalars(sa.select(m.Role))}
            grouped: dict[str, list[m.Role]] = {}
            for row in rows:
                grouped.setdefault(row.prior_role_id, []).append(roles[row.implied_role_id])
            items = [inference(req.base_url, roles[p], imp) for p, imp in grouped.items()]
        return {"role_inferences": items, "links": {"self": f"{req.base_url}/v3/role_inferences"}}
