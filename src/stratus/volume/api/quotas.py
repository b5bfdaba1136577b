"""``os-quota-sets`` (show with ``usage``, defaults; update and reset for admins) and
``/limits``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Forbidden
from stratus.volume.api.common import P, scope
from stratus.volume.core import QUOTA_RESOURCES, VolumeCore
from stratus.volume.views import FIELDS

routes = Routes()
FIXED = {"backups": 10, "backup_gigabytes": 1000, "per_volume_gigabytes": -1, "groups": 10}
MAX_QUOTA = 2**31 - 1


def _target(req: Req, svc: VolumeCore) -> str:
    ctx, _ = scope(req, svc)
    target = req.params["target"]
    if not ctx.is_admin and target != ctx.project_id:
        raise Forbidden("Policy doesn't allow volume_extension:quotas:show to be performed "
                        "on another project.")
    return target


@routes.add("GET", P + "/os-quota-sets/{target}/defaults")
def defaults(req: Req, svc: VolumeCore) -> dict[str, Any]:
    target = _target(req, svc)
    return {"quota_set": {"id": target, **svc.settings.quotas, **FIXED}}


@routes.add("GET", P + "/os-quota-sets/{target}")
def show(req: Req, svc: VolumeCore) -> dict[str, Any]:
    target = _target(req, svc)
    limits, used = svc.quotas.show(target)
    usage = FIELDS.query_flag(FIELDS.query_one(req.query, "usage"), "usage")
    if usage:
        body: dict[str, Any] = {r: {"limit": limits[r], "in_use": used[r], "reserved": 0,
                                    "allocated": 0} for r in QUOTA_RESOURCES}
        body.update({r: {"limit": v, "in_use": 0, "reserved": 0, "allocated": 0}
                     for r, v in FIXED.items()})
    else:
        body = {**limits, **FIXED}
    return {"quota_set": {"id": target, **body}}


@routes.add("PUT", P + "/os-quota-sets/{target}")
def update(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:quotas:update")
    obj = FIELDS.body(req.body, "quota_set")
    values: dict[str, int] = {}
    for key in obj:
        if key in QUOTA_RESOURCES:
            value = FIELDS.integer(obj, key, -1, MAX_QUOTA, required=True)
            assert value is not None
            values[key] = value
        elif key not in (*FIXED, "tenant_id", "id"):
            raise BadRequest(f"Bad key(s) in quota set: {key}. Allowed: "
                             f"{', '.join(QUOTA_RESOURCES)}.")
    limits = svc.quotas.update(req.params["target"], values)
    return {"quota_set": {**limits, **FIXED}}


@routes.add("DELETE", P + "/os-quota-sets/{target}")
def reset(req: Req, svc: VolumeCore) -> Response:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:quotas:delete")
    svc.quotas.reset(req.params["target"])
    return Response(status_code=200)


@routes.add("GET", P + "/limits")
def limits(req: Req, svc: VolumeCore) -> dict[str, Any]:
    _, project = scope(req, svc)
    lim, used = svc.quotas.show(project)
    return {"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": lim["volumes"], "maxTotalSnapshots": lim["snapshots"],
        "maxTotalVolumeGigabytes": lim["gigabytes"], "maxTotalBackups": FIXED["backups"],
        "maxTotalBackupGigabytes": FIXED["backup_gigabytes"],
        "totalVolumesUsed": used["volumes"], "totalSnapshotsUsed": used["snapshots"],
        "totalGigabytesUsed": used["gigabytes"], "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0}}}
