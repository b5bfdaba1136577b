"""Snapshots of volume-backed servers (createImage of a server booted from a volume) and
booting from the image they make (Nova's "image-defined block device mapping").

A volume-backed server has no local disk for its agent to upload. As Nova does, the
compute API snapshots every volume of the server through the volume API (``force``: the
server may be running) and registers an image with no data of its own: its properties
carry ``block_device_mapping`` (a JSON list of block device mapping v2 entries, one per
volume: ``source_type snapshot``, ``destination_type volume``, ``snapshot_id``,
``boot_index``, ``volume_size``, ``delete_on_termination``, ``device_name``, ...),
``bdm_v2`` and ``root_device_name``; a zero-byte upload makes it ``active`` at once.

A server created from such an image gets its volumes made from those snapshots
(:func:`image_block_devices`, merged with the request's own mapping by
:func:`merge_devices`); it is a volume-backed server (its ``image`` is "").
Deleting the image leaves the snapshots (their owner deletes them, as with Nova).

A failure (the volume or image API down or refusing) deletes what was made (the image,
the snapshots, force-deleted since they may still be ``creating``), ends the server's
``createImage`` with an Error event and answers 503 (a service down) or 4xx.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stratus.common.clients import ServiceError
from stratus.common.errors import ApiError, BadRequest, Conflict, Forbidden, ServiceUnavailable
from stratus.compute import models as m
from stratus.compute.boot_volumes import BootDevice, parse_bdm_v2
from stratus.compute.volumes import PLUGGED, ServerVolumes, volumes_of

if TYPE_CHECKING:
    from stratus.common.auth import AuthContext
    from stratus.compute.core import ComputeCore

LOG = logging.getLogger("stratus.compute")
BDM_PROPERTY = "block_device_mapping"
# the image properties the root volume's image metadata (volume_image_metadata) has that
# describe the volume's origin, not the new image
ORIGIN_KEYS = ("image_id", "image_name", "checksum", "size", "disk_format",
               "container_format", "min_disk", "min_ram")
# where the image mapping keeps the source of each source_type
SOURCE_KEYS = {"snapshot": "snapshot_id", "volume": "volume_id", "image": "image_id"}


def image_mapping(row: m.BlockDeviceMapping, snapshot_id: str, size: Any) -> dict[str, Any]:
    """The image's block device mapping entry of one volume snapshot."""
    return {"source_type": "snapshot", "destination_type": "volume",
            "snapshot_id": snapshot_id, "volume_id": None, "image_id": None,
            "boot_index": row.boot_index, "volume_size": size if isinstance(size, int)
            else None, "delete_on_termination": bool(row.delete_on_termination),
            "device_name": row.device, "tag": row.tag, "device_type": "disk",
            "disk_bus": None, "guest_format": None, "no_device": None, "volume_type": None}


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes", "false", "0", "no"):
        return str(value).lower() in ("true", "1", "yes")
    raise BadRequest(f"Invalid input: {key} must be a boolean, not {value!r}.")


def image_block_devices(image: dict[str, Any]) -> list[BootDevice]:
    """The volumes a server booted from ``image`` (as ``check_image`` describes it) gets
    from its ``block_device_mapping`` property; [] without one. Entries with
    destination ``local`` (ephemeral and swap disks: the flavor gives those) are left out.
    400 naming the image when the property is not a list of mappings."""
    props = image.get("properties") or {}
    raw = props.get(BDM_PROPERTY)
    if raw is None:
        return []
    where = f"Image {image.get('id')}'s {BDM_PROPERTY} property"
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BadRequest(f"{where} is not JSON: it must be a JSON list of block "
                             "device mappings.") from None
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise BadRequest(f"{where} must be a list of block device mappings.")
    entries = []
    for item in raw:
        if item.get("destination_type", "volume") == "local" or item.get("no_device"):
            continue
        source = item.get("source_type")
        entries.append({
            "source_type": source, "destination_type": "volume",
            "uuid": item.get(SOURCE_KEYS.get(str(source), "uuid"), item.get("uuid")),
            "volume_size": item.get("volume_size"), "boot_index": item.get("boot_index"),
            "delete_on_termination": item.get("delete_on_termination"),
            "device_name": item.get("device_name"), "tag": item.get("tag"),
            "volume_type": item.get("volume_type") if source != "volume" else None})
    try:
        return parse_bdm_v2(entries, _flag)
    except BadRequest as exc:
        raise BadRequest(f"{where} cannot be used: {exc.message}") from None


def merge_devices(from_image: list[BootDevice], requested: list[BootDevice]
                  ) -> list[BootDevice]:
    """The image's volumes with the request's: a requested device of the same
    ``device_name`` replaces the image's, and a requested boot volume (boot_index 0)
    replaces the image's root (as Nova merges them)."""
    names = {b.device_name.removeprefix("/dev/") for b in requested if b.device_name}
    own_root = any(b.boot_index == 0 for b in requested)
    kept = [b for b in from_image
            if not (b.device_name and b.device_name.removeprefix("/dev/") in names)
            and not (own_root and b.boot_index == 0)]
    return [*kept, *requested]


