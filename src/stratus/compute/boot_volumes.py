"""Boot from volume and volumes given at create (``block_device_mapping_v2``).

:func:`parse_bdm_v2` reads the request (destination ``volume`` only: source ``image``,
``snapshot`` or ``blank`` make a new volume of ``volume_size`` GiB, ``volume`` takes an
existing one; ``boot_index`` 0 is the root disk, the server's ``image`` is then "").
:meth:`BootVolumes.prepare` makes or checks the volumes before the server row exists (a
failure leaves nothing); :meth:`BootVolumes.record` writes their mappings (``creating``);
once the scheduler has chosen the host, :meth:`BootVolumes.attach_all` waits for each
volume to be ``available`` and attaches it for that host as ``compute/volumes.py`` does
(reserve, the host's connector, ``connection_info``), before the server is handed to
its agent, which boots from the network disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.clients import ServiceError
from stratus.common.errors import ApiError, BadRequest, NotFound, ServiceUnavailable
from stratus.common.timeutil import new_id, utcnow
from stratus.compute import models as m
from stratus.compute.volumes import ServerVolumes, connector_of, local_disk_devices

if TYPE_CHECKING:
    from stratus.common.auth import AuthContext
    from stratus.compute.core import ComputeCore

LOG = logging.getLogger("stratus.compute")
SOURCES = ("image", "volume", "snapshot", "blank")
WAIT_AVAILABLE = 600.0  # seconds a new volume may take to become available
POLL = 1.0


@dataclass
class BootDevice:
    """One entry of block_device_mapping_v2 (destination volume)."""

    source_type: str
    uuid: str | None
    volume_size: int | None
    boot_index: int | None
    delete_on_termination: bool
    device_name: str | None = None
    tag: str | None = None
    volume_id: str = ""  # filled by prepare
    volume_type: str | None = None  # of the volume made (2.67)
    made: bool = False  # the volume was made for this server


def _int(value: Any, key: str, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r} is not an "
                         "integer.")
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r} is not an "
                         "integer.") from None
    if out < minimum:
        raise BadRequest(f"Invalid input for field/attribute {key}: {out} is less than the "
                         f"minimum of {minimum}.")
    return out


def _is_local_root(item: dict[str, Any]) -> bool:
    return (item.get("source_type") == "image" and str(item.get("boot_index")) == "0"
            and isinstance(item.get("uuid"), str) and bool(item.get("uuid")))


def local_root_image(raw: Any) -> str | None:
    """The image of an entry ``source_type image, destination_type local, boot_index 0``:
    the image booted from a local disk, as python-openstackclient sends it next to (or
    instead of) ``imageRef``; ``None`` without one."""
    if not isinstance(raw, list):
        return None
    for item in raw:
        if isinstance(item, dict) and item.get("destination_type") == "local" \
                and _is_local_root(item):
            return str(item["uuid"])
    return None


def parse_bdm_v2(raw: Any, flag: Callable[[Any, str], bool]) -> list[BootDevice]:
    """The block devices of a create request; 400 naming what is wrong."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("Invalid input: block_device_mapping_v2 must be a list.")
    out: list[BootDevice] = []
    for i, item in enumerate(raw):
        where = f"block_device_mapping_v2[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"Invalid input: {where} must be an object.")
        source = item.get("source_type")
        dest = item.get("destination_type", "volume")
        if source not in SOURCES:
            raise BadRequest(f"Invalid input: {where}.source_type must be one of "
                             f"{', '.join(SOURCES)}.")
        if dest == "local" and _is_local_root(item):
            continue  # the image as the local root disk: imageRef (local_root_image)
        if dest != "volume":
            raise BadRequest(f"Invalid input: {where}.destination_type {dest!r} is not "
                             "supported here: 'local' only for the image's root disk "
                             "(source_type image, boot_index 0), else 'volume'.")
        uuid = item.get("uuid")
        if source != "blank" and (not isinstance(uuid, str) or not uuid):
            raise BadRequest(f"Invalid input: {where}.uuid is required for source_type "
                             f"{source}.")
        size = _int(item.get("volume_size"), f"{where}.volume_size", 1)
        if source in ("image", "blank") and size is None:
            raise BadRequest(f"Invalid input: {where}.volume_size is required for "
                             f"source_type {source}.")
        boot = _int(item.get("boot_index"), f"{where}.boot_index", -1)
        if boot == 0 and source == "blank":
            raise BadRequest(f"Invalid input: {where}: a blank volume cannot be the boot "
                             "disk.")
        dot = item.get("delete_on_termination")
        vtype = item.get("volume_type")
        if vtype is not None and (not isinstance(vtype, str) or not 1 <= len(vtype) <= 255):
            raise BadRequest(f"Invalid input: {where}.volume_type must be 1 to 255 "
                             "characters.")
        if vtype is not None and source == "volume":
            raise BadRequest("Specifying a volume_type with source_type=volume is not "
                             "supported: the volume exists already.")
        out.append(BootDevice(
            source_type=str(source), uuid=uuid if source != "blank" else None,
            volume_size=size, boot_index=boot if boot is not None and boot >= 0 else None,
            delete_on_termination=flag(dot, "delete_on_termination")
            if dot is not None else False,
            device_name=item.get("device_name") if isinstance(item.get("device_name"), str)
            else None, tag=item.get("tag") if isinstance(item.get("tag"), str) else None,
            volume_type=vtype))
    if sum(1 for b in out if b.boot_index == 0) > 1:
        raise BadRequest("Invalid input: only one block device may have boot_index 0.")
    return out



