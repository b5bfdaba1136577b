"""Volumes: create (blank, from an image, a volume or a snapshot), read, update, delete,
and the actions that are not about attaching (extend, bootable, read-only, upload to an
image, reset status, metadata).

Cinder's guards answer 400 (``Invalid volume: ...``) when a volume's status does not allow
an action; quotas answer 413. A create or an action is one transaction: the row, its
quota and the storage host's generation change together, or nothing does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.crashpoints import crash_point
from stratus.common.errors import BadRequest, NotFound, ServiceUnavailable
from stratus.common.timeutil import new_id, utcnow
from stratus.volume import models as m
from stratus.volume.images import ServiceError

if TYPE_CHECKING:
    from stratus.volume.core import VolumeCore

T = TypeVar("T")
GIB = 1024**3
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
STATUSES = ("creating", "available", "reserved", "attaching", "detaching", "in-use",
            "maintenance", "deleting", "awaiting-transfer", "error", "error_deleting",
            "backing-up", "restoring-backup", "error_backing-up", "error_restoring",
            "error_extending", "downloading", "uploading", "retyping", "extending")
ATTACH_STATUSES = ("attached", "detached", "attaching", "detaching", "reserved",
                   "error_attaching", "error_detaching")


@dataclass
class Shown:
    """A volume with what its rendering needs."""

    volume: m.Volume
    type_name: str
    attachments: list[m.Attachment] = field(default_factory=list)


@dataclass
class CreateSpec:
    size: int | None = None
    name: str | None = None
    description: str | None = None
    image_id: str | None = None
    source_volid: str | None = None
    snapshot_id: str | None = None
    volume_type: str | None = None
    availability_zone: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    multiattach: bool = False


def invalid(message: str) -> BadRequest:
    return BadRequest(f"Invalid volume: {message}")


def expect(vol: m.Volume, allowed: tuple[str, ...], action: str) -> None:
    if vol.status not in allowed:
        raise invalid(f"Volume {vol.id} status must be {' or '.join(allowed)} to {action}, "
                      f"but the current status is: {vol.status}.")


class Volumes:
    def __init__(self, core: VolumeCore) -> None:
        self.core = core

    # ---- reading ---------------------------------------------------------------------

    def shown(self, s: Session, vols: list[m.Volume]) -> list[Shown]:
        names = self.core.types.names(s)
        ids = [v.id for v in vols]
        atts: dict[str, list[m.Attachment]] = {}
        if ids:
            for att in s.scalars(sa.select(m.Attachment).where(m.Attachment.volume_id.in_(ids))
                                 .order_by(m.Attachment.created_at)):
                atts.setdefault(att.volume_id, []).append(att)
        return [Shown(v, names.get(v.volume_type_id, v.volume_type_id), atts.get(v.id, []))
                for v in vols]

    def visible(self, ctx: AuthContext, project_id: str, all_projects: bool) -> list[Shown]:
        with self.core.db.session() as s:
            q = sa.select(m.Volume)
            if not (all_projects and ctx.is_admin):
                q = q.where(m.Volume.project_id == project_id)
            return self.shown(s, list(s.scalars(q)))

    def show(self, ctx: AuthContext, volume_id: str) -> Shown:
        with self.core.db.session() as s:
            return self.shown(s, [self.core.volume(s, ctx, volume_id)])[0]

    def _act(self, ctx: AuthContext, volume_id: str,
             work: Callable[[Session, m.Volume], T]) -> T:
        """Run ``work`` on the locked volume in one transaction."""
        def run(s: Session) -> T:
            vol = self.core.volume(s, ctx, volume_id, lock=True)
            result = work(s, vol)
            vol.updated_at = utcnow(precise=True)
            return result
        return self.core.transaction(run)

    # ---- create ----------------------------------------------------------------------

    def _image(self, ctx: AuthContext, image_id: str) -> dict[str, Any]:
        if self.core.images is None:
            raise ServiceUnavailable("No image API is configured ([volume] image_url).")
        try:
            image = self.core.images.get_image(ctx.token, image_id)
        except ServiceError as exc:
            if exc.status in (400, 403, 404):
                raise BadRequest(f"Invalid image identifier or unable to access requested "
                                 f"image: {image_id}.") from None
            raise ServiceUnavailable(f"The image API cannot be reached: {exc}") from None
        if image.get("status") != "active":
            raise BadRequest(f"Image {image_id} is not active (status {image.get('status')}).")
        return image

    def create(self, ctx: AuthContext, project_id: str, spec: CreateSpec) -> Shown:
        sources = [k for k in ("image_id", "source_volid", "snapshot_id") if getattr(spec, k)]
        if len(sources) > 1:
            raise BadRequest("Invalid input received: only one of imageRef, source_volid and "
                             "snapshot_id may be given.")
        zone = spec.availability_zone or self.core.settings.default_availability_zone
        if zone != self.core.settings.default_availability_zone:
            raise BadRequest(f"Invalid input received: Availability zone '{zone}' is invalid.")
        image = self._image(ctx, spec.image_id) if spec.image_id else None

        def work(s: Session) -> Shown:
            size = spec.size
            kind, source_id, host = "blank", None, None
            bootable, image_meta, type_id = False, None, None
            if image is not None:
                kind, source_id, bootable = "image", image["id"], True
                # The disk the image holds: its virtual size when the image API knows it
                # (a qcow2 file is smaller than its disk), else the file's size.
                disk = int(image.get("virtual_size") or image.get("size") or 0)
                need = max(math.ceil(disk / GIB), int(image.get("min_disk") or 0), 1)
                size = need if size is None else size
                if size < need:
                    raise BadRequest(f"Invalid input received: Size of specified image "
                                     f"{need}G is larger than volume size {size}G.")
                image_meta = {k: str(image[k]) for k in (
                    "checksum", "container_format", "disk_format", "min_disk", "min_ram",
                    "size") if image.get(k) is not None}
                image_meta.update(image_id=image["id"], image_name=str(image.get("name") or ""))
            elif spec.snapshot_id:
                snap = self.core.snapshot(s, ctx, spec.snapshot_id)
                if snap.status != "available":
                    raise BadRequest(f"Invalid snapshot: Originating snapshot status must be "
                                     f"'available' to create a volume, not {snap.status}.")
                origin = s.get(m.Volume, snap.volume_id)
                kind, source_id = "snapshot", snap.id
                host = snap.host
                size = snap.size if size is None else size
                if size < snap.size:
                    raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot "
                                     f"be smaller than the snapshot size {snap.size}GB.")
                if origin is not None:
                    bootable, type_id = origin.bootable, origin.volume_type_id
                    image_meta = origin.image_metadata
            elif spec.source_volid:
                src = self.core.volume(s, ctx, spec.source_volid)
                if src.status not in ("available", "in-use"):
                    raise invalid(f"Source volume {src.id} status must be available or "
                                  f"in-use to clone it, not {src.status}.")
                kind, source_id, host = "volume", src.id, src.host
                size = src.size if size is None else size
                if size < src.size:
                    raise BadRequest(f"Invalid input received: Clones currently must be >= "
                                     f"original volume size ({size}GB < {src.size}GB).")
                bootable, type_id = src.bootable, src.volume_type_id
                image_meta = src.image_metadata
            if size is None:
                raise BadRequest("Invalid input: 'size' is a required property (or give "
                                 "imageRef, snapshot_id or source_volid).")
            vt = (self.core.types.find(s, spec.volume_type) if spec.volume_type else
                  s.get(m.VolumeType, type_id) if type_id else None)
            vt = vt or self.core.types.ensure_default(s)
            self.core.quotas.check(s, project_id, volumes=1, gigabytes=size)
            multiattach = spec.multiattach or str(
                (vt.extra_specs or {}).get("multiattach", "")).lower() in ("<is> true", "true")
            placed = self.core.storage.place(s, size, vt, host, kind)
            now = utcnow(precise=True)
            vol = m.Volume(
                id=new_id(), project_id=project_id, user_id=ctx.user_id, name=spec.name,
                description=spec.description, size=size,
                status="creating" if placed else "error", attach_status="detached",
                availability_zone=zone, volume_type_id=vt.id,
                host=placed.host if placed else None,
                format=self.core.storage.format_for(placed) if placed else "raw",
                ready=False, bootable=bootable, readonly=False, multiattach=multiattach,
                source_kind=kind, source_id=source_id, metadata_=dict(spec.metadata),
                image_metadata=image_meta,
                fault=None if placed else "No valid backend was found: no storage host is up "
                                          "with enough free space.",
                created_at=now, updated_at=now)
            s.add(vol)
            self.core.bump(s, vol.host)
            s.flush()
            crash_point("volume.create.before_commit")  # nothing made: the row is not kept
            return self.shown(s, [vol])[0]
        shown = self.core.transaction(work)
        crash_point("volume.create.after_commit")  # made; the caller gets no answer
        return shown

    # ---- update / delete -------------------------------------------------------------

    def update(self, ctx: AuthContext, volume_id: str, changes: dict[str, Any]) -> Shown:
        def work(s: Session, vol: m.Volume) -> Shown:
            for key, value in changes.items():
                if key == "metadata":
                    vol.metadata_ = dict(value)
                else:
                    setattr(vol, key, value)
            return self.shown(s, [vol])[0]
        return self._act(ctx, volume_id, work)

    def delete(self, ctx: AuthContext, volume_id: str, cascade: bool = False,
               force: bool = False) -> None:
        def work(s: Session, vol: m.Volume) -> None:
            atts = list(s.scalars(sa.select(m.Attachment)
                                  .where(m.Attachment.volume_id == vol.id)))
            snaps = list(s.scalars(sa.select(m.Snapshot).where(m.Snapshot.volume_id == vol.id)))
            if not force:
                expect(vol, DELETABLE, "be deleted")
                if atts:
                    raise invalid(f"Volume {vol.id} is attached (or reserved for an "
                                  f"attachment); detach it before deleting it.")
            if snaps and not cascade:
                raise invalid(f"Volume {vol.id} still has {len(snaps)} dependent snapshot(s); "
                              "delete them first (or use cascade=true).")
            if cascade and any(sn.status not in ("available", "error", "deleting")
                               for sn in snaps):
                raise invalid(f"Volume {vol.id} has snapshots that are still being made.")
            for att in atts:
                s.delete(att)
            for sn in snaps:
                sn.status = "deleting"
            vol.status, vol.attach_status = "deleting", "detached"
            self.core.bump(s, vol.host)
            if vol.host is None:
                s.flush()
                for sn in snaps:
                    s.delete(sn)
                s.delete(vol)
        self._act(ctx, volume_id, work)

    # ---- actions ---------------------------------------------------------------------

    def extend(self, ctx: AuthContext, volume_id: str, new_size: int,
               in_use_ok: bool) -> None:
        def work(s: Session, vol: m.Volume) -> None:
            allowed = ("available", "in-use") if in_use_ok else ("available",)
            expect(vol, allowed, "be extended")
            if new_size <= vol.size:
                raise invalid(f"New size for extend must be greater than current size. "
                              f"(current: {vol.size}, extended: {new_size}).")
            self.core.quotas.check(s, vol.project_id, gigabytes=new_size - vol.size)
            vol.previous_status, vol.status, vol.size = vol.status, "extending", new_size
            vol.fault = None
            self.core.bump(s, vol.host)
        self._act(ctx, volume_id, work)

    def set_bootable(self, ctx: AuthContext, volume_id: str, bootable: bool) -> None:
        def work(s: Session, vol: m.Volume) -> None:
            vol.bootable = bootable
        self._act(ctx, volume_id, work)

    def set_readonly(self, ctx: AuthContext, volume_id: str, readonly: bool) -> None:
        def work(s: Session, vol: m.Volume) -> None:
            expect(vol, ("available",), "change its read-only flag")
            vol.readonly = readonly
        self._act(ctx, volume_id, work)

    def reset_status(self, ctx: AuthContext, volume_id: str, status: str | None,
                     attach_status: str | None) -> None:
        def work(s: Session, vol: m.Volume) -> None:
            if status is not None:
                vol.status = status
                if status not in ("extending", "uploading"):
                    vol.previous_status = None
                if status in ("available", "error") and vol.upload_image_id:
                    vol.upload_image_id = vol.upload_disk_format = None
                    self.core.bump(s, vol.host)
            if attach_status is not None:
                vol.attach_status = attach_status
        self._act(ctx, volume_id, work)

    def upload_image(self, ctx: AuthContext, volume_id: str, params: dict[str, Any]
                     ) -> dict[str, Any]:
        """Create the image (queued) and ask the storage agent for its data."""
        force = bool(params.get("force"))
        with self.core.db.session() as s:
            vol = self.core.volume(s, ctx, volume_id)
            expect(vol, ("available", "in-use") if force else ("available",),
                   "be uploaded to an image (in-use needs force)")
        if self.core.images is None:
            raise ServiceUnavailable("No image API is configured ([volume] image_url).")
        body = {"name": params["image_name"], "disk_format": params["disk_format"],
                "container_format": params["container_format"],
                "visibility": params.get("visibility") or "private",
                "protected": bool(params.get("protected"))}
        try:
            image = self.core.images.create_image(ctx.token, body)
        except ServiceError as exc:
            if 400 <= exc.status < 500:
                raise BadRequest(f"The image API refused the image: {exc}") from None
            raise ServiceUnavailable(f"The image API cannot be reached: {exc}") from None

        def work(s: Session, vol: m.Volume) -> dict[str, Any]:
            expect(vol, ("available", "in-use") if force else ("available",),
                   "be uploaded to an image")
            vol.previous_status, vol.status = vol.status, "uploading"
            vol.upload_image_id, vol.upload_disk_format = image["id"], params["disk_format"]
            self.core.bump(s, vol.host)
            return {"id": vol.id, "updated_at": None, "status": "uploading",
                    "display_description": vol.description, "size": vol.size,
                    "volume_type": self.core.types.names(s).get(vol.volume_type_id),
                    "image_id": image["id"], "container_format": params["container_format"],
                    "disk_format": params["disk_format"], "image_name": params["image_name"],
                    "visibility": body["visibility"], "protected": body["protected"]}
        return self._act(ctx, volume_id, work)

    # ---- metadata --------------------------------------------------------------------

    def metadata(self, ctx: AuthContext, volume_id: str) -> dict[str, str]:
        return dict(self.show(ctx, volume_id).volume.metadata_ or {})

    def set_metadata(self, ctx: AuthContext, volume_id: str, items: dict[str, str],
                     replace: bool) -> dict[str, str]:
        def work(s: Session, vol: m.Volume) -> dict[str, str]:
            vol.metadata_ = dict(items) if replace else {**(vol.metadata_ or {}), **items}
            return dict(vol.metadata_)
        return self._act(ctx, volume_id, work)

    def delete_metadata(self, ctx: AuthContext, volume_id: str, key: str) -> None:
        def work(s: Session, vol: m.Volume) -> None:
            meta = dict(vol.metadata_ or {})
            if key not in meta:
                raise NotFound(f"Volume {vol.id} has no metadata with key {key}.")
            del meta[key]
            vol.metadata_ = meta
        self._act(ctx, volume_id, work)