def _volume_error(exc: ServiceError, what: str) -> ApiError:
    if exc.temporary or exc.status == 0 or exc.status >= 500:
        return ServiceUnavailable(f"{what}: the volume service cannot be reached: {exc}")
    if exc.status == 413:  # over the snapshot or gigabytes quota
        return Forbidden(f"{what}: {exc}")
    return Conflict(f"{what}: {exc}")


class VolumeBackedSnapshot:
    """createImage of one volume-backed server (``ComputeCore`` has no attribute for it:
    build one per call)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def create(self, ctx: AuthContext, srv: m.Server, name: str, extra: dict[str, str],
               finish: Callable[[bool, str], bool]) -> dict[str, Any]:
        """Snapshot the volumes of ``srv`` (in the createImage step) and register the
        image; ``finish(ok, details)`` ends the step (False: the server left it). Returns
        the image."""
        core = self.core
        with core.db.session() as s:
            rows = [r for r in volumes_of(s, [srv.id]).get(srv.id, []) if r.status in PLUGGED]
        rows.sort(key=lambda r: (r.boot_index is None, r.boot_index or 0, r.device))
        project = srv.project_id
        made: list[str] = []
        image_id: str | None = None
        try:
            if not any(r.boot_index == 0 for r in rows):
                raise Conflict(f"Cannot 'createImage' instance {srv.id}: its root volume is "
                               "not attached yet.")
            api = ServerVolumes(core).api
            mappings, origin = [], {}
            for row in rows:
                try:
                    vol = api.get_volume(project, row.volume_id)
                    snap = api.create_snapshot(project, row.volume_id,
                                               f"snapshot for {name}", "")
                except ServiceError as exc:
                    raise _volume_error(exc, f"Volume {row.volume_id} cannot be "
                                             "snapshotted") from None
                made.append(str(snap["id"]))
                if row.boot_index == 0:
                    origin = dict(vol.get("volume_image_metadata") or {})
                mappings.append(image_mapping(row, str(snap["id"]),
                                              snap.get("size", vol.get("size"))))
            body = self._image_body(srv, name, extra, mappings, origin)
            try:
                image = core.downstream.create_image(ctx.token, body)
                image_id = str(image["id"])
                core.downstream.upload_image(ctx.token, image_id, b"")
            except ServiceError as exc:
                if exc.temporary or exc.status >= 500:
                    raise ServiceUnavailable(f"The image service failed: {exc}") from None
                raise BadRequest(f"The image service refused the snapshot: {exc}") from None
        except BaseException as exc:
            self._undo(ctx, project, image_id, made)
            details = exc.message if isinstance(exc, ApiError) else str(exc)
            finish(False, f"The snapshot of the volume-backed server failed: {details}")
            raise
        if not finish(True, ""):
            self._undo(ctx, project, image_id, made)
            raise Conflict(f"Cannot 'createImage' instance {srv.id} while it is in "
                           "task_state busy")
        image["status"] = "active"
        return image

    @staticmethod
    def _image_body(srv: m.Server, name: str, extra: dict[str, str],
                    mappings: list[dict[str, Any]], origin: dict[str, Any]
                    ) -> dict[str, Any]:
        """Glance's properties are strings: the mapping as JSON, ``bdm_v2`` as "True"."""
        props = {k: str(v) for k, v in origin.items()
                 if k not in ORIGIN_KEYS and isinstance(v, (str, int, float))}

        def number(key: str) -> int:
            try:
                return max(int(origin.get(key) or 0), 0)
            except (TypeError, ValueError):
                return 0

        # the request's metadata wins over the snapshot's descriptive properties (as in
        # Nova), not over the image's own fields nor the mapping that makes it bootable
        return {**props, "instance_uuid": srv.id, "image_type": "snapshot",
                "user_id": srv.user_id, **extra, "name": name, "visibility": "private",
                # the formats describe no data here: Nova sets these two for the image
                # API, which takes data (even none) only with both set
                "disk_format": "qcow2", "container_format": "bare",
                "min_disk": number("min_disk"), "min_ram": number("min_ram"),
                BDM_PROPERTY: json.dumps(mappings), "bdm_v2": "True",
                "root_device_name": "/dev/vda"}

    def _undo(self, ctx: AuthContext, project: str, image_id: str | None,
              snapshots: list[str]) -> None:
        if image_id is not None:
            with contextlib.suppress(ServiceError):
                self.core.downstream.delete_image(ctx.token, image_id)
        if not snapshots:
            return
        api = ServerVolumes(self.core).api
        for sid in snapshots:
            try:
                api.force_delete_snapshot(project, sid)
            except ServiceError as exc:
                LOG.warning("snapshot %s of a failed createImage not deleted: %s", sid, exc)
