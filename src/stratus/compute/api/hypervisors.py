"""Hypervisors (admin): each compute host's inventory and use, and their sums."""

from __future__ import annotations

import json
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import models as m
from stratus.compute import views
from stratus.compute.api.services import host_uuid
from stratus.compute.api.usage import NotImplementedByDriver
from stratus.compute.core import ComputeCore

routes = Routes()
P = "/v2.1/os-hypervisors"
SUMMED = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
          "running_vms")


def hypervisor_view(h: m.ComputeHost, alive: bool, detail: bool,
                    v: tuple[int, int] = views.MAX_VERSION) -> dict[str, Any]:
    """A hypervisor as Nova shows it (``cpu_info`` a JSON string before 2.28; from 2.88
    without ``cpu_info``, the sizes, the use and the counts, with ``uptime``)."""
    hid: int | str = host_uuid(h) if v >= (2, 53) else h.id
    out: dict[str, Any] = {"id": hid, "hypervisor_hostname": h.hypervisor_hostname,
                           "state": "up" if alive else "down",
                           "status": "enabled" if h.enabled else "disabled"}
    if detail and v >= (2, 88):  # the inventory and use moved to placement in Nova
        out.update({"hypervisor_type": h.hypervisor_type,
                    "hypervisor_version": h.hypervisor_version, "host_ip": h.host_ip or None,
                    "uptime": h.uptime,  # None until its agent has reported it
                    "service": {"host": h.host, "id": hid,
                                "disabled_reason": h.disabled_reason}})
    elif detail:
        cpu = {"arch": h.cpu_arch}
        out.update({
            "vcpus": h.vcpus, "memory_mb": h.memory_mb, "local_gb": h.local_gb,
            "vcpus_used": h.vcpus_used, "memory_mb_used": h.memory_mb_used,
            "local_gb_used": h.local_gb_used, "hypervisor_type": h.hypervisor_type,
            "hypervisor_version": h.hypervisor_version, "host_ip": h.host_ip or None,
            "running_vms": h.running_vms,
            "free_ram_mb": h.memory_mb - h.memory_mb_used,
            "free_disk_gb": h.local_gb - h.local_gb_used, "current_workload": 0,
            "disk_available_least": h.local_gb - h.local_gb_used,
            "cpu_info": cpu if v >= (2, 28) else json.dumps(cpu),
            "service": {"host": h.host, "id": hid, "disabled_reason": h.disabled_reason}})
    return out


def hypervisors_of(req: Req, svc: ComputeCore) -> list[m.ComputeHost]:
    """The hypervisors (admin); from 2.53 filtered by ``hypervisor_hostname_pattern`` (a
    part of the name)."""
    svc.require_admin(req.ctx, "os_compute_api:os-hypervisors")
    hosts = svc.hosts.all()
    pattern = req.query.get("hypervisor_hostname_pattern")
    if pattern is not None:
        if views.mv(req) < (2, 53):
            raise BadRequest("Invalid filter hypervisor_hostname_pattern (from 2.53).")
        hosts = [h for h in hosts if pattern in h.hypervisor_hostname]
        if not hosts:
            raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return hosts


def with_servers(req: Req, svc: ComputeCore, h: m.ComputeHost, out: dict[str, Any]
                 ) -> dict[str, Any]:
    """2.53's ``with_servers=true``: the hypervisor's servers (uuid, name)."""
    flag = req.query.get("with_servers")
    if flag is None:
        return out
    if views.mv(req) < (2, 53):
        raise BadRequest("Invalid filter with_servers (from 2.53).")
    if views.boolean(flag, "with_servers"):
        out["servers"] = [{"uuid": i, "name": n} for i, n in svc.hosts.servers_on(h.host)]
    return out


@routes.add("GET", P)
def list_hypervisors(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"hypervisors": [with_servers(req, svc, h, hypervisor_view(
        h, svc.hosts.alive(h), False, views.mv(req))) for h in hypervisors_of(req, svc)]}


@routes.add("GET", P + "/detail")
def list_hypervisors_detail(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"hypervisors": [with_servers(req, svc, h, hypervisor_view(
        h, svc.hosts.alive(h), True, views.mv(req))) for h in hypervisors_of(req, svc)]}


