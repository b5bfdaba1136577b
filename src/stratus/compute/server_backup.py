"""Nova's ``createBackup`` server action: a snapshot image made as createImage makes it
(``ServerActions.create_image``), with the properties ``image_type=backup``,
``backup_type`` and ``instance_uuid``; once its upload is reported done, the server's
images of that ``backup_type`` beyond the newest ``rotation`` are deleted, the new one
too when ``rotation`` is 0 (as Nova's compute manager rotates after the upload)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore
    from stratus.compute.server_actions import ServerActions

LOG = logging.getLogger(__name__)
POLICY = "os_compute_api:os-create-backup"


def create_backup(core: ComputeCore, servers: ServerActions, ctx: AuthContext, sid: str,
                  name: str, backup_type: str, rotation: int, extra: dict[str, str]
                  ) -> tuple[str, str]:
    """Start the backup (admin or the server's project member); the image id and URL."""
    with core.db.session() as s:
        core.server(s, ctx, sid)  # 404 before 403
    core.require_member(ctx, POLICY)
    props = {**extra, "image_type": "backup", "backup_type": backup_type}
    return servers.create_image(ctx, sid, name, props, backup={
        "backup_type": backup_type, "rotation": str(rotation)})


def rotate(core: ComputeCore, sid: str, snapshot: dict[str, Any]) -> list[str]:
    """After the upload of a backup (``snapshot`` with ``backup_type`` and ``rotation``):
    delete the server's backups of that type beyond the newest ``rotation``; the ids
    deleted. A failure of the image API is logged (the next backup rotates again)."""
    if "rotation" not in snapshot:
        return []
    keep = int(snapshot["rotation"])
    try:
        found = core.downstream.list_images(None, instance_uuid=sid, image_type="backup",
                                            backup_type=snapshot["backup_type"])
        old = sorted(found, key=lambda i: (str(i.get("created_at") or ""), i["id"] ==
                                           snapshot["image_id"]))
        gone = [str(i["id"]) for i in old[:max(len(old) - keep, 0)]]
        for image_id in gone:
            core.downstream.delete_image(None, image_id)
    except ServiceError as exc:
        LOG.warning("backups of server %s not rotated: %s", sid, exc)
        return []
    return gone
