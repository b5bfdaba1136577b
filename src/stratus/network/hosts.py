"""The network agents' hosts: registration, port status reports, and the state they wait on.

``HostService`` (``core.hosts``) owns the ``agent_hosts`` rows, the agents'
port status reports and the host state document with its generation
(built by ``hoststate.host_state``). ``HostService.watch`` is the long-poll's
view of the per-host generations (``tracking.py``), a
:class:`stratus.common.longpoll.KeyedWatch` keyed by ``(host, network_node)``:
however many agents wait in one API process, the database is read about once
per ``longpoll.POLL_INTERVAL`` (0.25 s), every waiting host in one query, and not
at all when nobody waits; a change wakes only the agents of the hosts it touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.longpoll import KeyedWatch, note_change
from stratus.common.timeutil import utcnow
from stratus.network import hoststate, views
from stratus.network import models as m
from stratus.network.settings import DHCP_OWNER, ROUTER_GATEWAY, ROUTER_INTERFACE
from stratus.network.tracking import host_generations

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

NODE_OWNERS = (DHCP_OWNER, ROUTER_INTERFACE, ROUTER_GATEWAY)


def host_document(row: m.AgentHost) -> dict[str, Any]:
    return {"host": row.host, "underlay_ip": row.underlay_ip, "network_node": row.network_node,
            "l2_backend": row.l2_backend, "updated_at": views.ts(row.updated_at)}


def register(s: Session, host: str, underlay: str | None, node: bool,
             backend: str | None = None, *, keep_backend: bool = False) -> dict[str, Any]:
    """Insert or refresh the registration of ``host``; ``backend`` is its L2 backend (None:
    unknown), left as it was with ``keep_backend`` (a registration that does not say)."""
    row = s.get(m.AgentHost, host)
    if row is None:
        row = m.AgentHost(host=host, underlay_ip=underlay, network_node=node,
                          l2_backend=backend, updated_at=utcnow())
        s.add(row)
    else:
        row.underlay_ip = underlay
        row.network_node = node
        if not keep_backend:
            row.l2_backend = backend
        row.updated_at = utcnow()
    s.flush()
    return {"host": host_document(row)}


def _set_status(port: m.Port, status: str, changed: dict[str, list[str]]) -> None:
    if port.status != status:
        port.status = status
        port.updated_at = utcnow()
        port.revision_number += 1
        changed[status.lower()].append(port.id)


class HostService:
    """The agents' hosts over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core
        self.watch: KeyedWatch[tuple[str, bool | None]] = KeyedWatch(self.generations)

    def generations(self, keys: frozenset[tuple[str, bool | None]]
                    ) -> dict[tuple[str, bool | None], int]:
        """The generation of each ``(host, network_node)`` (see ``tracking.host_generations``)."""
        with self.core.db.session() as s:
            return host_generations(s, keys)

    def state(self, host: str, network_node: bool | None, underlay: str | None = None
              ) -> dict[str, Any]:
        """The host state document of ``host`` with its ``generation``; with ``underlay``
        the host is registered first (as ``register``)."""
        core = self.core
        if underlay is not None:
            core.transaction(lambda s: register(s, host, underlay, bool(network_node),
                                                keep_backend=True))
        with core.db.session() as s:
            # The generation first: the document is then at least that new.
            generation = host_generations(s, [(host, network_node)])[(host, network_node)]
            return {**hoststate.host_state(s, host, network_node), "generation": generation}

    def every_host(self) -> list[dict[str, Any]]:
        """The registered hosts, by name."""
        with self.core.db.session() as s:
            rows = s.scalars(sa.select(m.AgentHost).order_by(m.AgentHost.host))
            return [host_document(r) for r in rows]

    def register(self, host: str, underlay: str | None, node: bool,
                 backend: str | None = None) -> dict[str, Any]:
        """Register ``host`` (see ``register``)."""
        return self.core.transaction(lambda s: register(s, host, underlay, node, backend))

    def report_ports(self, host: str, active: set[str], down: set[str]) -> dict[str, Any]:
        """Apply an agent's port report (see ``api/agent_hosts.py``); answers the ports whose
        status changed."""

        def work(s: Session) -> dict[str, Any]:
            changed: dict[str, list[str]] = {"active": [], "down": []}
            for port in s.scalars(sa.select(m.Port).where(
                    m.Port.host_id == host, ~m.Port.device_owner.startswith("network:"))
                    .order_by(m.Port.id)):
                up = port.id in active and port.admin_state_up
                _set_status(port, "ACTIVE" if up else "DOWN", changed)
            registered = s.get(m.AgentHost, host)
            if registered is not None and registered.network_node and (active | down):
                for port in s.scalars(sa.select(m.Port).where(
                        m.Port.id.in_(active | down), m.Port.device_owner.in_(NODE_OWNERS))
                        .order_by(m.Port.id)):
                    up = port.id in active and port.admin_state_up
                    _set_status(port, "ACTIVE" if up else "DOWN", changed)
            s.flush()
            if changed["active"] or changed["down"]:
                # the compute agent's wait for ACTIVE (portwait.py) reads after the commit
                note_change(s)
            return {"ports": changed}

        return self.core.transaction(work)
