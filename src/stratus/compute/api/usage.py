"""os-hosts (admin, until 2.43 as in Nova: list, show, enable/disable, the power actions a
libvirt host answers 501 to), os-simple-tenant-usage, a server's diagnostics (admin; Nova's
standard form from 2.48), its topology (2.78) and os-instance_usage_audit_log (admin;
compute/usage_audit.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import ApiError, BadRequest, NotFound
from stratus.common.timeutil import utcnow
from stratus.compute import usage_audit, views
from stratus.compute.api.servers import parse_time
from stratus.compute.core import ComputeCore

routes = Routes()
U = "/v2.1/os-simple-tenant-usage"


def hosts_version(req: Req) -> None:
    if views.mv(req) >= (2, 43):
        raise NotFound("os-hosts is gone from microversion 2.43; use os-hypervisors and "
                       "os-services.")


@routes.add("GET", "/v2.1/os-hosts")
def list_hosts(req: Req, svc: ComputeCore) -> dict[str, Any]:
    hosts_version(req)
    svc.require_admin(req.ctx, "os_compute_api:os-hosts:list")
    rows = svc.accounting.hosts()
    zone = req.query.get("zone")
    if zone:
        rows = [r for r in rows if r["zone"] == zone]
    return {"hosts": rows}


@routes.add("GET", "/v2.1/os-hosts/{name}")
def show_host(req: Req, svc: ComputeCore) -> dict[str, Any]:
    hosts_version(req)
    svc.require_admin(req.ctx, "os_compute_api:os-hosts:show")
    return {"host": svc.accounting.host_detail(req.params["name"])}


class NotImplementedByDriver(ApiError):
    """Nova's answer when the virt driver lacks a feature (libvirt: host maintenance mode,
    host power actions): 501."""

    status = 501
    title = "Not Implemented"


HOST_SWITCHES = ("enable", "disable")


def switch(data: dict[str, Any], key: str) -> bool | None:
    """``status``/``maintenance_mode``: enable or disable (any case), None when absent."""
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str) or value.strip().lower() not in HOST_SWITCHES:
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r} is not one of "
                         "enable, disable.")
    return value.strip().lower() == "enable"


@routes.add("PUT", "/v2.1/os-hosts/{name}")
def update_host(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """``status`` enables or disables the host's compute service (as os-services does);
    ``maintenance_mode`` is not implemented by the libvirt driver (501, and nothing is
    changed when both are given)."""
    hosts_version(req)
    data = req.body if isinstance(req.body, dict) else None
    if data is None:
        raise BadRequest("The request body must be an object with status and/or "
                         "maintenance_mode (enable or disable).")
    views.only(data, {"status", "maintenance_mode"}, "host")
    status, maintenance = switch(data, "status"), switch(data, "maintenance_mode")
    if status is None and maintenance is None:
        raise BadRequest("'status' or 'maintenance_mode' is required (enable or disable).")
    svc.require_admin(req.ctx, "os_compute_api:os-hosts:update")
    name = req.params["name"]
    if name not in {h.host for h in svc.hosts.all()}:
        raise NotFound(f"Compute host {name} could not be found.")
    if maintenance is not None:
        raise NotImplementedByDriver("Host maintenance mode is not implemented by the "
                                     "libvirt driver; use status (enable, disable).")
    assert status is not None
    h = svc.hosts.update_service(name, "enable" if status else "disable", None,
                                 lambda: False)
    return {"host": h.host, "status": "enabled" if h.enabled else "disabled"}


def power_action(req: Req, svc: ComputeCore, action: str) -> dict[str, Any]:
    """reboot, startup, shutdown of a host: the libvirt driver has none (501); 404 for a
    host that is not a compute host."""
    hosts_version(req)
    rule = "start" if action == "startup" else action  # Nova's policy rule names
    svc.require_admin(req.ctx, f"os_compute_api:os-hosts:{rule}")
    name = req.params["name"]
    if name not in {h.host for h in svc.hosts.all()}:
        raise NotFound(f"Compute host {name} could not be found.")
    raise NotImplementedByDriver(f"Host power action {action} is not implemented by the "
                                 "libvirt driver.")


@routes.add("GET", "/v2.1/os-hosts/{name}/reboot")
def reboot_host(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return power_action(req, svc, "reboot")


@routes.add("GET", "/v2.1/os-hosts/{name}/startup")
def startup_host(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return power_action(req, svc, "startup")


@routes.add("GET", "/v2.1/os-hosts/{name}/shutdown")
def shutdown_host(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return power_action(req, svc, "shutdown")


def window(req: Req) -> tuple[Any, Any, bool]:
    """``start``/``end`` of the query (default: the last 24 hours up to now) and
    ``detailed``."""
    q = req.query
    end = parse_time(q["end"], "end") if q.get("end") else utcnow()
    start = parse_time(q["start"], "start") if q.get("start") else end - timedelta(days=1)
    detailed = str(q.get("detailed", "")).lower() in ("1", "true", "yes")
    if start > end:
        raise BadRequest("Invalid start time: the start time cannot occur after the end "
                         "time.")
    return start, end, detailed


@routes.add("GET", U)
def list_usage(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-simple-tenant-usage:list")
    start, end, detailed = window(req)
    return {"tenant_usages": svc.accounting.tenant_usages(start, end, None, detailed)}


@routes.add("GET", U + "/")
def usage_without_project(req: Req, svc: ComputeCore) -> None:
    raise NotFound("No project id was given: use /os-simple-tenant-usage/{project_id} "
                   "(or /os-simple-tenant-usage to list every project's).")


@routes.add("GET", U + "/{project}")
def show_usage(req: Req, svc: ComputeCore) -> dict[str, Any]:
    project = req.params["project"]
    if project != req.ctx.project_id:
        svc.require_admin(req.ctx, "os_compute_api:os-simple-tenant-usage:show")
    start, end, _ = window(req)
    rows = svc.accounting.tenant_usages(start, end, project, True)
    return {"tenant_usage": rows[0] if rows else {}}


@routes.add("GET", "/v2.1/servers/{id}/diagnostics")
def server_diagnostics(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-server-diagnostics")
    old = svc.accounting.diagnostics(req.ctx, req.params["id"])
    if views.mv(req) < (2, 48):
        return old
    # 2.48: Nova's standard form; the per-CPU, NIC and disk counters are not measured
    # here, so their lists are empty (the counts stand).
    out = {k: old[k] for k in ("state", "driver", "hypervisor", "hypervisor_os", "uptime",
                                "config_drive", "num_cpus", "num_nics", "num_disks")}
    out["memory_details"] = {"maximum": old["memory_details"]["maxmem"], "used": None}
    out.update(cpu_details=[], nic_details=[], disk_details=[])
    return out


@routes.add("GET", "/v2.1/servers/{id}/topology")
def server_topology(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """2.78: the guest's NUMA topology. Stratus defines no NUMA cells, CPU pinning or huge
    pages in its domains, so there are no nodes (Nova's answer for such a server)."""
    if views.mv(req) < (2, 78):
        raise NotFound("The server topology API is available from microversion 2.78.")
    svc.servers.show(req.ctx, req.params["id"])  # 404 for a server the caller cannot see
    return {"nodes": [], "pagesize_kb": None}


AUDIT = "/v2.1/os-instance_usage_audit_log"


@routes.add("GET", AUDIT)
def list_usage_audit_log(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """The audit of the last completed period (compute/usage_audit.py; admin)."""
    svc.require_admin(req.ctx, "os_compute_api:os-instance-usage-audit-log:list")
    hosts = [h.host for h in svc.hosts.all()]
    return {"instance_usage_audit_logs": usage_audit.audit_log(hosts, utcnow())}


@routes.add("GET", AUDIT + "/{before}")
def show_usage_audit_log(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """The audit of the last period completed before the given time (admin)."""
    svc.require_admin(req.ctx, "os_compute_api:os-instance-usage-audit-log:show")
    before = usage_audit.parse_before(req.params["before"])
    hosts = [h.host for h in svc.hosts.all()]
    return {"instance_usage_audit_log": usage_audit.audit_log(hosts, before)}
