"""The agent endpoints of docs/compute.md: heartbeat, assignments (long-poll), reports,
the metadata lookup and the guest password. Admin (service users) only."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.common.app import Req, Router
from stratus.common.clients import ServiceError
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.compute import models as m
from stratus.compute import views
from stratus.compute.core import ComputeCore, isotime, utcnow
from stratus.compute.servers import ServerFlow

LOG = logging.getLogger("stratus.compute")
P = "/v2.1/stratus"
MAX_WAIT = 30.0
HOST_INTS = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
             "hypervisor_version", "running_vms")
HOST_TEXTS = ("virt_type", "hypervisor_type", "hypervisor_hostname", "host_ip",
              "availability_zone", "cpu_arch")
# Inventory the scheduler reads: a change bumps the host's generation.
SCHEDULED = {"vcpus", "memory_mb", "local_gb", "availability_zone", "virt_type", "cpu_arch"}
REPORT_KEYS = {"vm_state", "power_state", "task_state", "fault", "reschedule",
               "reboot_generation", "deleted", "snapshots_done", "console_tail"}


def assignment(srv: m.Server, ports: list[m.ServerPort]) -> dict[str, Any]:
    return {
        "id": srv.id, "name": srv.name, "hostname": srv.hostname, "project_id": srv.project_id,
        "user_id": srv.user_id, "image_id": srv.image_id,
        "image": {k: srv.image.get(k) for k in (
            "disk_format", "checksum", "os_hash_algo", "os_hash_value", "size", "min_disk",
            "properties")},
        "flavor": dict(srv.flavor), "vm_state": srv.vm_state, "task_state": srv.task_state,
        "desired_power": srv.desired_power,
        "reboot": {"generation": srv.reboot_generation, "type": srv.reboot_type},
        "delete": srv.task_state == "deleting", "config_drive": srv.config_drive,
        "ports": [{"id": p.port_id, "network_id": p.network_id, "mac_address": p.mac_address,
                   "mtu": p.mtu, "device_name": f"tap{p.port_id[:11]}",
                   "fixed_ips": [{"subnet_id": ip.get("subnet_id"),
                                  "ip_address": ip["ip_address"]} for ip in p.fixed_ips]}
                  for p in sorted(ports, key=lambda x: x.position)],
        "metadata_document": views.instance_document(srv, ports),
        "snapshots": list(srv.snapshots), "attempt": srv.attempt,
        "created_at": isotime(srv.created_at)}


def add_routes(router: Router, core: ComputeCore) -> None:
    flow = ServerFlow(core)

    def admin(req: Req) -> None:
        core.require_admin(req.ctx, "stratus:compute-agent")

    @router.add("PUT", P + "/compute-hosts/{host}")
    def heartbeat(req: Req) -> Any:
        admin(req)
        name = req.params["host"]
        data = views.obj(req.body, "host")
        # Keys this API does not know are ignored: a newer agent still heartbeats.
        ints = {k: views.integer(data, k, 0) for k in HOST_INTS if k in data}
        texts = {k: views.text(data, k, maxlen=255) for k in HOST_TEXTS if k in data}
        if data.get("host") not in (None, name):
            raise BadRequest(f"The body names host {data['host']}, the URL {name}.")
        virt = texts.get("virt_type")
        if virt is not None and virt not in ("kvm", "qemu"):
            raise BadRequest(f"Invalid virt_type {virt!r}; use kvm or qemu.")

        def work(s: Session) -> dict[str, Any]:
            now = utcnow()
            h = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == name)).first()
            if h is None:
                h = m.ComputeHost(
                    host=name, hypervisor_hostname=name,
                    availability_zone=core.settings.default_availability_zone, vcpus=0,
                    memory_mb=0, local_gb=0, vcpus_used=0, memory_mb_used=0, local_gb_used=0,
                    running_vms=0, virt_type="kvm", hypervisor_type="QEMU",
                    hypervisor_version=0, host_ip="", cpu_arch="x86_64", claimed_vcpus=0,
                    claimed_ram=0, claimed_disk=0, claimed_instances=0, enabled=True,
                    forced_down=False, generation=0, created_at=now, heartbeat_at=now)
                s.add(h)
            moved = False
            for k, v in {**ints, **texts}.items():
                if v is not None:
                    moved = moved or (k in SCHEDULED and getattr(h, k) != v)
                    setattr(h, k, v)
            h.heartbeat_at = now
            s.flush()
            if moved and h.id is not None:
                # What the scheduler reads changed: a new generation (its host cache).
                core.bump(s, name)
                s.refresh(h)
            return {"host": {"host": h.host, "enabled": h.enabled,
                             "disabled_reason": h.disabled_reason, "generation": h.generation,
                             **{k: getattr(h, k) for k in (*HOST_INTS, *HOST_TEXTS)}}}

        answer = core.transaction(work)
        # Any host's heartbeat also fails the servers stuck on dead hosts (throttled), so
        # that happens without a reader listing them. Never fails the heartbeat itself.
        try:
            swept = core.sweep_dead_hosts()
            if swept:
                LOG.warning("%d server(s) on dead compute hosts went ERROR", swept)
        except Exception:
            LOG.exception("the sweep for servers on dead compute hosts failed")
        return answer

    def generation(name: str) -> int:
        with core.db.session() as s:
            h = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == name)).first()
            if h is None:
                raise NotFound(f"Compute host {name} could not be found; send a heartbeat "
                               "first.")
            return h.generation

    def current(name: str) -> dict[str, Any]:
        with core.db.session() as s:
            h = core.host(s, name)
            rows = list(s.scalars(sa.select(m.Server).where(
                m.Server.host == name, m.Server.deleted.is_(False),
                m.Server.task_state.is_distinct_from("networking"))))
            ports: dict[str, list[m.ServerPort]] = {}
            if rows:
                for p in s.scalars(sa.select(m.ServerPort).where(
                        m.ServerPort.server_id.in_([r.id for r in rows]))):
                    ports.setdefault(p.server_id, []).append(p)
            return {"generation": h.generation,
                    "servers": [assignment(r, ports.get(r.id, [])) for r in rows]}

    async def assignments(request: Request) -> Response:
        # Async, so agents waiting in a long-poll hold no worker thread.
        req = Req(request, None, router.authenticate)
        await run_in_threadpool(admin, req)
        name = req.params["host"]
        wait = 0.0
        if "wait" in req.query:
            try:
                wait = min(max(float(req.query["wait"]), 0.0), MAX_WAIT)
            except ValueError:
                raise BadRequest("wait must be a number of seconds (at most 30).") from None
        since = None
        if "since" in req.query:
            since = views.integer({"since": req.query["since"]}, "since")
        deadline = time.monotonic() + wait
        gen = await run_in_threadpool(generation, name)
        while since is not None and gen == since and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            gen = await run_in_threadpool(generation, name)
        return JSONResponse(await run_in_threadpool(current, name))

    router.routes.append(Route(P + "/compute-hosts/{host}/servers", assignments,
                               methods=["GET"]))

    @router.add("POST", P + "/compute-hosts/{host}/servers/{id}/report")
    def report(req: Req) -> Any:
        admin(req)
        if not isinstance(req.body, dict):
            raise BadRequest("The report must be a JSON object.")
        body = {k: v for k, v in req.body.items() if k in REPORT_KEYS}  # others ignored
        if "power_state" in body and (isinstance(body["power_state"], bool) or body[
                "power_state"] not in (0, 1, 3, 4, 6, 7)):
            raise BadRequest("power_state must be one of 0, 1, 3, 4, 6, 7.")
        if body.get("vm_state") not in (None, "active", "stopped", "paused", "suspended",
                                        "error"):
            raise BadRequest("vm_state must be one of active, stopped, paused, suspended, "
                             "error.")
        if body.get("fault") is not None and not isinstance(body["fault"], dict):
            raise BadRequest("fault must be null or an object with code, message, details.")
        if body.get("snapshots_done") is not None and not (
                isinstance(body["snapshots_done"], list)
                and all(isinstance(x, str) for x in body["snapshots_done"])):
            raise BadRequest("snapshots_done must be a list of image IDs.")
        if body.get("console_tail") is not None and not isinstance(body["console_tail"], str):
            raise BadRequest("console_tail must be a string.")
        flow.report(req.params["host"], req.params["id"], body)
        with core.db.session() as s:
            srv = s.get(m.Server, req.params["id"])
            if srv is None or srv.deleted:
                return {"server": {"id": req.params["id"], "deleted": True}}
            return {"server": {"id": srv.id, "vm_state": srv.vm_state,
                               "task_state": srv.task_state, "host": srv.host}}

    @router.add("GET", P + "/metadata")
    def metadata_lookup(req: Req) -> Any:
        admin(req)
        net, ip = req.query.get("network_id"), req.query.get("fixed_ip")
        if not net or not ip:
            raise BadRequest("network_id and fixed_ip are required.")
        with core.db.session() as s:
            addr = s.get(m.ServerAddress, (net, ip))
            srv = s.get(m.Server, addr.server_id) if addr else None
            if srv is None or srv.deleted:
                raise NotFound(f"No server has address {ip} on network {net}.")
            ports = list(s.scalars(sa.select(m.ServerPort).where(
                m.ServerPort.server_id == srv.id)))
        floating: dict[str, str | None] = {}
        for p in ports:
            try:
                fips = core.downstream.floating_ips(p.port_id)
                floating[p.port_id] = fips[0]["floating_ip_address"] if fips else None
            except (ServiceError, KeyError, IndexError):
                floating[p.port_id] = None
        return {"instance": views.instance_document(srv, ports, floating)}

    @router.add("PUT", P + "/metadata/{id}/password")
    def password(req: Req) -> Any:
        admin(req)
        if not isinstance(req.body, dict) or not isinstance(req.body.get("password"), str):
            raise BadRequest("A body {\"password\": \"...\"} is expected.")
        value = req.body["password"]
        if len(value) > 256 * 1024 or not value:
            raise BadRequest("The password blob must be 1 byte to 256 KiB.")

        def work(s: Session) -> None:
            srv = s.get(m.Server, req.params["id"])
            if srv is None or srv.deleted:
                raise NotFound(f"Instance {req.params['id']} could not be found.")
            if srv.password:
                raise Conflict("The password of this server is already set.")
            srv.password = value

        core.transaction(work)
        return {"password": "set"}
