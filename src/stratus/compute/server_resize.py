"""Resize on the server's own host (Nova with ``allow_resize_to_same_host``):
``resize`` -> RESIZE -> VERIFY_RESIZE, then ``confirmResize`` -> ACTIVE or
``revertResize`` -> REVERT_RESIZE -> ACTIVE.

The API checks the new flavor (another one; a root disk never smaller unless the server
boots from a volume, whose root disk is the volume), counts the difference against the
project's quota and the host's capacity, keeps the old flavor on the row, records a
``migration`` (``os-migrations``), sets ``task_state`` ``resize_prep`` and raises the
server's ``resize_generation``. The host's agent, woken by ``ComputeCore.bump``, sees the
generation above the one it last resized at: it stops the guest, keeps a copy of the root
disk, grows the disk, redefines the domain with the new memory and vcpus and restores the
power (``agent/compute/converge.py``, ``ServerWork._resize``), then reports the generation
done: the server goes ``resized`` (VERIFY_RESIZE). A confirm drops the old flavor (the
agent then drops the old disk); a revert puts the old flavor back and raises the
generation with ``resize_revert``: the agent puts the old disk back. The row holds
everything, so an API or agent killed half-way leaves nothing stuck: the agent redoes the
step (each is idempotent).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.common.timeutil import isotime, new_id, utcnow
from stratus.compute import models as m
from stratus.compute.hostcache import changed
from stratus.compute.instance_actions import record as record_action
from stratus.compute.server_actions import check_state

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

RESIZE_STATES = ("active", "stopped")  # Nova: ACTIVE, SHUTOFF
RESIZE_TASKS = ("resize_prep", "resize_reverting")
OPEN_MIGRATIONS = ("migrating", "finished", "reverting")


def flavor_doc(f: m.Flavor) -> dict[str, Any]:
    """The flavor as a server keeps it (the same document a create stores)."""
    return {"id": f.id, "name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk,
            "swap": f.swap, "ephemeral": f.ephemeral, "extra_specs": dict(f.extra_specs)}


def _amounts(doc: dict[str, Any], volume_backed: bool) -> tuple[int, int, int]:
    return (int(doc.get("vcpus") or 0), int(doc.get("ram") or 0),
            0 if volume_backed else int(doc.get("disk") or 0))


def _open_migration(s: Session, sid: str) -> m.Migration | None:
    return s.scalars(sa.select(m.Migration).where(
        m.Migration.server_id == sid, m.Migration.status.in_(OPEN_MIGRATIONS)
    ).order_by(m.Migration.id.desc())).first()


class ServerResize:
    """Part of :class:`stratus.compute.servers.ServerFlow`: resizing a server."""

    core: ComputeCore

    def _shift(self, s: Session, srv: m.Server, old: dict[str, Any], new: dict[str, Any],
               check: bool) -> None:
        """Move the project's usage and the host's claim from flavor ``old`` to ``new``;
        with ``check`` a growth must fit the quota (403) and the host (400)."""
        core = self.core
        ov, orr, od = _amounts(old, not srv.image_id)
        nv, nr, nd = _amounts(new, not srv.image_id)
        dv, dr, dd = nv - ov, nr - orr, nd - od
        if check:
            core.reserve(s, srv.project_id, 0, max(dv, 0), max(dr, 0))
        else:  # a revert: the old flavor counts again, even over a quota lowered since
            core.release(s, srv.project_id, 0, -max(dv, 0), -max(dr, 0))
        core.release(s, srv.project_id, 0, max(-dv, 0), max(-dr, 0))
        if srv.host is None:
            return
        r = core.settings
        t = cast(sa.Table, m.ComputeHost.__table__)
        conds = [t.c.host == srv.host]
        if check:
            if dv > 0:
                conds.append(t.c.claimed_vcpus + dv <= t.c.vcpus * r.cpu_allocation_ratio)
            if dr > 0:
                conds.append(t.c.claimed_ram + dr <= (t.c.memory_mb - r.reserved_host_memory_mb)
                             * r.ram_allocation_ratio)
            if dd > 0:
                conds.append(t.c.claimed_disk + dd <= t.c.local_gb * r.disk_allocation_ratio)
        done = s.execute(sa.update(t).where(*conds).values(
            claimed_vcpus=t.c.claimed_vcpus + dv, claimed_ram=t.c.claimed_ram + dr,
            claimed_disk=t.c.claimed_disk + dd, generation=t.c.generation + 1))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise BadRequest(f"No valid host was found. Host {srv.host} has not enough free "
                             "capacity for the new flavor (a resize stays on the server's "
                             "host).")
        changed(s, srv.host)

    def resize(self, ctx: AuthContext, sid: str, flavor_id: str,
               disk_config: str | None = None) -> None:
        """Check and record the resize to ``flavor_id`` (and ``disk_config``, AUTO or
        MANUAL, when given), wake the host's agent."""
        core = self.core

        def work(s: Session) -> None:
            srv = core.server(s, ctx, sid)
            check_state(srv, "resize", RESIZE_STATES, srv.task_state is not None)
            try:
                new = core.flavor(s, ctx, flavor_id)
            except NotFound:
                raise BadRequest(f"Unable to locate requested flavor {flavor_id}.") from None
            if new.id == srv.flavor_id:
                raise BadRequest("When resizing, instances must change flavor! (Unable to "
                                 f"resize to the same flavor {new.id}.)")
            old = dict(srv.flavor)
            if srv.image_id:
                if new.disk == 0 and int(old.get("disk") or 0) != 0:
                    raise BadRequest("Resize to zero disk flavor is not allowed.")
                if new.disk < int(old.get("disk") or 0):
                    raise BadRequest(f"Unable to resize disk down: flavor {new.id} has a "
                                     f"{new.disk} GB root disk, the server has "
                                     f"{old.get('disk')} GB.")
            doc = flavor_doc(new)
            self._shift(s, srv, old, doc, check=True)
            now = utcnow()
            s.add(m.Migration(
                uuid=new_id(), server_id=srv.id, project_id=srv.project_id,
                user_id=ctx.user_id or srv.user_id, migration_type="resize",
                source_compute=srv.host, dest_compute=srv.host,
                old_flavor_id=srv.flavor_id, new_flavor_id=new.id, status="migrating",
                created_at=now, updated_at=now))
            srv.old_flavor, srv.old_flavor_id = old, srv.flavor_id
            srv.flavor, srv.flavor_id = doc, new.id
            srv.resize_generation = (srv.resize_generation or 0) + 1
            srv.resize_revert = False
            srv.task_state, srv.updated_at = "resize_prep", now
            srv.disk_config = disk_config or srv.disk_config
            core.bump(s, srv.host)
            record_action(s, ctx, srv, "resize")  # compute/instance_actions.py

        core.transaction(work)

    def _resized(self, s: Session, ctx: AuthContext, sid: str, action: str) -> m.Server:
        srv = self.core.server(s, ctx, sid)
        if srv.vm_state != "resized" or srv.old_flavor is None:
            raise Conflict(f"Cannot '{action}' instance {sid} while it is in vm_state "
                           f"{srv.vm_state}")
        if srv.task_state is not None:
            raise Conflict(f"Cannot '{action}' instance {sid} while it is in task_state "
                           f"{srv.task_state}")
        return srv

    def confirm_resize(self, ctx: AuthContext, sid: str) -> None:
        """Keep the new flavor: the old one is forgotten and the agent drops the old
        disk."""
        core = self.core

        def work(s: Session) -> None:
            srv = self._resized(s, ctx, sid, "confirmResize")
            now = utcnow()
            mig = _open_migration(s, sid)
            if mig is not None:
                mig.status, mig.updated_at = "confirmed", now
            srv.old_flavor, srv.old_flavor_id = None, None
            srv.vm_state = "stopped" if srv.desired_power == "shutdown" else "active"
            srv.updated_at = now
            core.bump(s, srv.host)
            record_action(s, ctx, srv, "confirmResize")

        core.transaction(work)

    def revert_resize(self, ctx: AuthContext, sid: str) -> None:
        """Back to the old flavor and the old disk (the agent puts them back)."""
        core = self.core

        def work(s: Session) -> None:
            srv = self._resized(s, ctx, sid, "revertResize")
            old = dict(srv.old_flavor or {})
            self._shift(s, srv, dict(srv.flavor), old, check=False)
            now = utcnow()
            mig = _open_migration(s, sid)
            if mig is not None:
                mig.status, mig.updated_at = "reverting", now
            srv.flavor, srv.flavor_id = old, srv.old_flavor_id or old.get("id") or ""
            srv.old_flavor, srv.old_flavor_id = None, None
            srv.resize_generation = (srv.resize_generation or 0) + 1
            srv.resize_revert = True
            srv.task_state, srv.updated_at = "resize_reverting", now
            core.bump(s, srv.host)
            record_action(s, ctx, srv, "revertResize")

        core.transaction(work)

    def migrations(self, ctx: AuthContext, filters: dict[str, str]) -> list[m.Migration]:
        """Every migration (admin), newest first, filtered by ``status``,
        ``instance_uuid``, ``migration_type`` or ``source_compute``."""
        self.core.require_admin(ctx, "os_compute_api:os-migrations:index")
        q = sa.select(m.Migration).order_by(m.Migration.created_at.desc(),
                                            m.Migration.id.desc())
        cols = {"status": m.Migration.status, "instance_uuid": m.Migration.server_id,
                "migration_type": m.Migration.migration_type,
                "source_compute": m.Migration.source_compute,
                "user_id": m.Migration.user_id, "project_id": m.Migration.project_id}  # 2.80
        for key, value in filters.items():
            q = q.where(cols[key] == value)
        with self.core.db.session() as s:
            return list(s.scalars(q))


