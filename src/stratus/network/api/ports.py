"""``/v2.0/ports``: list, create (one or bulk), show, update, delete."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.network import listing, views
from stratus.network.core import NetworkCore
from stratus.network.ports import PORT_ATTRS

routes = Routes()


@routes.add("GET", "/v2.0/ports")
def list_ports(req: Req, svc: NetworkCore) -> dict[str, Any]:
    items = svc.ports.visible(req.ctx)
    return listing.apply(items, req.query, req.base_url, "/v2.0/ports", "ports")


@routes.add("POST", "/v2.0/ports", status=201)
def create_ports(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    svc.require_member(ctx, "create_port")
    objs, bulk = views.entities(req.body, "port", "ports")
    made = svc.ports.create(ctx, objs)
    return {"ports": made} if bulk else {"port": made[0]}


@routes.add("GET", "/v2.0/ports/{port_id}")
def show_port(req: Req, svc: NetworkCore) -> dict[str, Any]:
    port = svc.ports.show(req.ctx, req.params["port_id"])
    return {"port": listing.trim(port, req.query)}


@routes.add("PUT", "/v2.0/ports/{port_id}")
def update_port(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    obj = views.entity(req.body, "port")
    views.only(obj, PORT_ATTRS, "port")
    return {"port": svc.ports.update(ctx, req.params["port_id"], obj)}


@routes.add("DELETE", "/v2.0/ports/{port_id}")
def delete_port(req: Req, svc: NetworkCore) -> None:
    svc.ports.delete(req.ctx, req.params["port_id"])
