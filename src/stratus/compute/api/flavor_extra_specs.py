"""Flavor extra specs: read by anyone who sees the flavor, changed by admins."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.extra_specs import problem

routes = Routes()
P = "/v2.1/flavors/{id}/os-extra_specs"
POLICY = "os_compute_api:os-flavor-extra-specs"


def check_specs(value: Any, version: tuple[int, int] = (2, 1)) -> dict[str, str]:
    """Extra specs of a request body: keys and values of 1-255 characters (numbers become
    strings); from 2.86 the keys of Nova's namespaces are validated (compute/extra_specs.py)."""
    if not isinstance(value, dict):
        raise BadRequest("Invalid input: 'extra_specs' must be an object.")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise BadRequest(f"Invalid extra spec value for {k!r}: a string is expected.")
        if not 1 <= len(k) <= 255 or len(str(v)) > 255:
            raise BadRequest("Extra spec keys and values are 1-255 characters.")
        out[k] = str(v)
        why = problem(k, out[k]) if version >= (2, 86) else None
        if why:
            raise BadRequest(why)
    return out


@routes.add("GET", P)
def list_extra_specs(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"extra_specs": svc.flavors.extra_specs(req.ctx, req.params["id"])}


@routes.add("POST", P)
def set_extra_specs(req: Req, svc: ComputeCore) -> dict[str, Any]:
    new = check_specs(req.body.get("extra_specs") if isinstance(req.body, dict) else None,
                      views.mv(req))
    svc.require_admin(req.ctx, POLICY)
    svc.flavors.merge_extra_specs(req.ctx, req.params["id"], new)
    return {"extra_specs": new}


@routes.add("GET", P + "/{key}")
def show_extra_spec(req: Req, svc: ComputeCore) -> dict[str, Any]:
    cur = svc.flavors.extra_specs(req.ctx, req.params["id"])
    if req.params["key"] not in cur:
        raise NotFound(f"Flavor {req.params['id']} has no extra specs with key "
                       f"{req.params['key']}.")
    return {req.params["key"]: cur[req.params["key"]]}


@routes.add("PUT", P + "/{key}")
def put_extra_spec(req: Req, svc: ComputeCore) -> dict[str, Any]:
    new = check_specs(req.body, views.mv(req))
    if list(new) != [req.params["key"]]:
        raise BadRequest("Request body and URI mismatch")
    svc.require_admin(req.ctx, POLICY)
    svc.flavors.merge_extra_specs(req.ctx, req.params["id"], new)
    return new


@routes.add("DELETE", P + "/{key}")
def delete_extra_spec(req: Req, svc: ComputeCore) -> Response:
    """Nova answers an unset with 200 and no body (not 204), as Tempest's schema says."""
    svc.require_admin(req.ctx, POLICY)
    svc.flavors.delete_extra_spec(req.ctx, req.params["id"], req.params["key"])
    return Response(status_code=200)
