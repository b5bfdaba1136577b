"""Identity HTTP routes: users, passwords, groups and application credentials."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from stratus.identity import models as m
from stratus.identity import views
from stratus.identity.api_auth import projects_of_user
from stratus.identity.api_resources import (
    admin,
    default_domain,
    password_value,
    require_domain,
    stored,
)
from stratus.identity.core import Identity, new_id, utcnow
from stratus.identity.passwords import hash_password, verify_password


def add_routes(router: Router, identity: Identity) -> None:
    get = identity.get

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
