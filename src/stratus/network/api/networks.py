"""``/v2.0/networks``: list, create (one or bulk), show, update, delete."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.network import listing, views
from stratus.network.core import NetworkCore
from stratus.network.networks import NETWORK_ATTRS

routes = Routes()


@routes.add("GET", "/v2.0/networks")
def list_networks(req: Req, svc: NetworkCore) -> dict[str, Any]:
    items = svc.networks.visible(req.ctx)
    return listing.apply(items, req.query, req.base_url, "/v2.0/networks", "networks")


@routes.add("POST", "/v2.0/networks", status=201)
def create_networks(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    svc.require_member(ctx, "create_network")
    objs, bulk = views.entities(req.body, "network", "networks")
    made = svc.networks.create(ctx, objs)
    return {"networks": made} if bulk else {"network": made[0]}


@routes.add("GET", "/v2.0/networks/{network_id}")
def show_network(req: Req, svc: NetworkCore) -> dict[str, Any]:
    net = svc.networks.show(req.ctx, req.params["network_id"])
    return {"network": listing.trim(net, req.query)}


@routes.add("PUT", "/v2.0/networks/{network_id}")
def update_network(req: Req, svc: NetworkCore) -> dict[str, Any]:
    ctx = req.ctx
    obj = views.entity(req.body, "network")
    views.only(obj, NETWORK_ATTRS, "network")
    return {"network": svc.networks.update(ctx, req.params["network_id"], obj)}


@routes.add("DELETE", "/v2.0/networks/{network_id}")
def delete_network(req: Req, svc: NetworkCore) -> None:
    svc.networks.delete(req.ctx, req.params["network_id"])
