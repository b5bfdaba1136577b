"""``/v2.0/subnetpools``: list, create, show, update, delete (``subnetpools.py``)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.network import listing, views
from stratus.network.core import NetworkCore

routes = Routes()


@routes.add("GET", "/v2.0/subnetpools")
def list_subnetpools(req: Req, svc: NetworkCore) -> dict[str, Any]:
    items = svc.subnetpools.visible(req.ctx)
    return listing.apply(items, req.query, req.base_url, "/v2.0/subnetpools", "subnetpools")


@routes.add("POST", "/v2.0/subnetpools", status=201)
def create_subnetpool(req: Req, svc: NetworkCore) -> dict[str, Any]:
    obj = views.entity(req.body, "subnetpool")
    return {"subnetpool": svc.subnetpools.create(req.ctx, obj)}


@routes.add("GET", "/v2.0/subnetpools/{subnetpool_id}")
def show_subnetpool(req: Req, svc: NetworkCore) -> dict[str, Any]:
    pool = svc.subnetpools.show(req.ctx, req.params["subnetpool_id"])
    return {"subnetpool": listing.trim(pool, req.query)}


@routes.add("PUT", "/v2.0/subnetpools/{subnetpool_id}")
def update_subnetpool(req: Req, svc: NetworkCore) -> dict[str, Any]:
    obj = views.entity(req.body, "subnetpool")
    return {"subnetpool": svc.subnetpools.update(req.ctx, req.params["subnetpool_id"], obj)}


@routes.add("DELETE", "/v2.0/subnetpools/{subnetpool_id}")
def delete_subnetpool(req: Req, svc: NetworkCore) -> None:
    svc.subnetpools.delete(req.ctx, req.params["subnetpool_id"])
