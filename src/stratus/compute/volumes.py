"""Volumes of servers (Nova's os-volume_attachments and block device mappings) over the
volume API's attachments (docs/volume-design flow; the API is ``downstream.VolumeApi``).

Attach: a mapping row is made ``reserving`` (it holds the device name and refuses a
second attach of the same volume), then the volume API reserves an attachment, is given
the host's connector and answers the ``connection_info`` (it waits for the storage
agent's export); the row becomes ``attaching`` and the host's agent is woken. The agent
plugs the disk and lists the attachment in its report (:meth:`ServerVolumes.after_report`):
the attachment is completed and the row ``attached``. Detach: the row becomes
``detaching``; once the agent's report no longer lists it, the attachment is deleted
and so is the row. Deleting a server deletes its attachments (and the volumes marked
``delete_on_termination``). Calls to the volume API happen outside transactions; a step
that fails undoes what the earlier steps made.

Extend of an attached volume: the row keeps the volume's size (``volume_size_gb`` next to
the volume API's ``connection_info``, sent to the agent as the block device's
``size_gb``). The volume API sends Nova's ``volume-extended`` external event once the
extend is done (``compute/external_events.py``): the size is re-read, a larger one is
stored and the host's agent woken, which has QEMU re-read the disk's capacity (``virsh
blockresize``), so the guest sees the new size without a reattach.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
)
from stratus.common.timeutil import new_id, utcnow
from stratus.compute import models as m
from stratus.compute.instance_actions import record as record_action
from stratus.contracts.compute import BlockDevice

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore
    from stratus.compute.downstream import VolumeApi

LOG = logging.getLogger("stratus.compute")
# vm_states a volume may be attached in or detached from (Nova also allows more).
CHANGEABLE = ("active", "stopped")
# rows the agent is told to plug (the others are being reserved or unplugged)
PLUGGED = ("attaching", "attached")
DEVICE_LETTERS = "bcdefghijklmnopqrstuvwxyz"
# seconds after which a mapping still "reserving" (its attach request died: the API
# process was killed between reserving and the export's answer) is undone
RESERVING_STALE = 600
SIZE_KEY = "volume_size_gb"  # the volume's size, kept in the row's connection_info


def initiator_of(host: str) -> str:
    """The iSCSI initiator name of a compute host (QEMU logs in with it)."""
    return f"iqn.2010-10.org.stratus:{host}"


def connector_of(host: str, host_ip: str) -> dict[str, Any]:
    """The connector the volume API exports to (os-brick's shape)."""
    return {"initiator": initiator_of(host), "host": host, "ip": host_ip,
            "platform": "x86_64", "os_type": "linux", "multipath": False}


def volumes_of(s: Session, server_ids: list[str]) -> dict[str, list[m.BlockDeviceMapping]]:
    """server id -> its mappings, by device (one query)."""
    out: dict[str, list[m.BlockDeviceMapping]] = {}
    if not server_ids:
        return out
    for row in s.scalars(sa.select(m.BlockDeviceMapping).where(
            m.BlockDeviceMapping.server_id.in_(server_ids)).order_by(
            m.BlockDeviceMapping.device)):
        out.setdefault(row.server_id, []).append(row)
    return out


def block_devices(rows: list[m.BlockDeviceMapping], host: str | None) -> list[BlockDevice]:
    """What the agent must have plugged: the rows with their connection_info."""
    return [BlockDevice(volume_id=r.volume_id, attachment_id=r.attachment_id,
                        device=r.device.removeprefix("/dev/"),
                        connection_info={k: v for k, v in r.connection_info.items()
                                         if k != SIZE_KEY},
                        boot_index=r.boot_index,
                        initiator=initiator_of(host) if host else None,
                        size_gb=_size_of(r.connection_info))
            for r in rows if r.status in PLUGGED and r.connection_info and r.attachment_id]


def _size_of(info: dict[str, Any] | None) -> int | None:
    size = (info or {}).get(SIZE_KEY)
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def with_size(info: dict[str, Any], volume: dict[str, Any]) -> dict[str, Any]:
    """The connection_info to keep for a mapping: the volume API's, with the volume's size."""
    size = volume.get("size")
    return {**info, SIZE_KEY: size} if isinstance(size, int) and size > 0 else dict(info)


def _volume_error(exc: ServiceError, what: str) -> ApiError:
    if exc.status == 404:
        return NotFound(what)
    if exc.temporary or exc.status in (0, 503):
        return ServiceUnavailable(f"The volume service cannot be reached: {exc}")
    if exc.status == 409:
        return Conflict(f"Invalid volume: {exc}")
    return BadRequest(f"Invalid volume: {exc}")


class ServerVolumes:
    """The os-volume_attachments of servers (``ComputeCore`` has no attribute for it:
    build one per call, ``ServerVolumes(core)``)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    @property
    def api(self) -> VolumeApi:
        found: VolumeApi | None = getattr(self.core.downstream, "volumes", None)
        if found is None:
            raise ServiceUnavailable("The volume service is not configured for the compute "
                                     "API (no service user or no volume endpoint).")
        return found

    # ---- reads -------------------------------------------------------------------------
    def attached(self, ctx: AuthContext, sid: str) -> tuple[m.Server, list[m.BlockDeviceMapping]]:
        with self.core.db.session() as s:
            srv = self.core.server(s, ctx, sid)
            return srv, volumes_of(s, [sid]).get(sid, [])

    def show(self, ctx: AuthContext, sid: str, volume_id: str
             ) -> tuple[m.Server, m.BlockDeviceMapping]:
        srv, rows = self.attached(ctx, sid)
        for row in rows:
            if row.volume_id == volume_id:
                return srv, row
        raise NotFound(f"Volume {volume_id} is not attached to the instance {sid}.")

    def set_delete_on_termination(self, ctx: AuthContext, sid: str, volume_id: str,
                                  value: bool) -> None:
        """2.85: change whether the attached volume goes with the server."""
        _srv, row = self.show(ctx, sid, volume_id)
        self._set(row.id, delete_on_termination=value)

    # ---- attach ------------------------------------------------------------------------
    def attach(self, ctx: AuthContext, sid: str, volume_id: str, device: str | None,
               tag: str | None = None, delete_on_termination: bool = False,
               multiattach: bool = True) -> tuple[m.Server, m.BlockDeviceMapping]:
        """Reserve, export and record one volume of a server (ACTIVE or SHUTOFF);
        ``multiattach`` False (below 2.60) refuses a multiattach volume."""
        core = self.core
        api = self.api
        bdm_id = new_id()

        def reserve(s: Session) -> m.Server:
            srv = core.server(s, ctx, sid)
            _check_state(srv, "attach_volume")
            rows = volumes_of(s, [sid]).get(sid, [])
            if any(r.volume_id == volume_id for r in rows):
                raise BadRequest(f"Invalid volume: volume {volume_id} is already attached "
                                 f"to the instance {sid}.")
            used = {"/dev/vda", *local_disk_devices(srv.flavor), *(r.device for r in rows)}
            name = _device(device, used)
            now = utcnow()
            s.add(m.BlockDeviceMapping(
                id=bdm_id, server_id=sid, volume_id=volume_id, device=name, tag=tag,
                boot_index=None, delete_on_termination=delete_on_termination,
                status="reserving", created_at=now, updated_at=now))
            s.expunge(srv)
            return srv

        srv = core.transaction(reserve)
        project, host = srv.project_id, srv.host or ""
        attachment_id: str | None = None
        try:
            try:
                vol = api.get_volume(project, volume_id)
            except ServiceError as exc:
                raise _volume_error(exc, f"Volume {volume_id} could not be found.") from None
            # The service user (admin) sees every project's volumes: a caller may attach
            # those it could see itself, as Nova asks the volume API with the caller's
            # token: its server's project's, and any project's for an admin.
            owner = vol.get("os-vol-tenant-attr:tenant_id", project)
            if owner != project and not ctx.is_admin:
                raise NotFound(f"Volume {volume_id} could not be found.")
            if vol.get("multiattach") and not multiattach:
                raise BadRequest("Multiattach volumes are only supported starting with "
                                 "compute API version 2.60.")
            try:
                attachment_id = str(api.create_attachment(project, volume_id, sid)["id"])
            except ServiceError as exc:
                raise _volume_error(exc, f"Volume {volume_id} could not be found.") from None
            self._set(bdm_id, attachment_id=attachment_id)
            host_ip = self._host_ip(host)
            try:
                att = api.update_attachment(project, attachment_id,
                                            connector_of(host, host_ip))
            except ServiceError as exc:
                if exc.status == 404:
                    raise Conflict(f"The attachment of volume {volume_id} vanished.") from None
                if exc.temporary or exc.status >= 500:
                    raise ServiceUnavailable(f"Volume {volume_id} could not be exported to "
                                             f"host {host}: {exc}") from None
                raise Conflict(f"Volume {volume_id} could not be exported to host {host}: "
                               f"{exc}") from None
            info = att.get("connection_info")
            if not isinstance(info, dict) or not info.get("data"):
                raise ServiceUnavailable(f"The volume service gave no connection_info for "
                                         f"volume {volume_id}.")
        except BaseException:
            self._undo(project, bdm_id, attachment_id)
            raise

        def ready(s: Session) -> m.BlockDeviceMapping:
            row = s.get(m.BlockDeviceMapping, bdm_id)
            live = s.get(m.Server, sid)
            if row is None or live is None or live.deleted:
                raise NotFound(f"Instance {sid} could not be found.")
            row.connection_info, row.status = with_size(info, vol), "attaching"
            row.updated_at = utcnow()
            core.bump(s, live.host)
            record_action(s, ctx, live, "attach_volume")  # compute/instance_actions.py
            s.flush()
            s.expunge(row)
            return row

        try:
            return srv, core.transaction(ready)
        except NotFound:
            self._undo(project, bdm_id, attachment_id)
            raise

    def _host_ip(self, host: str) -> str:
        with self.core.db.session() as s:
            row = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == host)).first()
            return row.host_ip if row is not None else ""

    def _set(self, bdm_id: str, **values: Any) -> None:
        def work(s: Session) -> None:
            row = s.get(m.BlockDeviceMapping, bdm_id)
            if row is not None:
                for k, v in values.items():
                    setattr(row, k, v)
                row.updated_at = utcnow()
        self.core.transaction(work)

    def _undo(self, project: str, bdm_id: str, attachment_id: str | None) -> None:
        if attachment_id:
            try:
                self.api.delete_attachment(project, attachment_id)
            except ServiceError as exc:
                LOG.warning("attachment %s could not be deleted: %s", attachment_id, exc)
                return  # the row keeps the attachment id, so a later delete finds it
        self.core.transaction(lambda s: s.execute(sa.delete(m.BlockDeviceMapping).where(
            m.BlockDeviceMapping.id == bdm_id)))

    # ---- detach ------------------------------------------------------------------------
    def detach(self, ctx: AuthContext, sid: str, volume_id: str) -> None:
        """Ask the agent to unplug the volume; its report finishes the detach."""
        core = self.core

        def work(s: Session) -> None:
            srv = core.server(s, ctx, sid)
            _check_state(srv, "detach_volume")
            row = s.scalars(sa.select(m.BlockDeviceMapping).where(
                m.BlockDeviceMapping.server_id == sid,
                m.BlockDeviceMapping.volume_id == volume_id)).first()
            if row is None:
                raise NotFound(f"volume_id not found: {volume_id}")
            if row.boot_index == 0:
                raise BadRequest("Can't detach root device volume")
            if row.status == "reserving":
                raise Conflict(f"Volume {volume_id} is still being attached.")
            if row.status == "detaching":
                return
            row.status, row.updated_at = "detaching", utcnow()
            core.bump(s, srv.host)
            record_action(s, ctx, srv, "detach_volume")

        core.transaction(work)

    # ---- the agent's report ------------------------------------------------------------
    def after_report(self, sid: str, plugged: list[str]) -> None:
        """The agent listed the attachments plugged into the domain: complete the new
        ones, delete the ones it has unplugged, and undo attaches that were cut short
        (``reserving`` for ``RESERVING_STALE`` seconds)."""
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            rows = volumes_of(s, [sid]).get(sid, [])
            project = srv.project_id if srv is not None else ""
        stale = utcnow() - timedelta(seconds=RESERVING_STALE)
        for row in rows:
            aid = row.attachment_id
            if row.status == "reserving" and row.updated_at < stale:
                # an attach whose API process died before the export answered
                LOG.warning("server %s: dropping the unfinished attach of volume %s", sid,
                            row.volume_id)
                self._undo(project, row.id, aid)
                continue
            if not aid:
                continue
            try:
                if row.status == "attaching" and aid in plugged:
                    self.api.complete_attachment(project, aid)
                    self._move(row.id, "attaching", "attached")
                elif row.status == "detaching" and aid not in plugged:
                    self.api.delete_attachment(project, aid)
                    self._move(row.id, "detaching", None)
            except (ServiceError, ApiError) as exc:
                LOG.warning("server %s volume %s: %s (retried on the next report)", sid,
                            row.volume_id, exc)

    def volume_extended(self, sid: str, volume_id: str) -> bool:
        """Cinder's ``volume-extended`` event: re-read the attached volume's size now and,
        when it grew, store it and wake the host's agent. False when the server has no such
        attached volume."""
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            row = next((r for r in volumes_of(s, [sid]).get(sid, [])
                        if r.volume_id == volume_id and r.status == "attached"), None)
            project = srv.project_id if srv is not None else ""
        if row is None:
            return False
        self._refresh_size(project, row)
        return True

    def _refresh_size(self, project: str, row: m.BlockDeviceMapping) -> None:
        """Store the volume's size when it grew (an extend while attached) and wake the
        host's agent, which has QEMU re-read the disk's capacity."""
        try:
            size = self.api.get_volume(project, row.volume_id).get("size")
        except (ServiceError, ApiError) as exc:
            LOG.warning("server %s volume %s: size not read: %s", row.server_id,
                        row.volume_id, exc)
            return
        if not isinstance(size, int) or size <= (_size_of(row.connection_info) or 0):
            return

        def work(s: Session) -> None:
            cur = s.get(m.BlockDeviceMapping, row.id)
            srv = s.get(m.Server, row.server_id)
            if cur is None or srv is None or not cur.connection_info:
                return
            if size > (_size_of(cur.connection_info) or 0):
                cur.connection_info = {**cur.connection_info, SIZE_KEY: size}
                cur.updated_at = utcnow()
                self.core.bump(s, srv.host)
        self.core.transaction(work)
        LOG.info("server %s: volume %s is now %d GiB", row.server_id, row.volume_id, size)

    def _move(self, bdm_id: str, old: str, new: str | None) -> None:
        t = cast(sa.Table, m.BlockDeviceMapping.__table__)

        def work(s: Session) -> None:
            where = sa.and_(t.c.id == bdm_id, t.c.status == old)
            if new is None:
                s.execute(sa.delete(t).where(where))
            else:
                s.execute(sa.update(t).where(where).values(status=new, updated_at=utcnow()))
        self.core.transaction(work)

    # ---- server delete -----------------------------------------------------------------
    def release_all(self, sid: str) -> None:
        """The server is going away: delete its attachments (and the volumes marked
        delete_on_termination) and its rows. A volume API failure is logged; the row of
        that volume stays until a later delete of the server's rows."""
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            rows = volumes_of(s, [sid]).get(sid, [])
            project = srv.project_id if srv is not None else ""
        if not rows:
            return
        api: VolumeApi | None = getattr(self.core.downstream, "volumes", None)
        for row in rows:
            try:
                if api is not None and row.attachment_id:
                    api.delete_attachment(project, row.attachment_id)
                if api is not None and row.delete_on_termination:
                    api.delete_volume(project, row.volume_id)
            except ServiceError as exc:
                LOG.warning("server %s: volume %s not released: %s", sid, row.volume_id, exc)
        self.core.transaction(lambda s: s.execute(sa.delete(m.BlockDeviceMapping).where(
            m.BlockDeviceMapping.server_id == sid)))


def _check_state(srv: m.Server, action: str) -> None:
    if srv.vm_state not in CHANGEABLE or srv.task_state is not None or not srv.host:
        state = srv.vm_state if srv.task_state is None else f"task_state {srv.task_state}"
        raise Conflict(f"Cannot '{action}' instance {srv.id} while it is in "
                       f"vm_state {state}")


def local_disk_devices(flavor: dict[str, Any] | None) -> set[str]:
    """The device names the agent gives the flavor's local disks after ``vda``
    (agent/compute/virt/localdisks.py): the ephemeral disk first, then swap; a volume
    must never be given one of them."""
    flavor = flavor or {}
    count = (1 if int(flavor.get("ephemeral") or 0) > 0 else 0) \
        + (1 if int(flavor.get("swap") or 0) > 0 else 0)
    return {f"/dev/vd{letter}" for letter in DEVICE_LETTERS[:count]}


def _device(wanted: str | None, used: set[str]) -> str:
    """The device name asked for (``/dev/vdX``, free) or the next free one."""
    if wanted:
        name = wanted if wanted.startswith("/dev/") else f"/dev/{wanted}"
        if name in used:
            raise BadRequest(f"The supplied device path ({wanted}) is in use.")
        letter = name.removeprefix("/dev/vd")
        if not name.startswith("/dev/vd") or len(letter) != 1 or letter not in DEVICE_LETTERS:
            raise BadRequest(f"The supplied device path ({wanted}) is invalid: use /dev/vdb "
                             "to /dev/vdz.")
        return name
    for letter in DEVICE_LETTERS:
        if f"/dev/vd{letter}" not in used:
            return f"/dev/vd{letter}"
    raise BadRequest("No free device name is left on the server (vdb to vdz are used).")
