"""The security groups on a server's ports (os-security-groups of a server)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.compute.core import ComputeCore

routes = Routes()


@routes.add("GET", "/v2.1/servers/{id}/os-security-groups")
def list_server_security_groups(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"security_groups": svc.servers.server_security_groups(req.ctx, req.params["id"])}
