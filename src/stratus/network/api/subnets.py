"""``/v2.0/subnets``: list, create (one or bulk), show, update, delete."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.network import listing, views
from stratus.network.core import NetworkCore
from stratus.network.subnets import SUBNET_ATTRS

routes = Routes()


@routes.add("GET", "/v2.0/subnets")
def list_subnets(req: Req, svc: NetworkCore) -> dict[str, Any]:
    items = svc.subnets.visible(req.ctx)
    return listing.apply(items, req.query, req.base_url, "/v2.0/subnets", "subnets")


@routes.add("POST", "/v2.0/subnets", status=201)
def create_subnets(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    svc.require_member(ctx, "create_subnet")
    objs, bulk = views.entities(req.body, "subnet", "subnets")
    made = svc.subnets.create(ctx, objs)
    return {"subnets": made} if bulk else {"subnet": made[0]}


@routes.add("GET", "/v2.0/subnets/{subnet_id}")
def show_subnet(req: Req, svc: NetworkCore) -> dict[str, Any]:
    sub = svc.subnets.show(req.ctx, req.params["subnet_id"])
    return {"subnet": listing.trim(sub, req.query)}


@routes.add("PUT", "/v2.0/subnets/{subnet_id}")
def update_subnet(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    obj = views.entity(req.body, "subnet")
    views.only(obj, SUBNET_ATTRS, "subnet")
    return {"subnet": svc.subnets.update(ctx, req.params["subnet_id"], obj)}


@routes.add("DELETE", "/v2.0/subnets/{subnet_id}")
def delete_subnet(req: Req, svc: NetworkCore) -> None:
    svc.subnets.delete(req.ctx, req.params["subnet_id"])
