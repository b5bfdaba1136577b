"""Version discovery: ``GET /`` and the v2.0 resource index (no token needed)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.network.core import NetworkCore

routes = Routes()

RESOURCES = [("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("router", "routers"), ("floatingip", "floatingips"),
             ("security_group", "security-groups"),
             ("security_group_rule", "security-group-rules"), ("quota", "quotas")]


@routes.add("GET", "/")
def versions(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"href": f"{req.base_url}/v2.0/", "rel": "self"}],
    }]}


@routes.add("GET", "/v2.0")
@routes.add("GET", "/v2.0/")
def resources(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"resources": [
        {"name": n, "collection": c,
         "links": [{"href": f"{req.base_url}/v2.0/{c}", "rel": "self"}]}
        for n, c in RESOURCES
    ]}