@routes.add("GET", P + "/statistics")
def show_hypervisor_statistics(req: Req, svc: ComputeCore) -> dict[str, Any]:
    if views.mv(req) >= (2, 88):  # Nova: the route is gone from 2.88
        raise NotFound("The resource could not be found: os-hypervisors/statistics is gone "
                       "from microversion 2.88 (ask for 2.87 or lower).")
    hs = hypervisors_of(req, svc)
    stats: dict[str, Any] = {"count": len(hs)}
    for key in SUMMED:
        stats[key] = sum(getattr(h, key) for h in hs)
    stats["free_ram_mb"] = stats["memory_mb"] - stats["memory_mb_used"]
    stats["free_disk_gb"] = stats["local_gb"] - stats["local_gb_used"]
    stats["disk_available_least"] = stats["free_disk_gb"]
    stats["current_workload"] = 0
    return {"hypervisor_statistics": stats}


def find_hypervisor(req: Req, svc: ComputeCore) -> m.ComputeHost:
    """The hypervisor of the URL's ``id`` (from 2.53 its UUID only); 404 if none."""
    new = views.mv(req) >= (2, 53)
    for h in hypervisors_of(req, svc):
        if (new and host_uuid(h) == req.params["id"]) or (not new and (
                str(h.id) == req.params["id"] or h.hypervisor_hostname == req.params["id"])):
            return h
    raise NotFound(f"Hypervisor {req.params['id']} could not be found.")


@routes.add("GET", P + "/{id}")
def show_hypervisor(req: Req, svc: ComputeCore) -> dict[str, Any]:
    h = find_hypervisor(req, svc)
    return {"hypervisor": with_servers(req, svc, h, hypervisor_view(
        h, svc.hosts.alive(h), True, views.mv(req)))}


def before_253(req: Req, what: str) -> None:
    """``/os-hypervisors/{pattern}/search`` and ``/servers`` exist until 2.52 (Nova)."""
    if views.mv(req) >= (2, 53):
        raise NotFound(f"The resource could not be found: os-hypervisors/{{pattern}}/{what} "
                       "is gone from microversion 2.53; use GET /os-hypervisors?"
                       "hypervisor_hostname_pattern=...&with_servers=true.")


def matching(req: Req, svc: ComputeCore) -> list[m.ComputeHost]:
    """The hypervisors whose name contains the URL's pattern (404 when none does)."""
    svc.require_admin(req.ctx, "os_compute_api:os-hypervisors")
    pattern = req.params["pattern"]
    hosts = [h for h in svc.hosts.all() if pattern in h.hypervisor_hostname]
    if not hosts:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return hosts


@routes.add("GET", P + "/{pattern}/search")
def search_hypervisors(req: Req, svc: ComputeCore) -> dict[str, Any]:
    before_253(req, "search")
    return {"hypervisors": [hypervisor_view(h, svc.hosts.alive(h), False, views.mv(req))
                            for h in matching(req, svc)]}


@routes.add("GET", P + "/{pattern}/servers")
def hypervisor_servers(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """Each matching hypervisor with its servers (uuid, name); as in Nova, no ``servers``
    key on a hypervisor without any."""
    before_253(req, "servers")
    out = []
    for h in matching(req, svc):
        row = hypervisor_view(h, svc.hosts.alive(h), False, views.mv(req))
        servers = [{"uuid": i, "name": n} for i, n in svc.hosts.servers_on(h.host)]
        if servers:
            row["servers"] = servers
        out.append(row)
    return {"hypervisors": out}


@routes.add("GET", P + "/{id}/uptime")
def hypervisor_uptime(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """Until 2.87 (from 2.88 ``uptime`` is in the show, 404 here): the uptime line the
    host's agent reports with its heartbeat. A host whose agent has not reported one
    answers 501, as Nova does for a driver without it (an unknown one 404)."""
    if views.mv(req) >= (2, 88):
        raise NotFound("The resource could not be found: os-hypervisors/{id}/uptime is gone "
                       "from microversion 2.88; the uptime is in GET /os-hypervisors/{id}.")
    h = find_hypervisor(req, svc)
    if h.uptime is None:
        raise NotImplementedByDriver(
            f"The compute agent of hypervisor {h.hypervisor_hostname} has not reported "
            "the host's uptime.")
    out = hypervisor_view(h, svc.hosts.alive(h), False, views.mv(req))
    out["uptime"] = h.uptime
    return {"hypervisor": out}
