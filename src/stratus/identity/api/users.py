"""Identity API: /v3/users, a user's password, projects and groups."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.identity import views
from stratus.identity.api.access import admin, default_domain, self_or_admin
from stratus.identity.core import Identity

routes = Routes()


@routes.add("GET", "/v3/users")
def list_users(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_users")
    filters = {k: req.query[k] for k in ("name", "domain_id") if k in req.query}
    enabled = views.query_bool(req.query.get("enabled"), "enabled")
    days = svc.security.password_expires_days
    items = [views.user(req.base_url, u, days) for u in svc.users.find(filters, enabled)]
    return views.collection(req.base_url, "/v3/users", "users", items)


@routes.add("POST", "/v3/users", status=201)
def create_user(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_user")
    obj = views.entity(req.body, "user")
    name = views.text(obj, "name", required=True, max_len=255)
    password = views.password_value(obj)
    domain_id = views.text(obj, "domain_id", max_len=64) or default_domain(req)
    user = svc.users.create(name, password, domain_id, obj)
    return {"user": views.user(req.base_url, user, svc.security.password_expires_days)}


@routes.add("GET", "/v3/users/{user_id}")
def show_user(req: Req, svc: Identity) -> dict[str, Any]:
    uid = req.params["user_id"]
    self_or_admin(req, uid, "get_user")
    user = svc.users.show(uid)
    return {"user": views.user(req.base_url, user, svc.security.password_expires_days)}


@routes.add("PATCH", "/v3/users/{user_id}")
def update_user(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_user")
    obj = views.entity(req.body, "user")
    if "domain_id" in obj:
        raise BadRequest("A user cannot be moved to another domain.")
    password = views.password_value(obj)
    user = svc.users.update(req.params["user_id"], obj, password)
    return {"user": views.user(req.base_url, user, svc.security.password_expires_days)}


@routes.add("DELETE", "/v3/users/{user_id}")
def delete_user(req: Req, svc: Identity) -> None:
    admin(req, "delete_user")
    svc.users.delete(req.params["user_id"])


@routes.add("POST", "/v3/users/{user_id}/password", status=204)
def change_password(req: Req, svc: Identity) -> None:
    obj = views.entity(req.body, "user")
    new = views.password_value(obj)
    original = obj.get("original_password")
    if new is None or not isinstance(original, str):
        raise BadRequest("Both 'password' and 'original_password' are required.")
    svc.users.change_password(req.params["user_id"], original, new)


@routes.add("GET", "/v3/users/{user_id}/projects")
def user_projects(req: Req, svc: Identity) -> dict[str, Any]:
    uid = req.params["user_id"]
    self_or_admin(req, uid, "list_user_projects")
    items = [views.project(req.base_url, p) for p in svc.users.projects(uid)]
    return views.collection(req.base_url, f"/v3/users/{uid}/projects", "projects", items)


@routes.add("GET", "/v3/users/{user_id}/groups")
def user_groups(req: Req, svc: Identity) -> dict[str, Any]:
    uid = req.params["user_id"]
    self_or_admin(req, uid, "list_groups_for_user")
    items = [views.group(req.base_url, g) for g in svc.users.groups(uid)]
    return views.collection(req.base_url, f"/v3/users/{uid}/groups", "groups", items)
