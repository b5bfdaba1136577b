"""Compute hosts as the admin APIs show them: hypervisors, the nova-compute services
(enable, disable, force down) and the availability zones they form.

The rows are written by the agents' heartbeats (the agent API); this module reads them
and changes only what an operator may change.

The controller's own service is listed too, as Nova lists its nova-scheduler: Stratus's
scheduler runs inside the compute API process (compute/scheduler.py), so the host that
answers is the scheduler's host, in Nova's ``internal`` zone, up whenever it answers.
Stratus has no separate conductor, so none is listed. os-services and os-hosts both show
it (api/services.py, usage.py); it cannot be disabled or forced down.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.timeutil import utcnow
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

SERVICE_ACTIONS = ("enable", "disable", "disable-log-reason", "force-down")
INTERNAL_ZONE = "internal"  # Nova's zone of the services that are not nova-compute


@dataclass(frozen=True)
class ControllerService:
    """A service of the controller that Nova would list (os-services, os-hosts)."""

    host: str
    binary: str  # os-services' binary: nova-scheduler
    topic: str  # os-hosts' service: scheduler
    updated_at: datetime  # it runs in the process that answers: now
    zone: str = INTERNAL_ZONE


class Hosts:
    """Hypervisors, services and availability zones over the compute host rows."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def all(self) -> list[m.ComputeHost]:
        """Every compute host, in the order they first reported."""
        with self.core.db.session() as s:
            return list(s.scalars(sa.select(m.ComputeHost).order_by(m.ComputeHost.id)))

    def controller_services(self) -> list[ControllerService]:
        """The scheduler that runs in this compute API process, on this host."""
        return [ControllerService(host=socket.gethostname(), binary="nova-scheduler",
                                  topic="scheduler", updated_at=utcnow())]

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
