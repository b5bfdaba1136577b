"""Nova's ``migrate`` server action (cold migration), checked as Nova checks it: the
server is looked up (404), the caller must be allowed
``os_compute_api:os-migrate-server:migrate`` (admin; 403), the server must be ``active``
or ``stopped`` with no task (409), a named target host (2.56) must exist (400) and not be
the server's own (400), and some other enabled, up host must exist (400 "No valid host
was found", Nova's answer with one compute host). Stratus does not move a server's disks
and domain between hosts yet: the caller (``api/server_migrate.py``) refuses the rest as
Nova refuses what its driver does not implement (501). No migration is recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest
from stratus.compute import models as m
from stratus.compute.server_actions import check_state

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

POLICY = "os_compute_api:os-migrate-server:migrate"


def migration_targets(core: ComputeCore, ctx: AuthContext, sid: str,
                      host: str | None) -> list[str]:
    """The hosts a cold migration of the server could go to (never empty: none is a
    400); raises Nova's 404/403/409/400 first."""
    with core.db.session() as s:
        srv = core.server(s, ctx, sid)  # 404 before 403, as Nova
        core.require_admin(ctx, POLICY)
        check_state(srv, "migrate", ("active", "stopped"), srv.task_state is not None)
        hosts = list(s.scalars(sa.select(m.ComputeHost).order_by(m.ComputeHost.host)))
        if host is not None:
            if host not in {h.host for h in hosts}:
                raise BadRequest(f"Compute host {host} could not be found.")
            if host == srv.host:
                raise BadRequest(f"The target host {host} is the server's own host; a "
                                 "migration needs another host.")
        targets = [h.host for h in hosts if h.host != srv.host and h.enabled
                   and core.alive(h) and host in (None, h.host)]
    if not targets:
        raise BadRequest("No valid host was found. " + (
            f"Host {host} is disabled or down." if host is not None else
            "No other compute host is enabled and up."))
    return targets