def after_report(s: Session, srv: m.Server, body: dict[str, Any]) -> bool:
    """Before the report's states are applied: a reported ``resize_generation`` at or
    above the server's ends its resize (or revert). True when the server must show
    ``resized`` once the report is applied (see :func:`settle`)."""
    gen = body.get("resize_generation")
    if srv.task_state not in RESIZE_TASKS or not isinstance(gen, int) \
            or isinstance(gen, bool) or gen < srv.resize_generation:
        return False
    mig = _open_migration(s, srv.id)
    failed = body.get("vm_state") == "error"
    if mig is not None:
        mig.updated_at = utcnow()
        mig.status = "error" if failed else (
            "reverted" if srv.task_state == "resize_reverting" else "finished")
    srv.task_state = None
    return not failed


def settle(srv: m.Server) -> None:
    """After a report is applied: a server whose resize waits for confirmation stays
    ``resized`` (VERIFY_RESIZE) whatever power the agent saw."""
    if srv.old_flavor is not None and srv.task_state is None \
            and srv.vm_state in ("active", "stopped"):
        srv.vm_state = "resized"


def migration_view(mig: m.Migration, v: tuple[int, int]) -> dict[str, Any]:
    """One migration as ``os-migrations`` shows it at microversion ``v`` (Nova's integer
    flavor ids: the flavor id itself when numeric, else a stable number from it)."""
    def flavor_number(fid: str) -> int:
        return int(fid) if fid.isdigit() else zlib.crc32(fid.encode()) & 0x7FFFFFFF

    out: dict[str, Any] = {
        "id": mig.id, "instance_uuid": mig.server_id, "status": mig.status,
        "source_compute": mig.source_compute, "dest_compute": mig.dest_compute,
        "source_node": mig.source_compute, "dest_node": mig.dest_compute,
        "dest_host": "",
        "old_instance_type_id": flavor_number(mig.old_flavor_id),
        "new_instance_type_id": flavor_number(mig.new_flavor_id),
        "created_at": isotime(mig.created_at), "updated_at": isotime(mig.updated_at)}
    if v >= (2, 23):
        out["migration_type"] = mig.migration_type
    if v >= (2, 59):
        out["uuid"] = mig.uuid
    if v >= (2, 80):
        out["user_id"], out["project_id"] = mig.user_id, mig.project_id
    return out
