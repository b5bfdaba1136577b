"""``/v2.0/quotas``: per-project limits (admin sets them; a project reads its own)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Forbidden
from stratus.network import views
from stratus.network.core import QUOTA_RESOURCES, NetworkCore

routes = Routes()


def quota_project(req: Req, svc: NetworkCore, admin_only: bool = False) -> str:
    """The project of the path, once the caller may read (or, ``admin_only``, set) it."""
    ctx = req.ctx
    project = req.params["project_id"]
    if admin_only and not ctx.is_admin:
        raise Forbidden("rule:update_quota is disallowed by policy")
    if not svc.owns(ctx, project):
        raise Forbidden("rule:get_quota is disallowed by policy")
    if len(project) > 64 or "\x00" in project:
        raise BadRequest(f"{project!r} is not a valid project ID.")
    return project


@routes.add("GET", "/v2.0/quotas")
def list_quotas(req: Req, svc: NetworkCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "get_quota")
    return {"quotas": svc.quotas.every_project()}


@routes.add("GET", "/v2.0/quotas/{project_id}")
@routes.add("GET", "/v2.0/quotas/{project_id}.json")
def show_quota(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"quota": svc.quotas.limits(quota_project(req, svc))}


@routes.add("GET", "/v2.0/quotas/{project_id}/default")
def default_quota(req: Req, svc: NetworkCore) -> dict[str, Any]:
    quota_project(req, svc)
    return {"quota": svc.quotas.defaults()}


@routes.add("GET", "/v2.0/quotas/{project_id}/details")
@routes.add("GET", "/v2.0/quotas/{project_id}/details.json")
def quota_details(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"quota": svc.quotas.details(quota_project(req, svc))}


@routes.add("PUT", "/v2.0/quotas/{project_id}")
def update_quota(req: Req, svc: NetworkCore) -> dict[str, Any]:
    project = quota_project(req, svc, admin_only=True)
    obj = views.entity(req.body, "quota")
    views.only(obj, set(QUOTA_RESOURCES), "quota")
    values = {r: views.integer(obj, r, -1, 2**31 - 1) for r in obj}
    return {"quota": svc.quotas.update(project, values)}


@routes.add("DELETE", "/v2.0/quotas/{project_id}")
def reset_quota(req: Req, svc: NetworkCore) -> None:
    svc.quotas.reset(quota_project(req, svc, admin_only=True))