def local_disk_gb(srv: m.Server) -> int:
    """The local disk a server claims on its host: the flavor's root disk, or none for a
    server booted from a volume (no image: its root disk is the volume, as Nova does not
    count a boot-from-volume server's root_gb against the host's local disk)."""
    return 0 if not srv.image_id else int(srv.flavor.get("disk") or 0)

class BootVolumes:
    """The volumes of a server being created (``ComputeCore`` has no attribute for it:
    build one per call)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core
        self.volumes = ServerVolumes(core)

    def prepare(self, ctx: AuthContext, devices: list[BootDevice], name: str) -> None:
        """Make the new volumes and check the given ones (of the caller's project); on a
        failure delete what was made and raise."""
        if not devices:
            return
        api = self.volumes.api
        project = ctx.project_id or ""
        try:
            for b in devices:
                if b.source_type == "volume":
                    assert b.uuid is not None
                    try:
                        vol = api.get_volume(project, b.uuid)
                    except ServiceError as exc:
                        if exc.status == 404:
                            raise BadRequest(f"Volume {b.uuid} could not be found.") from None
                        raise _error(exc, f"Volume {b.uuid}") from None
                    if vol.get("os-vol-tenant-attr:tenant_id", project) != project:
                        raise BadRequest(f"Volume {b.uuid} could not be found.")
                    if vol.get("status") != "available":
                        raise BadRequest(f"Invalid volume: volume {b.uuid} is "
                                         f"{vol.get('status')}, not available.")
                    if b.boot_index == 0 and str(vol.get("bootable", "true")).lower() \
                            in ("false", "0"):  # Nova's 400 for a non-bootable root
                        raise BadRequest(f"Block Device {b.uuid} is not bootable: the "
                                         "boot volume (boot_index 0) must be marked "
                                         "bootable in the volume API.")
                    b.volume_id = b.uuid
                    continue
                body: dict[str, Any] = {"name": f"{name}-{b.source_type}"}
                if b.volume_size is not None:
                    body["size"] = b.volume_size
                if b.volume_type is not None:
                    body["volume_type"] = b.volume_type
                if b.source_type == "image":
                    body["imageRef"] = b.uuid
                elif b.source_type == "snapshot":
                    assert b.uuid is not None
                    self._wait_snapshot(project, b.uuid)
                    body["snapshot_id"] = b.uuid
                try:
                    made = api.create_volume(project, body)
                except ServiceError as exc:
                    raise _error(exc, f"The {b.source_type} volume cannot be made") from None
                b.volume_id, b.made = str(made["id"]), True
        except BaseException:
            for b in devices:
                if b.made:
                    try:
                        api.delete_volume(project, b.volume_id)
                    except ServiceError as exc:
                        LOG.warning("volume %s made for a failed create not deleted: %s",
                                    b.volume_id, exc)
            raise

    def prepare_undo(self, ctx: AuthContext, devices: list[BootDevice]) -> None:
        """Delete the volumes :meth:`prepare` made (the server was not recorded)."""
        for b in devices:
            if b.made:
                try:
                    self.volumes.api.delete_volume(ctx.project_id or "", b.volume_id)
                except ServiceError as exc:
                    LOG.warning("volume %s made for a failed create not deleted: %s",
                                b.volume_id, exc)

    def record(self, sid: str, devices: list[BootDevice]) -> None:
        """The server's mappings, ``creating`` until :meth:`attach_all`."""
        if not devices:
            return

        def work(s: Session) -> None:
            now = utcnow()
            srv = s.get(m.Server, sid)
            # the flavor's ephemeral and swap disks take the first letters after vda
            taken = local_disk_devices(srv.flavor if srv is not None else None)
            letters = iter(x for x in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{x}" not in taken)
            for b in sorted(devices, key=lambda x: (x.boot_index is None,
                                                     x.boot_index or 0)):
                device = "/dev/vda" if b.boot_index == 0 else f"/dev/vd{next(letters)}"
                s.add(m.BlockDeviceMapping(
                    id=new_id(), server_id=sid, volume_id=b.volume_id, device=device,
                    tag=b.tag, boot_index=b.boot_index,
                    delete_on_termination=b.delete_on_termination,
                    status="creating", created_at=now, updated_at=now))

        self.core.transaction(work)

    def attach_all(self, sid: str, host: str, fail: Callable[[str], None]) -> bool:
        """Wait for the server's new volumes and attach them for ``host``; False (the
        server failed with the reason, through ``fail``) when one cannot be."""
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            project = srv.project_id if srv is not None else ""
            rows = list(s.scalars(sa.select(m.BlockDeviceMapping).where(
                m.BlockDeviceMapping.server_id == sid,
                m.BlockDeviceMapping.status == "creating")))
        if not rows:
            return True
        host_ip = self.volumes._host_ip(host)
        try:
            api = self.volumes.api
            for row in rows:
                self._wait_available(project, row.volume_id)
                try:
                    aid = str(api.create_attachment(project, row.volume_id, sid)["id"])
                except ServiceError as exc:
                    raise _error(exc, f"Volume {row.volume_id} cannot be reserved") from None
                self.volumes._set(row.id, attachment_id=aid, status="reserving")
                try:
                    att = api.update_attachment(project, aid, connector_of(host, host_ip))
                except ServiceError as exc:
                    raise _error(exc, f"Volume {row.volume_id} could not be exported to "
                                      f"host {host}") from None
                info = att.get("connection_info")
                if not isinstance(info, dict) or not info.get("data"):
                    raise BadRequest(f"The volume service gave no connection_info for "
                                     f"volume {row.volume_id}.")
                self.volumes._set(row.id, connection_info=info, status="attaching")
        except (ApiError, ServiceError) as exc:
            fail(f"Block device setup failed: {exc}")
            return False
        return True

    def _wait_snapshot(self, project: str, snapshot_id: str) -> None:
        """Wait for a snapshot of the caller's project to be ``available`` (one a
        createImage of a volume-backed server has just made may still be ``creating``);
        400 when it is not the project's, gone or in error."""
        deadline = time.monotonic() + WAIT_AVAILABLE
        while True:
            try:
                snap = self.volumes.api.get_snapshot(project, snapshot_id)
            except ServiceError as exc:
                if exc.status == 404:
                    raise BadRequest(f"Snapshot {snapshot_id} could not be found.") from None
                raise _error(exc, f"Snapshot {snapshot_id}") from None
            owner = snap.get("os-extended-snapshot-attributes:project_id", project)
            if owner != project:  # the service user sees every project's snapshots
                raise BadRequest(f"Snapshot {snapshot_id} could not be found.")
            status = snap.get("status")
            if status == "available":
                return
            if status != "creating":
                raise BadRequest(f"Invalid snapshot: snapshot {snapshot_id} is {status}, "
                                 "not available.")
            if time.monotonic() >= deadline:
                raise BadRequest(f"Snapshot {snapshot_id} was not available after "
                                 f"{WAIT_AVAILABLE:.0f} s (its status: {status}).")
            time.sleep(POLL)

    def _wait_available(self, project: str, volume_id: str) -> None:
        deadline = time.monotonic() + WAIT_AVAILABLE
        while True:
            try:
                status = self.volumes.api.get_volume(project, volume_id).get("status")
            except ServiceError as exc:
                if exc.status == 404:
                    raise NotFound(f"Volume {volume_id} is gone.") from None
                if not exc.temporary:
                    raise
                status = None
            if status == "available":
                return
            if status == "error":
                raise BadRequest(f"Volume {volume_id} went to error while it was made.")
            if time.monotonic() >= deadline:
                raise BadRequest(f"Volume {volume_id} was not available after "
                                 f"{WAIT_AVAILABLE:.0f} s (its status: {status}).")
            time.sleep(POLL)


def _error(exc: ServiceError, what: str) -> ApiError:
    if exc.temporary or exc.status in (0, 503):
        return ServiceUnavailable(f"{what}: the volume service cannot be reached: {exc}")
    return BadRequest(f"{what}: {exc}")
