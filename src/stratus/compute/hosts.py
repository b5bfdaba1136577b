"""Compute hosts as the admin APIs show them: hypervisors, the nova-compute services
(enable, disable, force down) and the availability zones they form.

The rows are written by the agents' heartbeats (the agent API); this module reads them
and changes only what an operator may change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

SERVICE_ACTIONS = ("enable", "disable", "disable-log-reason", "force-down")


class Hosts:
    """Hypervisors, services and availability zones over the compute host rows."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def all(self) -> list[m.ComputeHost]:
        """Every compute host, in the order they first reported."""
        with self.core.db.session() as s:
            return list(s.scalars(sa.select(m.ComputeHost).order_by(m.ComputeHost.id)))

    def alive(self, host: m.ComputeHost) -> bool:
        """Its heartbeat is recent and it is not forced down."""
        return self.core.alive(host)

    def update_service(self, host: str, action: str, reason: str | None,
                       forced_down: Callable[[], bool]) -> m.ComputeHost:
        """Enable, disable (with a reason) or force down the host's service; the scheduler's
        host cache sees the change. ``forced_down`` gives the requested flag (it is read
        only for force-down, once the host is found)."""
        core = self.core

        def work(s: Session) -> m.ComputeHost:
            h = core.host(s, host)
            if action == "enable":
                h.enabled, h.disabled_reason = True, None
            elif action == "force-down":
                h.forced_down = forced_down()
            else:
                h.enabled, h.disabled_reason = False, reason
            s.flush()
            core.bump(s, h.host)  # the scheduler's host cache sees the new state
            s.refresh(h)
            return h

        return core.transaction(work)

    def servers_on(self, host: str) -> list[tuple[str, str]]:
        """(id, name) of the servers placed on ``host`` and not deleted (os-hypervisors
        ``with_servers``, 2.53)."""
        with self.core.db.session() as s:
            return [(r.id, r.name) for r in s.scalars(sa.select(m.Server).where(
                m.Server.host == host, m.Server.deleted.is_(False)).order_by(
                m.Server.created_at))]
