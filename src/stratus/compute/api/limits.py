"""Absolute limits of a project (its quota set with usage, in Nova's limits shape)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()


@routes.add("GET", "/v2.1/limits")
def show_limits(req: Req, svc: ComputeCore) -> dict[str, Any]:
    project = req.query.get("tenant_id") or req.ctx.project_id or ""
    if project != req.ctx.project_id:
        svc.require_admin(req.ctx, "os_compute_api:limits:other_project")
    q = svc.quotas.quota_set(project, detail=True)
    absolute = {
        "maxTotalInstances": q["instances"]["limit"],
        "maxTotalCores": q["cores"]["limit"], "maxTotalRAMSize": q["ram"]["limit"],
        "maxServerMeta": q["metadata_items"]["limit"],
        "maxImageMeta": q["metadata_items"]["limit"],
        "maxPersonality": 5, "maxPersonalitySize": 10240,
        "maxTotalKeypairs": q["key_pairs"]["limit"],
        "maxServerGroups": q["server_groups"]["limit"],
        "maxServerGroupMembers": q["server_group_members"]["limit"],
        "totalInstancesUsed": q["instances"]["in_use"],
        "totalCoresUsed": q["cores"]["in_use"], "totalRAMUsed": q["ram"]["in_use"],
        "totalServerGroupsUsed": q["server_groups"]["in_use"]}
    v = views.mv(req)
    if v >= (2, 39):  # image metadata is the image API's since 2.39
        del absolute["maxImageMeta"]
    if v >= (2, 57):  # file injection (personality) is gone from 2.57
        del absolute["maxPersonality"], absolute["maxPersonalitySize"]
    if v < (2, 36):  # the network API's limits, shown by Nova before 2.36
        absolute.update({"maxSecurityGroups": 10, "maxSecurityGroupRules": 20,
                         "maxTotalFloatingIps": 10, "totalFloatingIpsUsed": 0,
                         "totalSecurityGroupsUsed": 0})
    return {"limits": {"rate": [], "absolute": absolute}}
