"""Flavor access (admin): which projects may use a private flavor."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()


@routes.add("GET", "/v2.1/flavors/{id}/os-flavor-access")
def list_flavor_access(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-flavor-access")
    flavor_id, projects = svc.flavors.access(req.ctx, req.params["id"])
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in projects]}


@routes.add("POST", "/v2.1/flavors/{id}/action")
def flavor_action(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """addTenantAccess / removeTenantAccess; answers with the new access list."""
    svc.require_admin(req.ctx, "os_compute_api:os-flavor-access")
    if not isinstance(req.body, dict) or len(req.body) != 1:
        raise BadRequest("Invalid input: one of addTenantAccess, removeTenantAccess.")
    name, arg = next(iter(req.body.items()))
    if name not in ("addTenantAccess", "removeTenantAccess") or not isinstance(arg, dict):
        raise BadRequest(f"Invalid action {name}; use addTenantAccess or "
                         "removeTenantAccess with {\"tenant\": project_id}.")
    tenant = views.text(arg, "tenant", required=True)
    assert tenant is not None
    svc.flavors.change_access(req.ctx, req.params["id"], tenant, add=name == "addTenantAccess")
    return list_flavor_access(req, svc)
