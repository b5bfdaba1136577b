"""Compute services (admin): one nova-compute per host; enable, disable (with a reason),
force down. The controller's nova-scheduler (compute/hosts.py) is listed after them,
always up and enabled, and cannot be changed (400, as Nova answers for it)."""

from __future__ import annotations

import uuid
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.common.timeutil import isotime
from stratus.compute import models as m
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.hosts import SERVICE_ACTIONS, ControllerService

routes = Routes()


def service_view(h: m.ComputeHost, alive: bool, v: tuple[int, int] = views.MAX_VERSION
                 ) -> dict[str, Any]:
    """A host's nova-compute service as Nova shows it (``forced_down`` from 2.11, a UUID
    ``id`` from 2.53)."""
    out: dict[str, Any] = {
        "id": host_uuid(h) if v >= (2, 53) else h.id, "binary": "nova-compute",
        "host": h.host, "zone": h.zone,
        "status": "enabled" if h.enabled else "disabled", "state": "up" if alive else "down",
        "updated_at": isotime(h.heartbeat_at), "disabled_reason": h.disabled_reason,
        "forced_down": h.forced_down}
    if v < (2, 11):
        del out["forced_down"]
    # Exactly Nova's keys, always: a host's problems (what the agent says makes it slow,
    # hostcheck.py) are shown by GET /v2.1/stratus/compute-hosts (api/agents.py), since a
    # host without /dev/kvm has one for good and Tempest's schema forbids any other key.
    return out


def controller_view(c: ControllerService, v: tuple[int, int] = views.MAX_VERSION
                    ) -> dict[str, Any]:
    """A controller service in the same shape; its id before 2.53 is 0, which no compute
    host has (their ids count from 1)."""
    out: dict[str, Any] = {
        "id": controller_uuid(c) if v >= (2, 53) else 0, "binary": c.binary,
        "host": c.host, "zone": c.zone, "status": "enabled", "state": "up",
        "updated_at": isotime(c.updated_at), "disabled_reason": None, "forced_down": False}
    if v < (2, 11):
        del out["forced_down"]
    return out


HOST_UUIDS = uuid.UUID("6f1d9a55-2c57-4a0e-9d7b-5a3c1c8f0b53")


def controller_uuid(c: ControllerService) -> str:
    """A controller service's id from 2.53, stable as the compute hosts' are."""
    return str(uuid.uuid5(HOST_UUIDS, f"{c.binary}:{c.host}"))


def host_uuid(h: m.ComputeHost) -> str:
    """The host's service and hypervisor id from 2.53: a UUID derived from its name, so it
    is the same in every answer and after a restart."""
    return str(uuid.uuid5(HOST_UUIDS, f"compute-host:{h.host}"))


@routes.add("GET", "/v2.1/os-services")
def list_services(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-services:list")
    q = req.query
    rows = [service_view(h, svc.hosts.alive(h), views.mv(req)) for h in svc.hosts.all()]
    rows += [controller_view(c, views.mv(req)) for c in svc.hosts.controller_services()]
    if "host" in q:
        rows = [r for r in rows if r["host"] == q["host"]]
    if "binary" in q:
        rows = [r for r in rows if r["binary"] == q["binary"]]
    return {"services": rows}


@routes.add("PUT", "/v2.1/os-services/{action}")
def update_service(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-services:update")
    action = req.params["action"]
    if views.mv(req) >= (2, 53):
        return update_service_by_id(req, svc, action)
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


def update_service_by_id(req: Req, svc: ComputeCore, service_id: str) -> dict[str, Any]:
    """2.53: ``PUT /os-services/{service_id}`` with ``status`` (enabled, disabled),
    ``disabled_reason`` (only when disabling) and ``forced_down``; answers the service."""
    host = next((h for h in svc.hosts.all() if host_uuid(h) == service_id), None)
    other = next((c for c in svc.hosts.controller_services()
                  if controller_uuid(c) == service_id), None)
    if host is None and other is not None:
        raise BadRequest(f"Updating a {other.binary} service is not supported. Only "
                         "nova-compute services can be updated.")
    if host is None:
        raise NotFound(f"Service {service_id} could not be found.")
    data = req.body if isinstance(req.body, dict) else {}
    views.only(data, {"status", "disabled_reason", "forced_down"}, "service")
    if not data:
        raise BadRequest("At least one of status, disabled_reason or forced_down must be "
                         "given.")
    status = data.get("status")
    if status is not None and status not in ("enabled", "disabled"):
        raise BadRequest(f"Invalid input for field/attribute status: {status!r} is not one "
                         "of enabled, disabled.")
    reason = views.text(data, "disabled_reason")
    if reason is not None and status != "disabled":
        raise BadRequest("Specifying a disabled_reason is only supported when the status is "
                         "disabled.")
    h = host
    if status == "enabled":
        h = svc.hosts.update_service(host.host, "enable", None, lambda: False)
    elif status == "disabled":
        h = svc.hosts.update_service(host.host, "disable-log-reason", reason, lambda: False)
    if data.get("forced_down") is not None:
        flag = views.boolean(data["forced_down"], "forced_down")
        h = svc.hosts.update_service(host.host, "force-down", None, lambda: flag)
    return {"service": service_view(h, svc.hosts.alive(h), views.mv(req))}
