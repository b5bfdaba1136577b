"""os-floating-ips (list, show, allocate from a pool, release) and os-floating-ip-pools:
Nova's deprecated proxies to the network API's floating IPs (microversions below 2.36, as in
Nova; 404 from 2.36). Associating one with a server is a server action (addFloatingIp)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.auth import require_project_scope
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.network_proxy import NetworkProxy

routes = Routes()
F = "/v2.1/os-floating-ips"
P = "/v2.1/os-floating-ip-pools"


def proxy_version(req: Req, what: str) -> None:
    """The network proxy APIs end at 2.35 (Nova's 404 from 2.36 on)."""
    if views.mv(req) >= (2, 36):
        raise NotFound(f"The {what} proxy API is gone from microversion 2.36; use the "
                       "network API.")


@routes.add("GET", F)
def list_floating_ips(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req, "os-floating-ips")
    return {"floating_ips": NetworkProxy(svc).list_floating_ips(req.ctx)}


@routes.add("GET", F + "/{id}")
def show_floating_ip(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req, "os-floating-ips")
    return {"floating_ip": NetworkProxy(svc).show_floating_ip(req.ctx, req.params["id"])}


@routes.add("POST", F)
def create_floating_ip(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """``{"pool": name or ID}`` (optional when there is one external network)."""
    proxy_version(req, "os-floating-ips")
    svc.require_member(req.ctx, "os_compute_api:os-floating-ips:create")
    require_project_scope(req.ctx, "os_compute_api:os-floating-ips:create")
    if not isinstance(req.body, dict):
        raise BadRequest("Invalid input: the body is a JSON object, {\"pool\": name}.")
    pool = req.body.get("pool")
    if pool is not None and (not isinstance(pool, str) or not pool.strip()):
        raise BadRequest("Invalid input for pool: the name or ID of a floating IP pool "
                         "(an external network) is expected.")
    return {"floating_ip": NetworkProxy(svc).create_floating_ip(req.ctx, pool)}


@routes.add("DELETE", F + "/{id}", status=202)
def delete_floating_ip(req: Req, svc: ComputeCore) -> Response:
    proxy_version(req, "os-floating-ips")
    svc.require_member(req.ctx, "os_compute_api:os-floating-ips:delete")
    NetworkProxy(svc).delete_floating_ip(req.ctx, req.params["id"])
    return Response(status_code=202)


@routes.add("GET", P)
def list_pools(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req, "os-floating-ip-pools")
    return {"floating_ip_pools": NetworkProxy(svc).list_pools(req.ctx)}
