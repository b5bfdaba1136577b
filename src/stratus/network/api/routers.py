"""``/v2.0/routers``: list, create, show, update, delete, add and remove interfaces."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.network import listing, views
from stratus.network.core import NetworkCore
from stratus.network.routers import ROUTER_ATTRS

routes = Routes()


def interface_target(body: Any) -> tuple[str | None, str | None]:
    """(subnet_id, port_id) of an add/remove interface body: exactly one of them."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object with 'subnet_id' or "
                         "'port_id'.")
    subnet_id = views.id_value(body, "subnet_id")
    port_id = views.id_value(body, "port_id")
    if bool(subnet_id) == bool(port_id):
        raise BadRequest("Bad router request: Either subnet_id or port_id must be "
                         "specified (not both).")
    return subnet_id, port_id


@routes.add("GET", "/v2.0/routers")
def list_routers(req: Req, svc: NetworkCore) -> dict[str, Any]:
    items = svc.routers.visible(req.ctx)
    return listing.apply(items, req.query, req.base_url, "/v2.0/routers", "routers")


@routes.add("POST", "/v2.0/routers", status=201)
def create_router(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    svc.require_member(ctx, "create_router")
    obj = views.entity(req.body, "router")
    views.only(obj, ROUTER_ATTRS, "router")
    for key in ("distributed", "ha"):
        if views.boolean(obj, key, False):
            raise BadRequest(f"Invalid input for {key}: only false is supported.")
    if obj.get("routes"):
        raise BadRequest("Invalid input for routes: a new router has no interfaces to "
                         "route through; set routes after adding interfaces.")
    return {"router": svc.routers.create(ctx, obj)}


@routes.add("GET", "/v2.0/routers/{router_id}")
def show_router(req: Req, svc: NetworkCore) -> dict[str, Any]:
    r = svc.routers.show(req.ctx, req.params["router_id"])
    return {"router": listing.trim(r, req.query)}


@routes.add("PUT", "/v2.0/routers/{router_id}")
def update_router(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    obj = views.entity(req.body, "router")
    views.only(obj, ROUTER_ATTRS, "router")
    return {"router": svc.routers.update(ctx, req.params["router_id"], obj)}


@routes.add("DELETE", "/v2.0/routers/{router_id}")
def delete_router(req: Req, svc: NetworkCore) -> None:
    svc.routers.delete(req.ctx, req.params["router_id"])


@routes.add("PUT", "/v2.0/routers/{router_id}/add_router_interface")
def add_interface(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    subnet_id, port_id = interface_target(req.body)
    return svc.routers.add_interface(ctx, req.params["router_id"], subnet_id, port_id)


@routes.add("PUT", "/v2.0/routers/{router_id}/remove_router_interface")
def remove_interface(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    subnet_id, port_id = interface_target(req.body)
    return svc.routers.remove_interface(ctx, req.params["router_id"], subnet_id, port_id)
