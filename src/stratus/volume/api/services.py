"""``os-availability-zone`` and, for admins, ``os-services`` (the scheduler is this API;
each storage host is a ``cinder-volume`` service, up while it heartbeats)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.timeutil import utcnow
from stratus.volume import views
from stratus.volume.api.common import P, scope
from stratus.volume.core import VolumeCore

routes = Routes()


@routes.add("GET", P + "/os-availability-zone")
def zones(req: Req, svc: VolumeCore) -> dict[str, Any]:
    scope(req, svc)
    up = any(svc.storage.is_up(h) for h in svc.storage.hosts())
    return {"availabilityZoneInfo": [{"zoneName": svc.settings.default_availability_zone,
                                      "zoneState": {"available": up}}]}


@routes.add("GET", P + "/os-services")
def services(req: Req, svc: VolumeCore) -> dict[str, Any]:
    ctx, _ = scope(req, svc)
    svc.require_admin(ctx, "volume_extension:services:index")
    zone = svc.settings.default_availability_zone
    out: list[dict[str, Any]] = [{
        "binary": "cinder-scheduler", "host": "stratus-volume", "zone": zone,
        "status": "enabled", "state": "up", "updated_at": views.ts(utcnow()),
        "disabled_reason": None}]
    for host in svc.storage.hosts():
        out.append({"binary": "cinder-volume",
                    "host": f"{host.host}@{svc.settings.backend_name}", "zone": zone,
                    "status": "enabled" if host.enabled else "disabled",
                    "state": "up" if svc.storage.is_up(host) else "down",
                    "updated_at": views.ts(host.heartbeat_at), "disabled_reason": None,
                    "replication_status": "disabled", "frozen": False, "active_backend_id": None})
    for key in ("binary", "host"):
        wanted = req.query.get(key)
        if wanted:
            out = [s for s in out if s[key] == wanted]
    return {"services": out}
