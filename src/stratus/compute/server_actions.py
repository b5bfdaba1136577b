"""Changing servers from the API: rename, metadata, password reset, the power actions
(start, stop, pause, unpause, suspend, resume), reboot, the console output and
snapshots (createImage).

An action records the wanted state (``task_state``, ``desired_power``) and wakes the
host's agent (``ComputeCore.bump``); the agent's report completes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.crashpoints import crash_point
from stratus.common.errors import BadRequest, Conflict, Forbidden, ServiceUnavailable
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.instance_actions import abandon as abandon_action
from stratus.compute.instance_actions import record as record_action
from stratus.compute.instance_actions import settle as settle_actions
from stratus.compute.recovery import SNAPSHOT_STEP, owned, released
from stratus.compute.server_lock import check_unlocked
from stratus.compute.server_reads import ServerReads, ServerShown
from stratus.compute.volume_snapshots import VolumeBackedSnapshot

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore
    from stratus.compute.downstream import Downstream

# action -> (allowed vm_states, new task_state)
ACTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "os-start": (("stopped",), "powering-on"),
    "os-stop": (("active", "paused", "suspended", "error"), "powering-off"),
    "pause": (("active",), "pausing"),
    "unpause": (("paused",), "unpausing"),
    "suspend": (("active",), "suspending"),
    "resume": (("suspended",), "resuming"),
}
DESIRED = {"os-start": "running", "os-stop": "shutdown", "pause": "paused",
           "unpause": "running", "suspend": "suspended", "resume": "running"}


def check_state(srv: m.Server, action_name: str, states: tuple[str, ...], busy: bool) -> None:
    """409 unless the server has a host, is in one of ``states`` and is not ``busy``."""
    if srv.host is None:
        raise Conflict(f"Cannot '{action_name}' instance {srv.id} while it is in vm_state "
                       f"{srv.vm_state} (it has no host).")
    if srv.vm_state not in states:
        raise Conflict(f"Cannot '{action_name}' instance {srv.id} while it is in vm_state "
                       f"{srv.vm_state}")
    if busy:
        raise Conflict(f"Cannot '{action_name}' instance {srv.id} while it is in "
                       f"task_state {srv.task_state}")


class ServerActions(ServerReads):
    """Part of :class:`stratus.compute.servers.ServerFlow`: changing servers."""

    core: ComputeCore
    ds: Downstream

    def rename(self, ctx: AuthContext, sid: str, name: Callable[[], str | None],
               access: dict[str, str | None] | None = None) -> ServerShown:
        """Set the server's name (``name()`` is read once the server is found: a missing
        server is a 404 before a bad name is a 400) and its ``access`` addresses
        (accessIPv4/accessIPv6 given); returns the server to show."""
        core = self.core

        def work(s: Session) -> ServerShown:
            srv = core.server(s, ctx, sid)
            new = name()
            if new is not None:
                srv.name = new
            if access and "accessIPv4" in access:
                srv.access_ip_v4 = access["accessIPv4"]
            if access and "accessIPv6" in access:
                srv.access_ip_v6 = access["accessIPv6"]
            if access and "description" in access:  # 2.19
                srv.description = access["description"]
            hostname = (access or {}).get("hostname")
            if hostname:  # 2.90
                srv.hostname = hostname
            if (access or {}).get("disk_config"):  # OS-DCF:diskConfig
                srv.disk_config = str((access or {})["disk_config"])
            srv.updated_at = utcnow()
            s.flush()
            return self._shown(s, ctx, srv)

        return self._with_floating(core.transaction(work))

    def change_metadata(self, ctx: AuthContext, sid: str,
                        change: Callable[[dict[str, str]], tuple[Any, dict[str, str]]]) -> Any:
        """Replace the server's metadata with what ``change(current)`` gives as its second
        item, within the metadata_items quota; returns its first item."""
        core = self.core

        def work(s: Session) -> Any:
            srv = core.server(s, ctx, sid)
            check_unlocked(ctx, srv)  # compute/server_lock.py
            if srv.task_state == "deleting":
                raise Conflict(f"Cannot change the metadata of instance {srv.id} while it is "
                               "being deleted.")
            result, new = change(dict(srv.meta))
            limit = core.quota_limits(s, srv.project_id)["metadata_items"]
            if 0 <= limit < len(new):  # a quota: 403, as Nova answers it
                raise Forbidden(f"Quota exceeded for metadata_items: at most {limit} items "
                                "are allowed.")
            srv.meta, srv.updated_at = new, utcnow()
            return result

        return core.transaction(work)

    def clear_password(self, ctx: AuthContext, sid: str) -> None:
        def work(s: Session) -> None:
            self.core.server(s, ctx, sid).password = None

        self.core.transaction(work)

    def act(self, ctx: AuthContext, sid: str, name: str, reboot_type: str | None = None
            ) -> None:
        """A power action of ACTIONS, or ``reboot`` (SOFT or HARD): checks the state,
        records the task and wakes the host's agent."""
        core = self.core

        def work(s: Session) -> None:
            srv = core.server(s, ctx, sid)
            check_unlocked(ctx, srv)  # compute/server_lock.py
            if name == "reboot":
                hard = reboot_type == "HARD"
                states = ("active", "stopped", "paused", "suspended", "error") if hard \
                    else ("active",)
                busy = srv.task_state not in (None, "rebooting") if hard else \
                    srv.task_state is not None
                check_state(srv, "reboot", states, busy)
                srv.task_state = "rebooting_hard" if hard else "rebooting"
                srv.reboot_generation += 1
                srv.reboot_type = str(reboot_type)
                srv.desired_power = "running"
            else:
                allowed, task = ACTIONS[name]
                check_state(srv, name, allowed, srv.task_state is not None)
                srv.task_state = task
                srv.desired_power = DESIRED[name]
            srv.updated_at = utcnow()
            core.bump(s, srv.host)
            record_action(s, ctx, srv, name)  # compute/instance_actions.py

        core.transaction(work)

    def console_output(self, ctx: AuthContext, sid: str) -> str:
        """The tail of the console the agent last reported."""
        with self.core.db.session() as s:
            srv = self.core.server(s, ctx, sid)
            if srv.vm_state == "building" and not srv.console_tail:
                raise Conflict(f"Cannot 'get_console_output' instance {srv.id} while it is in "
                               "vm_state building")
            return srv.console_tail

    def create_image(self, ctx: AuthContext, sid: str, name: str, extra: dict[str, str],
                     backup: dict[str, str] | None = None) -> tuple[str, str]:
        """Snapshot the server into a new image of the image API (the agent uploads it);
        returns the image id and its URL. ``backup`` (createBackup, compute/server_backup.py:
        ``backup_type`` and ``rotation``) is kept with the snapshot until its upload is
        reported done, when older backups are rotated out; a volume-backed server is then
        a 400, as in Nova."""
        core = self.core
        action = "createBackup" if backup is not None else "createImage"

        def check(s: Session) -> m.Server:
            srv = core.server(s, ctx, sid)
            if backup is not None and not srv.image_id:
                raise BadRequest(f"Backup is not supported for volume-backed instances "
                                 f"(server {srv.id} boots from a volume); use createImage.")
            check_state(srv, action, ("active", "stopped", "paused", "suspended"),
                        srv.task_state is not None)
            # Recorded before the image API is asked: a crash until the snapshot is
            # recorded is rolled back or finished by the recovery (compute/recovery.py).
            srv.task_state, srv.updated_at = SNAPSHOT_STEP, utcnow()
            srv.scheduling = owned(srv.scheduling)
            record_action(s, ctx, srv, action)
            return srv

        srv = core.transaction(check)
        if not srv.image_id:  # booted from a volume: its volumes are snapshotted
            image = VolumeBackedSnapshot(core).create(  # compute/volume_snapshots.py
                ctx, srv, name, extra, lambda ok, why: self.snapshot_ended(srv.id, ok, why))
            location = f"{getattr(core.downstream, 'image_url', '')}/v2/images/{image['id']}"
            return str(image["id"]), location
        props = {k: v for k, v in srv.image.get("properties", {}).items()
                 if isinstance(v, str)}
        # the request's metadata wins over the properties Stratus sets (as in Nova),
        # not over the image's own fields
        body = {**props, "instance_uuid": srv.id, "image_type": "snapshot",
                "base_image_ref": srv.image_id, **extra,
                "name": name, "disk_format": "qcow2",
                "container_format": "bare", "visibility": "private",
                "min_disk": srv.flavor["disk"],
                "min_ram": int(srv.image.get("min_ram") or 0)}
        try:
            image = core.downstream.create_image(ctx.token, body)
        except ServiceError as exc:
            self.snapshot_done(srv.id, None)
            if exc.temporary:
                raise ServiceUnavailable(f"The image service failed: {exc}") from None
            raise BadRequest(f"The image service refused the snapshot: {exc}") from None
        crash_point("compute.snapshot.after_image")

        if not self.snapshot_done(srv.id, {"image_id": image["id"], "name": str(name),
                                           **(backup or {})}):
            with contextlib.suppress(ServiceError):
                core.downstream.delete_image(ctx.token, image["id"])
            raise Conflict(f"Cannot 'createImage' instance {srv.id} while it is in "
                           "task_state busy")
        location = f"{getattr(core.downstream, 'image_url', '')}/v2/images/{image['id']}"
        return str(image["id"]), location

    def snapshot_done(self, sid: str, snapshot: dict[str, str] | None) -> bool:
        """End the server's createImage step: record ``snapshot`` (the agent uploads it:
        ``image_uploading``), or with None, go back to no task. False when the server is
        no longer in that step."""
        core = self.core

        def work(s: Session) -> bool:
            srv = s.get(m.Server, sid)
            if srv is None or srv.deleted or srv.task_state != SNAPSHOT_STEP:
                return False
            srv.scheduling = released(srv.scheduling)
            srv.task_state, srv.updated_at = None, utcnow()
            if snapshot is None:  # its instance action's event fails
                abandon_action(s, srv, "The image service did not make the snapshot.")
            if snapshot is not None:
                srv.snapshots = [*srv.snapshots, snapshot]
                srv.task_state = "image_uploading"
                core.bump(s, srv.host)
            return True

        return core.transaction(work)

    def snapshot_ended(self, sid: str, ok: bool, details: str) -> bool:
        """End the createImage step of a volume-backed server (no agent upload): its event
        succeeds, or fails with ``details``. False when the server is no longer in it."""
        core = self.core

        def work(s: Session) -> bool:
            srv = s.get(m.Server, sid)
            if srv is None or srv.deleted or srv.task_state != SNAPSHOT_STEP:
                return False
            srv.scheduling = released(srv.scheduling)
            srv.task_state, srv.updated_at = None, utcnow()
            if ok:
                settle_actions(s, srv, reported=False, failed=False)
            else:
                abandon_action(s, srv, details)
            return True

        return core.transaction(work)

    def resume_snapshot(self, sid: str) -> bool:
        """Finish a createImage that stopped between asking the image API and recording
        the snapshot (crash recovery): the queued image made for it, if any, is recorded
        (the newest; others are deleted); none: the server goes back to no task. True
        when a snapshot was recorded. A volume-backed server's queued image is half-made
        (compute/volume_snapshots.py): it is deleted (its volume snapshots are left)."""
        with self.core.db.session() as s:
            srv = s.get(m.Server, sid)
            known = {x["image_id"] for x in (srv.snapshots if srv is not None else [])}
            volume_backed = srv is not None and not srv.image_id
        made = sorted((i for i in self.ds.list_images(None, instance_uuid=sid)
                       if i.get("status") == "queued" and i["id"] not in known),
                      key=lambda i: str(i.get("created_at") or ""))
        keep = made[-1] if made and not volume_backed else None
        for extra in made if keep is None else made[:-1]:
            self.ds.delete_image(None, extra["id"])
        done = self.snapshot_done(sid, None if keep is None else {
            "image_id": keep["id"], "name": str(keep.get("name") or "")})
        if keep is not None and not done:
            self.ds.delete_image(None, keep["id"])
        return keep is not None and done
