"""Identity API: /v3/services (the catalog's services)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.identity import views
from stratus.identity.api.access import admin
from stratus.identity.core import Identity

routes = Routes()


@routes.add("GET", "/v3/services")
def list_services(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_services")
    filters = {k: req.query[k] for k in ("type", "name") if k in req.query}
    items = [views.service(req.base_url, x) for x in svc.services.find(filters)]
    return views.collection(req.base_url, "/v3/services", "services", items)


@routes.add("POST", "/v3/services", status=201)
def create_service(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_service")
    obj = views.entity(req.body, "service")
    created = svc.services.create(
        views.text(obj, "type", required=True),
        views.text(obj, "name", default="") or "",
        views.text(obj, "description", allow_empty=True, max_len=65535, default="") or "",
        views.boolean(obj, "enabled", True),
    )
    return {"service": views.service(req.base_url, created)}


@routes.add("GET", "/v3/services/{service_id}")
def show_service(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "get_service")
    return {"service": views.service(req.base_url, svc.services.show(req.params["service_id"]))}


@routes.add("PATCH", "/v3/services/{service_id}")
def update_service(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_service")
    obj = views.entity(req.body, "service")
    updated = svc.services.update(req.params["service_id"], obj)
    return {"service": views.service(req.base_url, updated)}


@routes.add("DELETE", "/v3/services/{service_id}")
def delete_service(req: Req, svc: Identity) -> None:
    admin(req, "delete_service")
    svc.services.delete(req.params["service_id"])
