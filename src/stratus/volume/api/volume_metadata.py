"""``/v3/{project_id}/volumes/{volume_id}/metadata``: read, merge (POST), replace (PUT),
one item (GET/PUT/DELETE ``.../metadata/{key}``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.volume.api.common import P, metadata, scope
from stratus.volume.core import VolumeCore

routes = Routes()
M = P + "/volumes/{volume_id}/metadata"


@routes.add("GET", M)
def show_metadata(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    return {"metadata": svc.volumes.metadata(ctx, req.params["volume_id"])}


@routes.add(("POST", "PUT"), M)
def set_metadata(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:update_volume_metadata")
    if not isinstance(req.body, dict) or not isinstance(req.body.get("metadata"), dict):
        raise BadRequest("Malformed request body: a 'metadata' object is expected.")
    out = svc.volumes.set_metadata(ctx, req.params["volume_id"], metadata(req.body),
                                   replace=req.request.method == "PUT")
    return {"metadata": out}


@routes.add("GET", M + "/{key}")
def show_item(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    meta = svc.volumes.metadata(ctx, req.params["volume_id"])
    key = req.params["key"]
    if key not in meta:
        raise NotFound(f"Volume {req.params['volume_id']} has no metadata with key {key}.")
    return {"meta": {key: meta[key]}}


@routes.add("PUT", M + "/{key}")
def set_item(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:update_volume_metadata")
    key = req.params["key"]
    if not isinstance(req.body, dict) or not isinstance(req.body.get("meta"), dict):
        raise BadRequest("Malformed request body: a 'meta' object is expected.")
    items = metadata(req.body, "meta")
    if list(items) != [key]:
        raise BadRequest("Request body and URI mismatch: 'meta' must hold exactly the key "
                         "of the URL.")
    svc.volumes.set_metadata(ctx, req.params["volume_id"], items, replace=False)
    return {"meta": items}


@routes.add("DELETE", M + "/{key}")
def delete_item(req: Req, svc: VolumeCore) -> Response:
    ctx, _ = scope(req, svc)
    svc.require_member(ctx, "volume:delete_volume_metadata")
    svc.volumes.delete_metadata(ctx, req.params["volume_id"], req.params["key"])
    return Response(status_code=200)
