"""Nova's volume proxies (below 2.36; 404 from 2.36, as Nova): ``/os-volumes`` (list,
detail, create, show, delete) and ``/os-snapshots`` (the same), over the volume API with
the caller's token (compute/volume_proxy.py)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.volume_proxy import VolumeProxy

routes = Routes()
V = "/v2.1/os-volumes"
S = "/v2.1/os-snapshots"


def proxy(req: Req, svc: ComputeCore, what: str, write: str | None = None) -> VolumeProxy:
    if views.mv(req) >= (2, 36):
        raise NotFound(f"The {what} proxy API is gone from microversion 2.36; use the "
                       "volume API.")
    if write:
        svc.require_member(req.ctx, f"os_compute_api:os-volumes:{write}")
    return VolumeProxy(svc)


@routes.add("GET", V)
def list_volumes(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"volumes": proxy(req, svc, "os-volumes").list_volumes(req.ctx, req.query)}


@routes.add("GET", V + "/detail")
def list_volumes_detail(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"volumes": proxy(req, svc, "os-volumes").list_volumes(req.ctx, req.query)}


@routes.add("POST", V)
def create_volume(req: Req, svc: ComputeCore) -> JSONResponse:
    body = views.obj(req.body, "volume")
    made = proxy(req, svc, "os-volumes", "create").create_volume(req.ctx, body)
    return JSONResponse({"volume": made},
                        headers={"Location": f"{views.root(req)}/v2.1/os-volumes/{made['id']}"})


@routes.add("GET", V + "/{id}")
def show_volume(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"volume": proxy(req, svc, "os-volumes").show_volume(req.ctx, req.params["id"])}


@routes.add("DELETE", V + "/{id}", status=202)
def delete_volume(req: Req, svc: ComputeCore) -> Response:
    proxy(req, svc, "os-volumes", "delete").delete_volume(req.ctx, req.params["id"])
    return Response(status_code=202)


@routes.add("GET", S)
def list_snapshots(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"snapshots": proxy(req, svc, "os-snapshots").list_snapshots(req.ctx, req.query)}


@routes.add("GET", S + "/detail")
def list_snapshots_detail(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"snapshots": proxy(req, svc, "os-snapshots").list_snapshots(req.ctx, req.query)}


@routes.add("POST", S)
def create_snapshot(req: Req, svc: ComputeCore) -> dict[str, Any]:
    body = views.obj(req.body, "snapshot")
    return {"snapshot": proxy(req, svc, "os-snapshots", "snapshots:create").create_snapshot(
        req.ctx, body)}


@routes.add("GET", S + "/{id}")
def show_snapshot(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"snapshot": proxy(req, svc, "os-snapshots").show_snapshot(
        req.ctx, req.params["id"])}


@routes.add("DELETE", S + "/{id}", status=202)
def delete_snapshot(req: Req, svc: ComputeCore) -> Response:
    proxy(req, svc, "os-snapshots", "snapshots:delete").delete_snapshot(
        req.ctx, req.params["id"])
    return Response(status_code=202)


@routes.add(("GET", "DELETE"), V + "/")
def no_volume_id(req: Req, svc: ComputeCore) -> None:
    """``/os-volumes/`` with no id: Nova's 404 (not a redirect to the listing, which a
    client following it would take for the volume it asked for)."""
    proxy(req, svc, "os-volumes")
    raise NotFound("A volume id is required: /os-volumes/{id}.")


@routes.add(("GET", "DELETE"), S + "/")
def no_snapshot_id(req: Req, svc: ComputeCore) -> None:
    """``/os-snapshots/`` with no id: Nova's 404."""
    proxy(req, svc, "os-snapshots")
    raise NotFound("A snapshot id is required: /os-snapshots/{id}.")
