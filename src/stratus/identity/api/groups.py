"""Identity API: /v3/groups and group membership."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.identity import views
from stratus.identity.api.access import admin, default_domain
from stratus.identity.core import Identity

routes = Routes()


@routes.add("GET", "/v3/groups")
def list_groups(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_groups")
    filters = {k: req.query[k] for k in ("name", "domain_id") if k in req.query}
    items = [views.group(req.base_url, g) for g in svc.groups.find(filters)]
    return views.collection(req.base_url, "/v3/groups", "groups", items)


@routes.add("POST", "/v3/groups", status=201)
def create_group(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_group")
    obj = views.entity(req.body, "group")
    name = views.text(obj, "name", required=True, max_len=64)
    domain_id = views.text(obj, "domain_id", max_len=64) or default_domain(req)
    return {"group": views.group(req.base_url, svc.groups.create(name, domain_id, obj))}


@routes.add("GET", "/v3/groups/{group_id}")
def show_group(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "get_group")
    return {"group": views.group(req.base_url, svc.groups.show(req.params["group_id"]))}


@routes.add("PATCH", "/v3/groups/{group_id}")
def update_group(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_group")
    obj = views.entity(req.body, "group")
    return {"group": views.group(req.base_url, svc.groups.update(req.params["group_id"], obj))}


@routes.add("DELETE", "/v3/groups/{group_id}")
def delete_group(req: Req, svc: Identity) -> None:
    admin(req, "delete_group")
    svc.groups.delete(req.params["group_id"])


@routes.add("GET", "/v3/groups/{group_id}/users")
def group_users(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_users_in_group")
    gid = req.params["group_id"]
    days = svc.security.password_expires_days
    items = [views.user(req.base_url, u, days) for u in svc.groups.users(gid)]
    return views.collection(req.base_url, f"/v3/groups/{gid}/users", "users", items)


@routes.add("PUT", "/v3/groups/{group_id}/users/{user_id}", status=204, body=False)
def add_member(req: Req, svc: Identity) -> None:
    admin(req, "add_user_to_group")
    svc.groups.add_member(req.params["group_id"], req.params["user_id"])


@routes.add("GET", "/v3/groups/{group_id}/users/{user_id}")
@routes.add("HEAD", "/v3/groups/{group_id}/users/{user_id}")  # registered first: HEAD's own route
def check_member(req: Req, svc: Identity) -> None:
    admin(req, "check_user_in_group")
    svc.groups.check_member(req.params["group_id"], req.params["user_id"])


@routes.add("DELETE", "/v3/groups/{group_id}/users/{user_id}")
def remove_member(req: Req, svc: Identity) -> None:
    admin(req, "remove_user_from_group")
    svc.groups.remove_member(req.params["group_id"], req.params["user_id"])
