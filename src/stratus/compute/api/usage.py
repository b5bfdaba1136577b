"""os-hosts (admin, until 2.43 as in Nova), os-simple-tenant-usage, a server's
diagnostics (admin; Nova's standard form from 2.48) and its topology (2.78)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.common.timeutil import utcnow
from stratus.compute import views
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


def window(req: Req) -> tuple[Any, Any, bool]:
    """``start``/``end`` of the query (default: the last 24 hours up to now) and
    ``detailed``."""
    q = req.query
    end = parse_time(q["end"], "end") if q.get("end") else utcnow()
    start = parse_time(q["start"], "start") if q.get("start") else end - timedelta(days=1)
    detailed = str(q.get("detailed", "")).lower() in ("1", "true", "yes")
    return start, end, detailed


@routes.add("GET", U)
def list_usage(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "os_compute_api:os-simple-tenant-usage:list")
    start, end, detailed = window(req)
    return {"tenant_usages": svc.accounting.tenant_usages(start, end, None, detailed)}


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
