"""The server life cycle: create (validate, quota, schedule, claim, ports), delete, agent
reports, and every other server operation through the parts ``ServerFlow`` is made of:

- server_checks.py: what a create request names (image, networks, security groups);
- placement.py: scheduling, the host claim, the ports, a failed build;
- server_reads.py: listing and showing servers, their metadata, addresses, password;
- server_actions.py: renaming, metadata changes, power actions, reboot, console, snapshot;
- server_security_groups.py: security groups of a running server.

Calls to the image and network APIs happen outside database transactions; every
step that fails undoes what the earlier steps made (ports, claims, quota).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.crashpoints import crash_point
from stratus.common.errors import ApiError, BadRequest, Conflict
from stratus.common.timeutil import isotime, new_id, utcnow
from stratus.compute import instance_actions, server_backup
from stratus.compute import models as m
from stratus.compute.aggregates import zone_available
from stratus.compute.boot_volumes import BootVolumes, local_disk_gb
from stratus.compute.consoles import Consoles
from stratus.compute.placement import Placement
from stratus.compute.quotas import OverLimit, check_metadata_items
from stratus.compute.recovery import owned, released
from stratus.compute.server_actions import ServerActions
from stratus.compute.server_checks import CreateRequest
from stratus.compute.server_fixed_ips import ServerFixedIps
from stratus.compute.server_interfaces import ServerInterfaces
from stratus.compute.server_lock import check_unlocked
from stratus.compute.server_rebuild import ServerRebuild
from stratus.compute.server_resize import ServerResize
from stratus.compute.server_resize import after_report as resize_report
from stratus.compute.server_resize import settle as resize_settle
from stratus.compute.server_security_groups import ServerSecurityGroups
from stratus.compute.volume_snapshots import image_block_devices, merge_devices
from stratus.compute.volumes import ServerVolumes, volumes_of

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

__all__ = ["CONSOLE_MAX", "TASK_TARGETS", "CreateRequest", "ServerFlow"]
LOG = logging.getLogger("stratus.compute")
CONSOLE_MAX = 64 * 1024
# task_state -> the vm_state an agent report must show for the task to be done
TASK_TARGETS = {
    "spawning": "active", "powering-off": "stopped", "powering-on": "active",
    "pausing": "paused", "unpausing": "active", "suspending": "suspended",
    "resuming": "active",
}


class ServerFlow(Placement, ServerSecurityGroups, ServerFixedIps, ServerActions,
                 ServerRebuild, ServerResize, ServerInterfaces):
    """Every server operation over the compute database and the downstream APIs
    (``ComputeCore.servers``)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core
        self.ds = core.downstream

    # ---- create -----------------------------------------------------------------------

    def create(self, ctx: AuthContext, req: CreateRequest) -> list[str]:
        core = self.core

        def lookups(s: Session) -> tuple[m.Flavor, m.KeyPair | None, m.ServerGroup | None]:
            flavor = s.get(m.Flavor, req.flavor_id)
            if flavor is None or not core.flavor_visible(s, ctx, flavor):
                raise BadRequest(f"Flavor {req.flavor_id} could not be found.")
            key = None
            if req.key_name is not None:
                key = s.scalars(sa.select(m.KeyPair).where(
                    m.KeyPair.user_id == ctx.user_id, m.KeyPair.name == req.key_name)).first()
                if key is None:
                    raise BadRequest(f"Invalid key_name provided: key pair {req.key_name} "
                                     "could not be found.")
            group = None
            if req.group_id:
                group = s.get(m.ServerGroup, req.group_id)
                if group is None or not (ctx.is_admin or group.project_id == ctx.project_id):
                    raise BadRequest(f"Server group {req.group_id} could not be found.")
            for sid in [*req.same_host, *req.different_host]:
                other = s.get(m.Server, sid)
                if other is None or other.deleted:
                    raise BadRequest(f"Scheduler hint refers to instance {sid}, which could "
                                     "not be found.")
            if req.force_host and s.scalars(sa.select(m.ComputeHost).where(
                    m.ComputeHost.host == req.force_host)).first() is None:
                raise BadRequest(f"Compute host {req.force_host} could not be found.")
            if req.availability_zone and not req.force_host and not zone_available(
                    s, req.availability_zone, core.settings.default_availability_zone):
                raise BadRequest(f"The requested availability zone is not available: no "
                                 f"enabled host is in {req.availability_zone} "
                                 f"(os-availability-zone lists the zones).")
            # the project's limit: its override, else the default quota class
            check_metadata_items(core.quota_limits(s, ctx.project_id or ""),
                                 len(req.metadata))
            return flavor, key, group

        flavor, key, group = core.transaction(lookups)
        # boot from volume: no image (compute/boot_volumes.py)
        image = self.check_image(ctx, req.image_id, flavor) if req.image_id else {}
        from_image = image_block_devices(image)  # a volume-backed server's snapshot
        if from_image and req.max_count > 1:
            raise BadRequest(f"Image {req.image_id} maps volume snapshots "
                             "(block_device_mapping): boot one server at a time from it "
                             "(max_count 1).")
        if from_image:  # the server boots from volumes made from its volume snapshots
            req = dataclasses.replace(req, image_id="", block_devices=merge_devices(
                from_image, req.block_devices))
            image = {}
        if req.block_devices and req.max_count > 1:
            raise BadRequest("Invalid input: block_device_mapping_v2 is for one server "
                             "(max_count 1).")
        specs = self.resolve_networks(ctx, req)
        sg_ids = self.resolve_groups(ctx, req.security_groups) if specs else []
        flavor_doc = {"id": flavor.id, "name": flavor.name, "vcpus": flavor.vcpus,
                      "ram": flavor.ram, "disk": flavor.disk, "swap": flavor.swap,
                      "ephemeral": flavor.ephemeral, "extra_specs": dict(flavor.extra_specs)}
        project = ctx.project_id or ""
        # Ports made without a group get the project's "default" group in the network API.
        groups = list(dict.fromkeys(req.security_groups)) or (["default"] if specs else [])

        def record(s: Session) -> list[str]:
            count = req.max_count
            while not core.reserve(s, project, count, flavor.vcpus * count,
                                   flavor.ram * count, must=count <= req.min_count):
                count -= 1
            if group is not None:
                limit = core.quota_limits(s, group.project_id)["server_group_members"]
                fresh = s.get(m.ServerGroup, group.id, populate_existing=True)
                assert fresh is not None
                if limit >= 0 and len(fresh.members) + count > limit:
                    raise OverLimit(f"Quota exceeded for server_group_members: group "
                                    f"{group.id} has {len(fresh.members)} of {limit}.")
            now = utcnow()
            ids = []
            for index in range(count):
                name = req.name if count == 1 else f"{req.name}-{index + 1}"
                srv = m.Server(
                    id=new_id(), name=name, hostname=req.hostname or _hostname(name),
                    project_id=project,
                    user_id=ctx.user_id, image_id=req.image_id, image=image,
                    flavor_id=flavor.id, flavor=flavor_doc, vm_state="building",
                    task_state="scheduling", power_state=0, desired_power="running",
                    requested_az=req.availability_zone, tried_hosts=[], attempt=0,
                    scheduling=owned({"specs": specs, "security_group_ids": sg_ids,
                                      "force_host": req.force_host,
                                      "same_host": req.same_host,
                                      "different_host": req.different_host}),
                    key_name=key.name if key else None, key_data=key.public_key if key else None,
                    key_type=key.type if key else None, user_data=req.user_data,
                    meta=dict(req.metadata), security_groups=groups,
                    config_drive=req.config_drive, launch_index=index,
                    group_id=group.id if group else None, progress=0, deleted=False,
                    access_ip_v4=req.access_ip_v4, access_ip_v6=req.access_ip_v6,
                    description=req.description, tags=list(req.tags) or None,
                    disk_config=req.disk_config,
                    snapshots=[], console_tail="", created_at=now, updated_at=now)
                s.add(srv)
                instance_actions.record(s, ctx, srv, "create", now)
                ids.append(srv.id)
            if group is not None:
                fresh = s.get(m.ServerGroup, group.id)
                assert fresh is not None
                fresh.members = [*fresh.members, *ids]
            return ids

        boot = BootVolumes(core)
        boot.prepare(ctx, req.block_devices, req.name)  # makes nothing when it fails
        try:
            ids = core.transaction(record)
        except BaseException:
            boot.prepare_undo(ctx, req.block_devices)
            raise
        boot.record(ids[0], req.block_devices)
        crash_point("compute.create.after_row")
        done: list[str] = []
        try:
            for sid in ids:
                self.place(ctx, sid)
                done.append(sid)
        except ApiError:
            # The request's own fault (a port the network API refused): nothing is left.
            for sid in ids:
                self.purge(sid)
            raise
        return ids

    def purge(self, sid: str) -> None:
        """Undo a create completely (the server is not created): ports, claim, quota, row."""
        self.finalize_delete(sid, remove_row=True)

    # ---- delete -----------------------------------------------------------------------

    def finalize_delete(self, sid: str, remove_row: bool = False) -> None:
        ServerVolumes(self.core).release_all(sid)  # compute/volumes.py
        # Its ports as recorded, and those the network API holds for it that are not (a
        # step stopped between making a port and recording it).
        try:
            found, clean = self.unrecorded_ports(sid, strict=True), True
        except ServiceError as exc:
            LOG.warning("server %s: the network API could not list its ports: %s", sid, exc)
            found, clean = [], False
        clean = not self.drop_ports(self.ports_of(sid) + found) and clean
        crash_point("compute.delete.after_ports")
        # A row is only removed when no port may be left naming it: else it is kept as
        # deleted, so that the recovery's port sweep finds and drops those ports later.
        remove_row = remove_row and clean
        core = self.core

        def work(s: Session) -> None:
            srv = s.get(m.Server, sid)
            if srv is None or srv.deleted:
                return
            now = utcnow()
            # Two finishers may race (the recovery pass and the agent's report): the read
            # above may be stale (SQLite reads before taking the write lock), so the finish
            # is claimed by a conditional update only one of them matches; the other
            # releases nothing a second time.
            won = s.execute(sa.update(m.Server).where(
                m.Server.id == sid, m.Server.deleted.is_(False)).values(
                deleted=True, deleted_at=now, updated_at=now)).rowcount  # type: ignore[attr-defined]
            if won != 1:
                return
            f = srv.flavor
            if srv.host:
                core.unclaim(s, srv.host, f["vcpus"], f["ram"], local_disk_gb(srv))
            core.release(s, srv.project_id, 1, f["vcpus"], f["ram"])
            if srv.group_id:
                group = s.get(m.ServerGroup, srv.group_id)
                if group is not None:
                    group.members = [x for x in group.members if x != sid]
            s.execute(sa.delete(m.ServerAddress).where(m.ServerAddress.server_id == sid))
            s.execute(sa.delete(m.ServerPort).where(m.ServerPort.server_id == sid))
            if remove_row:
                s.delete(srv)
                return
            srv.deleted, srv.deleted_at, srv.updated_at = True, now, now
            instance_actions.close_all(s, srv)  # its delete is done (instance_actions.py)
            srv.vm_state, srv.task_state, srv.host = "deleted", None, None

        core.transaction(work)

    def delete(self, ctx: AuthContext, sid: str) -> None:
        core = self.core

        def work(s: Session) -> bool:
            srv = core.server(s, ctx, sid)
            check_unlocked(ctx, srv)  # compute/server_lock.py
            host = s.scalars(sa.select(m.ComputeHost).where(
                m.ComputeHost.host == srv.host)).first() if srv.host else None
            srv.task_state, srv.updated_at = "deleting", utcnow()
            instance_actions.record(s, ctx, srv, "delete")
            if host is None or not core.alive(host):
                # This process finishes the delete: recorded first, so that a crash
                # midway is finished by the recovery (compute/recovery.py).
                srv.scheduling = owned(srv.scheduling)
                return True
            srv.scheduling = released(srv.scheduling)  # the host's agent deletes it
            core.bump(s, srv.host)
            return False

        if core.transaction(work):
            self.finalize_delete(sid)

    # ---- agent reports ----------------------------------------------------------------

    def report(self, host: str, sid: str, body: dict[str, Any]) -> None:
        core = self.core

        def check(s: Session) -> m.Server:
            srv = s.get(m.Server, sid)
            if srv is None or srv.deleted or srv.host != host:
                raise Conflict(f"Instance {sid} is not assigned to host {host}.")
            return srv

        core.transaction(check)
        if body.get("deleted") is True:
            self.finalize_delete(sid)
            return
        if body.get("reschedule") is True:
            self.reschedule(sid, host, body.get("fault"))
            return

        def work(s: Session) -> None:
            srv = check(s)
            now = utcnow()
            resize_report(s, srv, body)  # a resize or revert done (server_resize.py)
            if "console_tail" in body and isinstance(body["console_tail"], str):
                srv.console_tail = body["console_tail"][-CONSOLE_MAX:]
            if "vnc" in body:  # checked by ServerReport.from_dict (compute/consoles.py)
                Consoles.record(s, sid, host, body["vnc"])
            if isinstance(body.get("power_state"), int):
                srv.power_state = body["power_state"]
            done = body.get("snapshots_done")
            if isinstance(done, list) and srv.snapshots:
                uploaded[:] = [x for x in srv.snapshots if x["image_id"] in done]
                srv.snapshots = [x for x in srv.snapshots if x["image_id"] not in done]
                if not srv.snapshots and srv.task_state == "image_uploading":
                    srv.task_state = None
            fault = body.get("fault")
            vm_state = body.get("vm_state")
            if vm_state == "error" or (isinstance(fault, dict) and vm_state is None):
                srv.vm_state, srv.task_state = "error", None
                srv.fault = {"code": int((fault or {}).get("code", 500)), "created": isotime(now),
                             "message": str((fault or {}).get("message", "The spawn failed.")),
                             "details": str((fault or {}).get("details", ""))}
            elif vm_state in ("active", "stopped", "paused", "suspended") \
                    and srv.task_state != "deleting":
                if srv.vm_state == "building" and srv.task_state not in (None, "spawning"):
                    pass  # still networking in the API; the agent is early
                else:
                    if srv.vm_state == "building" and isinstance(fault, dict) \
                            and int(fault.get("code") or 500) < 500:
                        # built, with a warning (a slow spawn, agent/compute/hostcheck.py)
                        srv.fault = {"code": int(fault["code"]), "created": isotime(now),
                                     "message": str(fault.get("message", "")),
                                     "details": str(fault.get("details", ""))}
                    elif srv.vm_state == "building" or srv.vm_state == "error":
                        srv.fault = None
                    srv.vm_state = vm_state
                    if vm_state == "active" and srv.launched_at is None:
                        srv.launched_at, srv.progress = now, 100
                    target = TASK_TARGETS.get(srv.task_state or "")
                    if target == vm_state:
                        srv.task_state = None
                    gen = body.get("reboot_generation")
                    if srv.task_state in ("rebooting", "rebooting_hard") and isinstance(gen, int) \
                            and gen >= srv.reboot_generation:
                        srv.task_state = None
                    gen = body.get("rebuild_generation")
                    if srv.task_state == "rebuilding" and isinstance(gen, int) \
                            and gen >= srv.rebuild_generation:
                        srv.task_state = None  # rebuilt (compute/server_rebuild.py)
            resize_settle(srv)  # a resize waiting for confirmation stays VERIFY_RESIZE
            srv.updated_at = now
            # the events of the actions this report ended (compute/instance_actions.py)
            instance_actions.settle(s, srv, reported=vm_state is not None, failed=(
                vm_state == "error" or (isinstance(fault, dict) and vm_state is None)))

        uploaded: list[dict[str, str]] = []
        core.transaction(work)
        for snapshot in uploaded:  # createBackup's rotation (compute/server_backup.py)
            server_backup.rotate(core, sid, snapshot)
        if isinstance(body.get("volumes"), list):  # the attachments plugged (volumes.py)
            ServerVolumes(core).after_report(sid, body["volumes"])

    def reschedule(self, sid: str, host: str, fault: Any) -> None:
        core = self.core
        message = str((fault or {}).get("message", "The spawn failed.")) \
            if isinstance(fault, dict) else "The spawn failed."

        def release(s: Session) -> bool:
            srv = s.get(m.Server, sid)
            if srv is None or srv.deleted:
                return False
            # Only while the server is still on this host and not deleted (a delete may
            # have finished since the report was checked): the conditional update decides.
            moved = s.execute(sa.update(m.Server).where(
                m.Server.id == sid, m.Server.host == host, m.Server.deleted.is_(False),
            ).values(host=None)).rowcount  # type: ignore[attr-defined]
            if moved != 1:
                return False
            f = srv.flavor
            core.unclaim(s, host, f["vcpus"], f["ram"], local_disk_gb(srv))
            srv.host = None
            if srv.attempt >= core.settings.scheduler_max_attempts:
                now = utcnow()
                srv.vm_state, srv.task_state, srv.updated_at = "error", None, now
                srv.fault = {"code": 500, "created": isotime(now), "message": (
                    f"Exceeded maximum number of retries. Exhausted all hosts available for "
                    f"retrying build failures for instance {sid}. Last failure: {message}"),
                    "details": ""}
                instance_actions.settle(s, srv, reported=False, failed=True)
                return False
            if volumes_of(s, [sid]):
                # its volumes are exported to this host's initiator (compute/volumes.py)
                now = utcnow()
                srv.vm_state, srv.task_state, srv.updated_at = "error", None, now
                srv.fault = {"code": 500, "created": isotime(now), "message": (
                    f"The spawn failed on host {host} and a server with volumes is not "
                    f"rescheduled. Last failure: {message}"), "details": ""}
                instance_actions.settle(s, srv, reported=False, failed=True)
                return False
            srv.task_state = "scheduling"
            srv.scheduling = owned(srv.scheduling)  # this process reschedules it
            return True

        if not core.transaction(release):
            return
        new_host = self.schedule(sid)
        if new_host is None:
            return
        for port in self.ports_of(sid):
            try:
                self.ds.update_port(None, port["port_id"], {"binding:host_id": new_host})
            except ServiceError as exc:
                self.fail(sid, f"Rescheduling failed: the port {port['port_id']} could not be "
                               f"bound to {new_host}: {exc}", release_claim=True)
                return

        def spawning(s: Session) -> None:
            srv = s.get(m.Server, sid)
            assert srv is not None
            srv.task_state, srv.updated_at = "spawning", utcnow()
            srv.scheduling = released(srv.scheduling)
            core.bump(s, new_host)

        core.transaction(spawning)


def _hostname(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower()).strip("-.")
    return out[:63] or "server"
