"""``/v2.0/security-groups``: list, create, show, update, delete (``default`` made on demand)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import Conflict
from stratus.network import listing, views
from stratus.network.core import NetworkCore, neutron

routes = Routes()

SG_ATTRS = {"name", "description", "project_id", "tenant_id", "tags", "stateful"}


@routes.add("GET", "/v2.0/security-groups")
def list_groups(req: Req, svc: NetworkCore) -> dict[str, Any]:
    items = svc.security_groups.visible(req.ctx)
    return listing.apply(items, req.query, req.base_url, "/v2.0/security-groups",
                         "security_groups")


@routes.add("POST", "/v2.0/security-groups", status=201)
def create_group(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    svc.require_member(ctx, "create_security_group")
    obj = views.entity(req.body, "security_group")
    views.only(obj, SG_ATTRS, "security_group")
    name = views.text(obj, "name")
    if name == "default":
        raise neutron(Conflict, "SecurityGroupDefaultAlreadyExists",
                      "Default security group already exists.")
    return {"security_group": svc.security_groups.create(ctx, obj, name)}


@routes.add("GET", "/v2.0/security-groups/{group_id}")
def show_group(req: Req, svc: NetworkCore) -> dict[str, Any]:
    group = svc.security_groups.show(req.ctx, req.params["group_id"])
    return {"security_group": listing.trim(group, req.query)}


@routes.add("PUT", "/v2.0/security-groups/{group_id}")
def update_group(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    obj = views.entity(req.body, "security_group")
    views.only(obj, SG_ATTRS, "security_group")
    return {"security_group": svc.security_groups.update(ctx, req.params["group_id"], obj)}


@routes.add("DELETE", "/v2.0/security-groups/{group_id}")
def delete_group(req: Req, svc: NetworkCore) -> None:
    svc.security_groups.delete(req.ctx, req.params["group_id"])
