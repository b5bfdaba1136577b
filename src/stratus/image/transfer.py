"""Image data in and out: uploads, downloads, and recovery after a crash.

The status lifecycle of an upload::

    queued --PUT file--> saving --data complete and accepted--> active
       ^                   |
       +-------------------+  data refused (400 bad format, 413 too large or over
       |                      quota, store full), client gone, or process killed
       |                      (found at the next start): back to queued, nothing kept
    killed  <--------------+  the store failed unexpectedly (an I/O error): the image
                              must be deleted

``queued`` after a refusal or a crash means the same image can simply be
uploaded again; ``killed`` is kept for failures of the server itself.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from dataclasses import dataclass
from typing import IO

import sqlalchemy as sa

from stratus.common.auth import AuthContext
from stratus.common.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    UnsupportedMediaType,
)
from stratus.common.errors import PayloadTooLarge as TooLarge
from stratus.common.timeutil import utcnow
from stratus.image import models as m
from stratus.image.core import ImageService
from stratus.image.inspect import ImageDataError, Inspection, inspect
from stratus.image.store import LimitExceeded, Upload, current_owner, owner_is_dead

LOG = logging.getLogger("stratus.image")
UPLOAD_MEDIA_TYPE = "application/octet-stream"
BDM_PROPERTY = "block_device_mapping"


class Gone(ApiError):
    status = 410
    title = "Gone"


@dataclass
class UploadTicket:
    """An upload in progress: the image (now ``saving``), its limit, and the temp file."""

    image_id: str
    disk_format: str
    owner: str
    project: str | None
    limit: int
    limit_message: str
    upload: Upload
    # The image describes volume snapshots (a ``block_device_mapping`` property, as the
    # compute API makes for a volume-backed server's createImage): it has no disk data of
    # its own, so empty data makes it active (as Glance takes Nova's zero-byte upload).
    volume_snapshot: bool = False

    def write(self, chunks: list[bytes]) -> None:
        """Append the chunks, in order (413 beyond the limit)."""
        try:
            for data in chunks:
                self.upload.write(data)
        except LimitExceeded:
            raise TooLarge(self.limit_message) from None


def check_media_type(content_type: str) -> None:
    if content_type.split(";")[0].strip().lower() != UPLOAD_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"Image data must be sent as Content-Type: {UPLOAD_MEDIA_TYPE}, "
            f"not {content_type or 'no Content-Type'}."
        )


def _used_bytes(s: sa.orm.Session, project: str | None, exclude: str) -> int:
    if project is None:
        return 0
    total = s.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(m.Image.size), 0)).where(
            m.Image.owner == project,
            m.Image.status.in_(("active", "deactivated")),
            m.Image.id != exclude,
        )
    )
    return int(total or 0)


def begin_upload(
    service: ImageService, ctx: AuthContext, image_id: str, declared_size: int | None
) -> UploadTicket:
    """Move a queued image to ``saving`` and open its temporary file.

    ``declared_size`` (Content-Length or X-OpenStack-Image-Size) lets an
    oversize upload be refused before any data is read.
    """
    settings = service.settings
    owner = current_owner()
    with service.db.session() as s:
        img = service.writable(s, ctx, image_id, "upload data to")
        if img.status != "queued":
            raise Conflict(
                f"Image {image_id} is {img.status}; data can only be uploaded to a queued "
                "image (create a new image to upload other data)."
            )
        if not img.disk_format or not img.container_format:
            raise BadRequest(
                "Set disk_format and container_format on the image before uploading its data."
            )
        limit = settings.max_image_size
        message = (
            f"The image data is larger than the maximum image size of {limit} bytes "
            "([image] max_image_size)."
        )
        quota = settings.quota_bytes_per_project
        if quota > 0:
            used = _used_bytes(s, img.owner, img.id)
            if quota - used < limit:
                limit = max(quota - used, 0)
                message = (
                    f"The image data would exceed the storage quota of project {img.owner}: "
                    f"{used} of {quota} bytes are used ([image] quota_bytes_per_project)."
                )
        if declared_size is not None and declared_size > limit:
            raise TooLarge(message)
        moved = s.execute(
            sa.update(m.Image)
            .where(m.Image.id == image_id, m.Image.status == "queued")
            .values(status="saving", upload_owner=owner, updated_at=utcnow())
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"Image {image_id} is already receiving data.")
        disk_format, project = img.disk_format, img.owner
        volume_snapshot = s.get(m.ImageProperty, (image_id, BDM_PROPERTY)) is not None
    try:
        upload = service.store.begin(limit, owner)
    except BaseException:
        abort_upload_status(service, image_id, owner, "queued")
        raise
    return UploadTicket(image_id, disk_format, owner, project, limit, message, upload,
                        volume_snapshot)


def finish_upload(service: ImageService, ticket: UploadTicket) -> None:
    """Inspect the complete data and, when accepted, make the image active."""
    upload = ticket.upload
    upload.finish()
    try:
        if ticket.volume_snapshot and upload.size == 0:
            found: Inspection | None = None  # nothing to inspect: the data is in volumes
        else:
            found = inspect(upload.path, ticket.disk_format, service.settings.limits)
    except ImageDataError as exc:
        raise BadRequest(f"Image {ticket.image_id} refused: {exc}") from None
    with service.store.locked():
        key = service.store.commit(upload)
        try:
            with service.db.session() as s:
                img = s.get(m.Image, ticket.image_id, with_for_update=True)
                if img is None or img.status != "saving" or img.upload_owner != ticket.owner:
                    raise Gone(
                        f"Image {ticket.image_id} was deleted during the upload; "
                        "its data was discarded."
                    )
                quota = service.settings.quota_bytes_per_project
                if quota > 0 and _used_bytes(s, img.owner, img.id) + upload.size > quota:
                    raise TooLarge(ticket.limit_message)
                img.size = upload.size
                img.virtual_size = found.virtual_size if found is not None else None
                img.checksum = upload.checksum
                img.os_hash_algo = "sha512"
                img.os_hash_value = upload.sha512
                img.store_key = key
                img.status = "active"
                img.upload_owner = None
                img.updated_at = utcnow()
        except BaseException:
            service.drop_blob_if_unused(key)
            raise
    LOG.info("image %s is active: %d bytes, %s", ticket.image_id, upload.size,
             found.format if found is not None else "volume snapshots")


def abort_upload_status(service: ImageService, image_id: str, owner: str, status: str) -> None:
    """Put an image this process was receiving back to ``status`` (queued or killed)."""
    with service.db.session() as s:
        s.execute(
            sa.update(m.Image)
            .where(
                m.Image.id == image_id,
                m.Image.status == "saving",
                m.Image.upload_owner == owner,
            )
            .values(status=status, upload_owner=None, updated_at=utcnow())
        )


def abort_status(exc: BaseException | None) -> str:
    """queued for refused data, a full store, a vanished client; killed for store faults."""
    if isinstance(exc, OSError):
        return "queued" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "killed"
    if exc is None or isinstance(exc, ApiError) or _is_disconnect(exc):
        return "queued"
    return "killed"


def abort_upload(service: ImageService, ticket: UploadTicket, exc: BaseException | None) -> None:
    """Discard the temporary data and set the image to ``abort_status(exc)``."""
    ticket.upload.discard()
    status = abort_status(exc)
    with contextlib.suppress(Exception):
        abort_upload_status(service, ticket.image_id, ticket.owner, status)
    LOG.info("upload of image %s aborted (%s): the image is %s", ticket.image_id,
             type(exc).__name__ if exc else "no error", status)


def _is_disconnect(exc: BaseException) -> bool:
    return type(exc).__name__ in ("ClientDisconnect", "CancelledError", "Cancelled")


class StoreFailure(ApiError):
    status = 500
    title = "Internal Server Error"


def store_error(exc: OSError) -> ApiError:
    """The answer to a failed write into the store."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TooLarge("The image store is full; the upload was discarded. Try again later.")
    return StoreFailure(
        f"The image store could not write the data ({exc.strerror or exc}); the image is "
        "now killed and must be deleted."
    )


