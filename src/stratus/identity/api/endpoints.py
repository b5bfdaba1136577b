"""Identity API: /v3/endpoints (the catalog's endpoints)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.identity import views
from stratus.identity.api.access import admin
from stratus.identity.core import Identity

routes = Routes()


@routes.add("GET", "/v3/endpoints")
def list_endpoints(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_endpoints")
    filters = {k: req.query[k] for k in ("interface", "service_id", "region_id") if k in req.query}
    items = [views.endpoint(req.base_url, e) for e in svc.endpoints.find(filters)]
    return views.collection(req.base_url, "/v3/endpoints", "endpoints", items)


@routes.add("POST", "/v3/endpoints", status=201)
def create_endpoint(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_endpoint")
    obj = views.entity(req.body, "endpoint")
    service_id = views.text(obj, "service_id", required=True, max_len=64)
    interface = views.interface_value(obj, required=True)
    url = views.url_value(obj, "url")
    region_id = views.text(obj, "region_id") or views.text(obj, "region")
    ep = svc.endpoints.create(service_id, interface, url, region_id, obj)
    return {"endpoint": views.endpoint(req.base_url, ep)}


@routes.add("GET", "/v3/endpoints/{endpoint_id}")
def show_endpoint(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "get_endpoint")
    ep = svc.endpoints.show(req.params["endpoint_id"])
    return {"endpoint": views.endpoint(req.base_url, ep)}


@routes.add("PATCH", "/v3/endpoints/{endpoint_id}")
def update_endpoint(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_endpoint")
    obj = views.entity(req.body, "endpoint")
    ep = svc.endpoints.update(req.params["endpoint_id"], obj)
    return {"endpoint": views.endpoint(req.base_url, ep)}


@routes.add("DELETE", "/v3/endpoints/{endpoint_id}")
def delete_endpoint(req: Req, svc: Identity) -> None:
    admin(req, "delete_endpoint")
    svc.endpoints.delete(req.params["endpoint_id"])
