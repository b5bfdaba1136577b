"""Read-only admin and accounting views Nova has: os-hosts (each compute host and what
its servers use), os-simple-tenant-usage (servers' lifetimes within a window) and a
server's diagnostics (what the API knows of it; the agent reports no counters)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from stratus.common.auth import AuthContext
from stratus.common.errors import NotFound
from stratus.common.timeutil import isotime, utcnow
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

POWER_NAMES = {0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed",
               7: "suspended"}


def _ram(srv: m.Server) -> int:
    return int(srv.flavor.get("ram", 0))


class Usage:
    """The read-only views above, over the compute database."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def hosts(self) -> list[dict[str, Any]]:
        """Each compute host, then the controller's services (compute/hosts.py), as
        os-hosts lists them: one row per service, as Nova does."""
        rows = [{"host_name": h.host, "service": "compute",
                 "zone": h.zone or self.core.settings.default_availability_zone}
                for h in self.core.hosts.all()]
        rows += [{"host_name": c.host, "service": c.topic, "zone": c.zone}
                 for c in self.core.hosts.controller_services()]
        return rows

    def host_detail(self, name: str) -> list[dict[str, Any]]:
        """The host's totals, what its servers use now, and per project (Nova's rows)."""
        host = next((h for h in self.core.hosts.all() if h.host == name), None)
        if host is None:
            raise NotFound(f"Compute host {name} could not be found.")
        with self.core.db.session() as s:
            servers = list(s.scalars(sa.select(m.Server).where(
                m.Server.host == name, m.Server.deleted.is_(False))))
        per: dict[str, list[int]] = {}
        for srv in servers:
            row = per.setdefault(srv.project_id, [0, 0, 0])
            row[0] += int(srv.flavor.get("vcpus", 0))
            row[1] += _ram(srv)
            row[2] += int(srv.flavor.get("disk", 0)) + int(srv.flavor.get("ephemeral", 0))
        used = [sum(r[i] for r in per.values()) for i in range(3)]

        def resource(project: str, cpu: int, mem: int, disk: int) -> dict[str, Any]:
            return {"resource": {"host": name, "project": project, "cpu": cpu,
                                 "memory_mb": mem, "disk_gb": disk}}

        return [resource("(total)", host.vcpus, host.memory_mb, host.local_gb),
                resource("(used_now)", host.vcpus_used, host.memory_mb_used,
                         host.local_gb_used),
                resource("(used_max)", *used),
                *(resource(p, *r) for p, r in sorted(per.items()))]

    def tenant_usages(self, start: datetime, end: datetime, project: str | None,
                      detailed: bool) -> list[dict[str, Any]]:
        """Per project, the servers that lived within [start, end] and their hours there
        (a deleted server until it was deleted); with ``detailed`` each server's row."""
        with self.core.db.session() as s:
            q = sa.select(m.Server).where(
                m.Server.created_at < end,
                sa.or_(m.Server.deleted_at.is_(None), m.Server.deleted_at > start))
            if project is not None:
                q = q.where(m.Server.project_id == project)
            servers = list(s.scalars(q.order_by(m.Server.created_at)))
        now = utcnow()
        out: dict[str, dict[str, Any]] = {}
        for srv in servers:
            began = srv.launched_at or srv.created_at
            ended = srv.deleted_at if srv.deleted else None
            lo, hi = max(began, start), min(ended or now, end)
            hours = max((hi - lo).total_seconds(), 0.0) / 3600.0
            disk = int(srv.flavor.get("disk", 0)) + int(srv.flavor.get("ephemeral", 0))
            vcpus = int(srv.flavor.get("vcpus", 0))
            total = out.setdefault(srv.project_id, {
                "tenant_id": srv.project_id, "start": isotime(start, precise=True),
                "stop": isotime(end, precise=True), "total_hours": 0.0,
                "total_local_gb_usage": 0.0, "total_memory_mb_usage": 0.0,
                "total_vcpus_usage": 0.0, "server_usages": []})
            total["total_hours"] += hours
            total["total_local_gb_usage"] += disk * hours
            total["total_memory_mb_usage"] += _ram(srv) * hours
            total["total_vcpus_usage"] += vcpus * hours
            total["server_usages"].append({
                "instance_id": srv.id, "name": srv.name, "tenant_id": srv.project_id,
                "flavor": str(srv.flavor.get("name", srv.flavor_id)), "hours": hours,
                "vcpus": vcpus, "memory_mb": _ram(srv), "local_gb": disk,
                "started_at": isotime(began, precise=True),
                "ended_at": isotime(ended, precise=True),
                "state": "terminated" if srv.deleted else srv.vm_state,
                "uptime": int(((ended or now) - began).total_seconds())})
        rows = list(out.values())
        if not detailed:
            for row in rows:
                del row["server_usages"]
        return rows

    def diagnostics(self, ctx: AuthContext, sid: str) -> dict[str, Any]:
        """What the API knows of a server's guest (Nova's pre-2.48 free-form object):
        its power state, sizes, NICs and disks, and how long it has run."""
        with self.core.db.session() as s:
            srv = self.core.server(s, ctx, sid)
            nics = s.scalar(sa.select(sa.func.count()).select_from(m.ServerPort).where(
                m.ServerPort.server_id == sid)) or 0
            disks = s.scalar(sa.select(sa.func.count()).select_from(
                m.BlockDeviceMapping).where(m.BlockDeviceMapping.server_id == sid)) or 0
            uptime = (utcnow() - srv.launched_at) if srv.launched_at else timedelta()
            return {"state": POWER_NAMES.get(srv.power_state, "pending"),
                    "driver": "libvirt", "hypervisor": "qemu", "hypervisor_os": "linux",
                    "uptime": int(uptime.total_seconds()) if srv.power_state == 1 else 0,
                    "config_drive": bool(srv.config_drive),
                    "num_cpus": int(srv.flavor.get("vcpus", 0)),
                    "num_nics": int(nics), "num_disks": 1 + int(disks),
                    "memory_details": {"maxmem": _ram(srv)}}
