"""Identity API: /v3/roles, implied roles and /v3/role_inferences."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.identity import views
from stratus.identity.api.access import admin
from stratus.identity.core import Identity
from stratus.identity.rows import GLOBAL

routes = Routes()


@routes.add("GET", "/v3/roles")
def list_roles(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_roles")
    roles = svc.roles.find(req.query.get("domain_id", GLOBAL), req.query.get("name"))
    items = [views.role(req.base_url, r) for r in roles]
    return views.collection(req.base_url, "/v3/roles", "roles", items)


@routes.add("POST", "/v3/roles", status=201)
def create_role(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_role")
    obj = views.entity(req.body, "role")
    name = views.text(obj, "name", required=True)
    domain_id = views.text(obj, "domain_id", max_len=64) or GLOBAL
    return {"role": views.role(req.base_url, svc.roles.create(name, domain_id, obj))}


@routes.add("GET", "/v3/roles/{role_id}")
def show_role(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "get_role")
    return {"role": views.role(req.base_url, svc.roles.show(req.params["role_id"]))}


@routes.add("PATCH", "/v3/roles/{role_id}")
def update_role(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_role")
    obj = views.entity(req.body, "role")
    return {"role": views.role(req.base_url, svc.roles.update(req.params["role_id"], obj))}


@routes.add("DELETE", "/v3/roles/{role_id}")
def delete_role(req: Req, svc: Identity) -> None:
    admin(req, "delete_role")
    svc.roles.delete(req.params["role_id"])


@routes.add("PUT", "/v3/roles/{prior_id}/implies/{implied_id}", status=201, body=False)
def create_implied(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_implied_role")
    prior, implied = svc.roles.imply(req.params["prior_id"], req.params["implied_id"])
    return {"role_inference": views.role_inference(req.base_url, prior, implied)}


@routes.add("GET", "/v3/roles/{prior_id}/implies")
def list_implied(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_implied_roles")
    prior, implied = svc.roles.implied_by(req.params["prior_id"])
    return {"role_inference": views.role_inference(req.base_url, prior, implied)}


def _one_inference(req: Req, svc: Identity) -> tuple[Any, Any]:
    prior, implied = svc.roles.implied_by(req.params["prior_id"])
    match = next((r for r in implied if r.id == req.params["implied_id"]), None)
    if match is None:
        raise NotFound(f"Role {prior.id} does not imply {req.params['implied_id']}.")
    return prior, match


@routes.add("HEAD", "/v3/roles/{prior_id}/implies/{implied_id}", status=204, body=False)
def check_implied(req: Req, svc: Identity) -> None:
    admin(req, "check_implied_role")
    _one_inference(req, svc)


@routes.add("GET", "/v3/roles/{prior_id}/implies/{implied_id}")
def show_implied(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "get_implied_role")
    prior, implied = _one_inference(req, svc)
    return {"role_inference": views.role_inference(req.base_url, prior, implied)}


@routes.add("DELETE", "/v3/roles/{prior_id}/implies/{implied_id}")
def delete_implied(req: Req, svc: Identity) -> None:
    admin(req, "delete_implied_role")
    svc.roles.unimply(req.params["prior_id"], req.params["implied_id"])


@routes.add("GET", "/v3/role_inferences")
def role_inferences(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_role_inference_rules")
    items = [views.role_inference(req.base_url, p, imp) for p, imp in svc.roles.inferences()]
    return {"role_inferences": items, "links": {"self": f"{req.base_url}/v3/role_inferences"}}
