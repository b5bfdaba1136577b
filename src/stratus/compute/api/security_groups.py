"""os-security-groups and os-security-group-rules: Nova's deprecated proxy to the network
API's security groups (microversions below 2.36, as in Nova; 404 from 2.36)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()
G = "/v2.1/os-security-groups"
R = "/v2.1/os-security-group-rules"
RULE_ATTRS = {"parent_group_id", "ip_protocol", "from_port", "to_port", "cidr", "group_id"}


def proxy_version(req: Req) -> None:
    """The proxy APIs end at 2.35 (Nova's 404 from 2.36 on)."""
    if views.mv(req) >= (2, 36):
        raise NotFound("The security-group proxy APIs are gone from microversion 2.36; use "
                       "the network API.")


def group_attrs(req: Req) -> tuple[str, str]:
    """``name`` and ``description`` of a create or update body (both required, 1 to 255
    characters, not only spaces)."""
    data = views.obj(req.body, "security_group")
    views.only(data, {"name", "description"}, "security_group")
    out = []
    for key in ("name", "description"):
        value = data.get(key)
        if not isinstance(value, str):
            raise BadRequest(f"Security group {key} is required and must be a string.")
        if not value.strip() or len(value) > 255:
            raise BadRequest(f"Security group {key} should not be empty or only spaces, "
                             "and has at most 255 characters.")
        out.append(value)
    return out[0], out[1]


@routes.add("GET", G)
def list_groups(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req)
    every = str(req.query.get("all_tenants", "")).lower() in ("1", "true", "yes")
    return {"security_groups": svc.security_groups.list(req.ctx, every)}


@routes.add("GET", G + "/{id}")
def show_group(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req)
    return {"security_group": svc.security_groups.show(req.ctx, req.params["id"])}


@routes.add("POST", G)
def create_group(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req)
    name, description = group_attrs(req)
    return {"security_group": svc.security_groups.create(req.ctx, name, description)}


@routes.add("PUT", G + "/{id}")
def update_group(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req)
    name, description = group_attrs(req)
    return {"security_group": svc.security_groups.update(req.ctx, req.params["id"], name,
                                                         description)}


@routes.add("DELETE", G + "/")
def delete_group_without_id(req: Req, svc: ComputeCore) -> None:
    proxy_version(req)
    raise NotFound("No security group id was given: use DELETE "
                   "/os-security-groups/{security_group_id}.")


@routes.add("DELETE", G + "/{id}", status=202)
def delete_group(req: Req, svc: ComputeCore) -> Response:
    proxy_version(req)
    svc.security_groups.delete(req.ctx, req.params["id"])
    return Response(status_code=202)


@routes.add("POST", R)
def create_rule(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req)
    data = views.obj(req.body, "security_group_rule")
    views.only(data, RULE_ATTRS, "security_group_rule")
    return {"security_group_rule": svc.security_groups.create_rule(req.ctx, data)}


@routes.add("DELETE", R + "/{id}", status=202)
def delete_rule(req: Req, svc: ComputeCore) -> Response:
    proxy_version(req)
    svc.security_groups.delete_rule(req.ctx, req.params["id"])
    return Response(status_code=202)
