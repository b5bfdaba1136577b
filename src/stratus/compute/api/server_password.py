"""The encrypted password the guest posted (os-server-password): read, clear."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.compute.core import ComputeCore

routes = Routes()
P = "/v2.1/servers/{id}/os-server-password"


@routes.add("GET", P)
def show_password(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"password": svc.servers.password(req.ctx, req.params["id"]) or ""}


@routes.add("DELETE", P)
def clear_password(req: Req, svc: ComputeCore) -> None:
    svc.require_member(req.ctx, "os_compute_api:os-server-password:clear")
    svc.servers.clear_password(req.ctx, req.params["id"])
