"""Compute services (admin): one nova-compute per host; enable, disable (with a reason),
force down."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.common.timeutil import isotime
from stratus.compute import models as m
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.hosts import SERVICE_ACTIONS

routes = Routes()


def service_view(h: m.ComputeHost, alive: bool, v: tuple[int, int] = views.MAX_VERSION
                 ) -> dict[str, Any]:
    """A host's nova-compute service as Nova shows it (``forced_down`` from 2.11)."""
    out = {"id": h.id, "binary": "nova-compute", "host": h.host,
           "zone": h.availability_zone, "status": "enabled" if h.enabled else "disabled",
           "state": "up" if alive else "down", "updated_at": isotime(h.heartbeat_at),
           "disabled_reason": h.disabled_reason, "forced_down": h.forced_down}
    if v < (2, 11):
        del out["forced_down"]
    if h.problems:
        # Stratus extension: what the agent says makes this host slow (hostcheck.py). Only
        # while there is one, so a healthy host's entry is exactly Nova's (Tempest's schema
        # forbids other keys).
        out["host_problems"] = list(h.problems)
    return out


@routes.add("GET", "/v2.1/os-services")
def list_services(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-services:list")
    q = req.query
    rows = [service_view(h, svc.hosts.alive(h), views.mv(req)) for h in svc.hosts.all()]
    if "host" in q:
        rows = [r for r in rows if r["host"] == q["host"]]
    if "binary" in q:
        rows = [r for r in rows if r["binary"] == q["binary"]]
    return {"services": rows}


@routes.add("PUT", "/v2.1/os-services/{action}")
def update_service(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-services:update")
    action = req.params["action"]
    if action not in SERVICE_ACTIONS:
        raise NotFound(f"Unknown action {action}; use enable, disable, disable-log-reason "
                       "or force-down.")
    data = req.body if isinstance(req.body, dict) else {}
    host = views.text(data, "host", required=True)
    binary = views.text(data, "binary", default="nova-compute")
    if binary != "nova-compute":
        raise BadRequest("Only the nova-compute binary can be changed.")
    reason = views.text(data, "disabled_reason") if action == "disable-log-reason" else None
    h = svc.hosts.update_service(
        str(host), action, reason,
        forced_down=lambda: views.boolean(data.get("forced_down", True), "forced_down"))
    out: dict[str, Any] = {"host": h.host, "binary": "nova-compute",
                           "status": "enabled" if h.enabled else "disabled"}
    if reason:
        out["disabled_reason"] = reason
    if action == "force-down":
        out["forced_down"] = h.forced_down
    return {"service": out}
