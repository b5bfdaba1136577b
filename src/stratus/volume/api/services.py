"""``os-availability-zone``, ``extensions`` and, for admins, ``os-services`` (the
scheduler is this API; each storage host is a ``cinder-volume`` service, up while it
heartbeats)."""

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


EXTENSIONS = (
    ("os-admin-actions", "AdminActions", "Enable admin actions."),
    ("os-availability-zone", "AvailabilityZones", "Describe availability zones."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes",
     "Extended attributes of snapshots."),
    ("os-quota-sets", "Quotas", "Quota management support."),
    ("os-services", "Services", "Services support."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute",
     "Expose the project of a volume as an attribute."),
    ("os-volume-actions", "VolumeActions", "Enable volume actions."),
    ("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
)


@routes.add("GET", P + "/extensions")
def extensions(req: Req, svc: VolumeCore) -> dict[str, Any]:
    scope(req, svc)
    return {"extensions": [{"alias": alias, "name": name, "description": text,
                            "updated": "2026-01-01T00:00:00+00:00", "links": []}
                           for alias, name, text in EXTENSIONS]}
