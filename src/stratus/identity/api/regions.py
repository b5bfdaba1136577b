"""Identity API: /v3/regions."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.common.timeutil import new_hex_id
from stratus.identity import views
from stratus.identity.api.access import admin
from stratus.identity.core import Identity

routes = Routes()


@routes.add("GET", "/v3/regions")
def list_regions(req: Req, svc: Identity) -> dict[str, Any]:
    req.ctx  # any valid token may read the regions  # noqa: B018
    filters = {k: req.query[k] for k in ("parent_region_id",) if k in req.query}
    items = [views.region(req.base_url, r) for r in svc.regions.find(filters)]
    return views.collection(req.base_url, "/v3/regions", "regions", items)


@routes.add("POST", "/v3/regions", status=201)
def create_region(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_region")
    obj = views.entity(req.body, "region")
    region_id = views.text(obj, "id") or new_hex_id()
    parent = views.text(obj, "parent_region_id")
    return {"region": views.region(req.base_url, svc.regions.create(region_id, parent, obj))}


@routes.add("PUT", "/v3/regions/{region_id}", status=201)
def create_region_with_id(req: Req, svc: Identity) -> dict[str, Any]:
    """Create a region with the id in the path (Keystone's PUT form)."""
    admin(req, "create_region")
    obj = views.entity(req.body, "region")
    region_id = req.params["region_id"]
    if views.text(obj, "id") not in (None, region_id):
        raise BadRequest("The region id in the body differs from the one in the path.")
    parent = views.text(obj, "parent_region_id")
    return {"region": views.region(req.base_url, svc.regions.create(region_id, parent, obj))}


@routes.add("GET", "/v3/regions/{region_id}")
def show_region(req: Req, svc: Identity) -> dict[str, Any]:
    req.ctx  # noqa: B018
    return {"region": views.region(req.base_url, svc.regions.show(req.params["region_id"]))}


@routes.add("PATCH", "/v3/regions/{region_id}")
def update_region(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_region")
    obj = views.entity(req.body, "region")
    region = svc.regions.update(req.params["region_id"], obj)
    return {"region": views.region(req.base_url, region)}


@routes.add("DELETE", "/v3/regions/{region_id}")
def delete_region(req: Req, svc: Identity) -> None:
    admin(req, "delete_region")
    svc.regions.delete(req.params["region_id"])
