"""Availability zones: the zones of the enabled hosts (the default zone when there are
none), and per host with ``/detail`` (admin). A host's zone is its aggregate's when it is
in one with a zone (compute/aggregates.py), else the one its agent reports. The detail
also lists Nova's ``internal`` zone with the controller's nova-scheduler (compute/hosts.py),
which the plain list leaves out as Nova does."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.timeutil import isotime
from stratus.compute.core import ComputeCore

routes = Routes()


@routes.add("GET", "/v2.1/os-availability-zone")
def list_zones(req: Req, svc: ComputeCore) -> dict[str, Any]:
    hosts = svc.hosts.all()
    names = sorted({h.zone for h in hosts if h.enabled}) or [
        svc.settings.default_availability_zone]
    return {"availabilityZoneInfo": [
        {"zoneName": z, "zoneState": {"available": any(
            svc.hosts.alive(h) for h in hosts if h.zone == z) or not hosts},
         "hosts": None} for z in names]}


@routes.add("GET", "/v2.1/os-availability-zone/detail")
def list_zones_detail(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-availability-zone:detail")
    out: dict[str, dict[str, Any]] = {}
    for h in svc.hosts.all():
        out.setdefault(h.zone, {})[h.host] = {"nova-compute": {
            "available": svc.hosts.alive(h), "active": h.enabled,
            "updated_at": isotime(h.heartbeat_at)}}
    # the controller's scheduler in Nova's internal zone, as os-services shows it
    for c in svc.hosts.controller_services():
        out.setdefault(c.zone, {}).setdefault(c.host, {})[c.binary] = {
            "available": True, "active": True, "updated_at": isotime(c.updated_at)}
    return {"availabilityZoneInfo": [
        {"zoneName": z, "zoneState": {"available": True}, "hosts": hs}
        for z, hs in sorted(out.items())]}
