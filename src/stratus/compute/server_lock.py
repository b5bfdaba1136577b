"""Locking a server (Nova's os-lock-server): the lock and unlock actions and the check
the operations a lock forbids make.

A locked server refuses to non-admins (409 ``Instance ... is locked``) what Nova's
``check_instance_lock`` guards: delete, the power actions and reboot, rebuild, resize and
its confirm/revert, metadata changes, attaching and detaching volumes and interfaces,
fixed IPs. Admins are never stopped by a lock. Who locked it is kept (``owner`` when the
server's own project did, else ``admin``): an owner may not undo an admin's lock unless
the ``os_compute_api:os-lock-server:unlock:unlock_override`` rule allows (admins only by
default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from stratus.common import policy
from stratus.common.auth import AuthContext
from stratus.common.errors import Conflict, Forbidden
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.instance_actions import record as record_action

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

UNLOCK_OVERRIDE = "os_compute_api:os-lock-server:unlock:unlock_override"


def locker(ctx: AuthContext, srv: m.Server) -> str:
    """``owner`` when the caller's project owns the server, else ``admin``."""
    return "owner" if ctx.project_id == srv.project_id else "admin"


def check_unlocked(ctx: AuthContext, srv: m.Server) -> None:
    """409 when ``srv`` is locked and the caller is not an admin."""
    if srv.locked_by is not None and not ctx.is_admin:
        raise Conflict(f"Instance {srv.id} is locked"
                       + (f" ({srv.locked_reason})" if srv.locked_reason else "")
                       + ": unlock it first.")


def refuse_if_locked(core: ComputeCore, ctx: AuthContext, sid: str) -> None:
    """404 for a server the caller cannot see, 409 for a locked one (non-admins); read
    before an operation as Nova checks the lock before it acts."""
    with core.db.session() as s:
        check_unlocked(ctx, core.server(s, ctx, sid))


def lock(core: ComputeCore, ctx: AuthContext, sid: str, reason: str | None) -> None:
    """Lock the server (again: the new locker and reason replace the old)."""
    def work(s: Session) -> None:
        srv = core.server(s, ctx, sid)
        srv.locked_by, srv.locked_reason = locker(ctx, srv), reason
        srv.updated_at = utcnow()
        record_action(s, ctx, srv, "lock")

    core.transaction(work)


def unlock(core: ComputeCore, ctx: AuthContext, sid: str) -> None:
    """Unlock the server; 403 when its owner undoes an admin's lock without the
    unlock_override rule (an unlocked server stays unlocked: 202)."""
    def work(s: Session) -> None:
        srv = core.server(s, ctx, sid)
        if srv.locked_by is not None and srv.locked_by != locker(ctx, srv) \
                and not policy.permits(ctx, UNLOCK_OVERRIDE, ctx.is_admin):
            raise Forbidden(f"Policy doesn't allow {UNLOCK_OVERRIDE} to be performed: "
                            f"instance {srv.id} was locked by an admin.")
        srv.locked_by, srv.locked_reason = None, None
        srv.updated_at = utcnow()
        record_action(s, ctx, srv, "unlock")

    core.transaction(work)
