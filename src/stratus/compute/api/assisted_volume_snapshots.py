"""os-assisted-volume-snapshots (admin or service): refused with 501 for every attached
volume, as a driver without the feature cannot do it.

Nova's assisted snapshots exist for file-backed volumes (NFS, GlusterFS shares): the
volume service asks the hypervisor to write a qcow2 overlay (``create_info.new_file``)
over the file the guest uses, since only the hypervisor may touch it while it runs.
Stratus's volumes are iSCSI block devices exported by the storage host (tgt over LVM):
the hypervisor has no file of theirs to put an overlay on, and the volume service
snapshots its own logical volumes without the hypervisor. So a well-formed request for
an attached volume answers 501 (saying to snapshot it through the volume API), a volume
attached to no server 404, a malformed request 400. Tempest's test of it is skipped in
etc/tempest-skips.txt with this reason.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import models as m
from stratus.compute.api.usage import NotImplementedByDriver
from stratus.compute.core import ComputeCore
from stratus.compute.volumes import PLUGGED

routes = Routes()
P = "/v2.1/os-assisted-volume-snapshots"
POLICY = "os_compute_api:os-assisted-volume-snapshots"
SNAPSHOT_TYPES = ("qcow2",)


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"Invalid input for field/attribute {where}: '{key}' is required "
                         "and must be a non-empty string.")
    return value


def check_create(body: Any) -> tuple[str, str]:
    """The volume id and snapshot id of a create request; 400 naming what is wrong."""
    snap = body.get("snapshot") if isinstance(body, dict) else None
    if not isinstance(snap, dict):
        raise BadRequest("Invalid input: the body must be {\"snapshot\": {\"volume_id\": ..., "
                         "\"create_info\": {\"snapshot_id\": ..., \"type\": \"qcow2\", "
                         "\"new_file\": ...}}}.")
    volume_id = _text(snap, "volume_id", "snapshot")
    info = snap.get("create_info")
    if not isinstance(info, dict):
        raise BadRequest("Invalid input for field/attribute snapshot: 'create_info' must be "
                         "an object with snapshot_id, type and new_file.")
    snapshot_id = _text(info, "snapshot_id", "create_info")
    if info.get("type") not in SNAPSHOT_TYPES:
        raise BadRequest(f"Invalid input for field/attribute create_info: 'type' must be "
                         f"one of {', '.join(SNAPSHOT_TYPES)}, not {info.get('type')!r}.")
    _text(info, "new_file", "create_info")
    return volume_id, snapshot_id


def check_delete(raw: str | None) -> str:
    """The volume id of ``delete_info`` (a JSON object with volume_id); 400 otherwise."""
    try:
        info = json.loads(raw) if raw is not None else None
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise BadRequest("The query parameter delete_info is required: a JSON object with "
                         "volume_id, e.g. delete_info={\"volume_id\": \"<uuid>\"}.")
    return _text(info, "volume_id", "delete_info")


def refuse(svc: ComputeCore, volume_id: str) -> NotImplementedByDriver:
    """404 when the volume is attached to no server; else the 501 that says why."""
    with svc.db.session() as s:
        row = s.scalars(sa.select(m.BlockDeviceMapping).where(
            m.BlockDeviceMapping.volume_id == volume_id,
            m.BlockDeviceMapping.status.in_(PLUGGED))).first()
    if row is None:
        raise NotFound(f"Volume {volume_id} is not attached to any server.")
    return NotImplementedByDriver(
        f"Volume {volume_id} is an iSCSI block device of the volume service: the "
        "hypervisor has no file of it to snapshot (assisted snapshots are for file-backed "
        "volumes). Snapshot it through the volume API (POST /v3/{project_id}/snapshots).")


@routes.add("POST", P)
def create(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, f"{POLICY}:create")
    volume_id, _snapshot_id = check_create(req.body)
    raise refuse(svc, volume_id)


@routes.add("DELETE", P + "/{snapshot_id}")
def delete(req: Req, svc: ComputeCore) -> None:
    svc.require_admin(req.ctx, f"{POLICY}:delete")
    raise refuse(svc, check_delete(req.query.get("delete_info")))
