"""Quota sets: a project's limits (and usage with ``/detail``), the defaults, and the
admin's overrides."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.quotas import FIXED_LIMITS, QUOTA_RESOURCES

routes = Routes()
P = "/v2.1/os-quota-sets/{project}"
# The network quotas Nova showed (and stored, unenforced) before 2.36; the network API owns
# them. Shown with Nova's defaults below 2.36, accepted and ignored there in an update.
NETWORK_QUOTAS = {"floating_ips": 10, "fixed_ips": -1, "security_groups": 10,
                  "security_group_rules": 20}


def shaped(req: Req, quota_set: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    """The quota set as Nova shows it at the request's microversion."""
    if views.mv(req) < (2, 36):
        for res, val in NETWORK_QUOTAS.items():
            quota_set[res] = {"limit": val, "in_use": 0, "reserved": 0} if detail else val
    if views.mv(req) >= (2, 57):  # file injection (personality) is gone from 2.57
        for res in FIXED_LIMITS:
            quota_set.pop(res, None)
    return {"quota_set": quota_set}


def quota_project(req: Req, svc: ComputeCore) -> str:
    """The project of the URL; another than the caller's needs an admin."""
    project = req.params["project"]
    if project != req.ctx.project_id:
        svc.require_admin(req.ctx, "os_compute_api:os-quota-sets:show")
    return project


@routes.add("GET", P)
def show_quota_set(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return shaped(req, svc.quotas.quota_set(quota_project(req, svc)))


@routes.add("GET", P + "/detail")
def show_quota_set_detail(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return shaped(req, svc.quotas.quota_set(quota_project(req, svc), detail=True), True)


@routes.add("GET", P + "/defaults")
def show_quota_defaults(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return shaped(req, svc.quotas.defaults(req.params["project"]))


@routes.add("PUT", P)
def update_quota_set(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-quota-sets:update")
    data = views.obj(req.body, "quota_set")
    old = set(NETWORK_QUOTAS) if views.mv(req) < (2, 36) else set()
    fixed = set(FIXED_LIMITS) if views.mv(req) < (2, 57) else set()
    views.only(data, {*QUOTA_RESOURCES, "force", *fixed, *old}, "quota_set")
    values = {r: views.integer(data, r, minimum=-1) for r in QUOTA_RESOURCES if r in data}
    return shaped(req, svc.quotas.update(req.params["project"], values))


@routes.add("DELETE", P, status=202)
def reset_quota_set(req: Req, svc: ComputeCore) -> Response:
    svc.require_admin(req.ctx, "os_compute_api:os-quota-sets:delete")
    svc.quotas.reset(req.params["project"])
    return Response(status_code=202)
