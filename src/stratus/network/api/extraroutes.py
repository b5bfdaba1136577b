"""``PUT /v2.0/routers/{id}/add_extraroutes`` and ``.../remove_extraroutes``
(``extraroute-atomic``, ``extraroutes.py``)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.network.core import NetworkCore
from stratus.network.extraroutes import change_routes

routes = Routes()


@routes.add("PUT", "/v2.0/routers/{router_id}/add_extraroutes")
def add_extraroutes(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"router": change_routes(svc, req.ctx, req.params["router_id"], req.body, add=True)}


@routes.add("PUT", "/v2.0/routers/{router_id}/remove_extraroutes")
def remove_extraroutes(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"router": change_routes(svc, req.ctx, req.params["router_id"], req.body,
                                    add=False)}