@dataclass
class Download:
    """An open blob to send, with what the response headers need."""

    file: IO[bytes]
    size: int
    checksum: str | None


def open_download(service: ImageService, ctx: AuthContext, image_id: str) -> Download | None:
    """The image's data, or None when it has none yet (the API answers 204)."""
    with service.db.session() as s:
        img = service.visible(s, ctx, image_id)
        if img.status == "deactivated" and not ctx.is_admin:
            raise Forbidden(
                f"Image {image_id} is deactivated; its data cannot be downloaded."
            )
        if img.status not in ("active", "deactivated") or not img.store_key:
            return None
        key, checksum, expected = img.store_key, img.checksum, img.size
    try:
        fh, size = service.store.open(key)  # closed by the response
    except FileNotFoundError:
        raise Gone(f"The data of image {image_id} is gone (it was deleted).") from None
    if expected is not None and size != expected:
        fh.close()
        raise StoreFailure(f"The stored data of image {image_id} has {size} bytes, not the "
                           f"{expected} it was uploaded with; it is not sent.")
    return Download(fh, size, checksum)


def recover(service: ImageService) -> dict[str, int]:
    """At start: undo what dead processes left behind; returns what was cleaned.

    Images in ``saving`` whose receiving process is dead go back to ``queued``,
    their temporary files are removed, and blobs no image refers to are deleted.
    """
    store = service.store
    store.ensure()
    with store.locked():
        tmp_removed = store.clean_tmp()
        requeued = 0
        with service.db.session() as s:
            for img in s.scalars(sa.select(m.Image).where(m.Image.status == "saving")):
                if img.upload_owner is None or owner_is_dead(img.upload_owner):
                    img.status = "queued"
                    img.upload_owner = None
                    img.updated_at = utcnow()
                    requeued += 1
            referenced = set(
                s.scalars(sa.select(m.Image.store_key).where(m.Image.store_key.is_not(None)))
            )
        blobs_removed = store.collect_garbage(k for k in referenced if k)
    result = {"requeued": requeued, "tmp_removed": len(tmp_removed),
              "blobs_removed": len(blobs_removed)}
    if any(result.values()):
        LOG.warning("recovered after an unclean stop: %s", result)
    return result
