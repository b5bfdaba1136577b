"""``/v2.0/floatingips``: list, create, show, update (associate), delete."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.network import listing, views
from stratus.network.core import NetworkCore
from stratus.network.floatingips import FIP_ATTRS

routes = Routes()


@routes.add("GET", "/v2.0/floatingips")
def list_floatingips(req: Req, svc: NetworkCore) -> dict[str, Any]:
    items = svc.floatingips.visible(req.ctx)
    return listing.apply(items, req.query, req.base_url, "/v2.0/floatingips", "floatingips")


@routes.add("POST", "/v2.0/floatingips", status=201)
def create_floatingip(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    svc.require_member(ctx, "create_floatingip")
    obj = views.entity(req.body, "floatingip")
    views.only(obj, FIP_ATTRS, "floatingip")
    return {"floatingip": svc.floatingips.create(ctx, obj)}


@routes.add("GET", "/v2.0/floatingips/{floatingip_id}")
def show_floatingip(req: Req, svc: NetworkCore) -> dict[str, Any]:
    fip = svc.floatingips.show(req.ctx, req.params["floatingip_id"])
    return {"floatingip": listing.trim(fip, req.query)}


@routes.add("PUT", "/v2.0/floatingips/{floatingip_id}")
def update_floatingip(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    obj = views.entity(req.body, "floatingip")
    views.only(obj, FIP_ATTRS, "floatingip")
    return {"floatingip": svc.floatingips.update(ctx, req.params["floatingip_id"], obj)}


@routes.add("DELETE", "/v2.0/floatingips/{floatingip_id}")
def delete_floatingip(req: Req, svc: NetworkCore) -> None:
    svc.floatingips.delete(req.ctx, req.params["floatingip_id"])
