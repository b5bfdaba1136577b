"""Network agents (``agent``, ``l3_agent_scheduler``, ``dhcp_agent_scheduler``) as
Neutron shows them, derived from the hosts' registrations (``agent_host``).

One Stratus network agent does on each host what several Neutron agents do, so every
registered host shows an L2 agent ("Open vSwitch agent"), and a network node also a
"DHCP agent", an "L3 agent" and a "Metadata agent" (it runs dnsmasq, the router
namespaces and the metadata proxy). An agent's id is derived from (host, type), so it
is stable. ``alive``: the host registered (which its agent does before every pass)
within ``AGENT_DOWN_TIME`` seconds, Neutron's ``agent_down_time`` default.
``admin_state_up`` and ``description`` are kept in ``network_agent`` rows. As in
Neutron, turning an agent's admin state down leaves what it already hosts in place;
Stratus schedules every router and DHCP server onto every network node, so it has no
other effect. DELETE hides the agent until its host registers again, after the last
registration seen (then it reappears with the defaults, as a Neutron agent that reports
again does).

Which agents host a router or a network: the L3 (DHCP) agents of every network node
(a network with no DHCP port has none), exactly what ``hoststate.py`` gives them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import ApiError, BadRequest, Conflict, NotFound
from stratus.common.timeutil import utcnow
from stratus.network import models as m
from stratus.network import views
from stratus.network.settings import DHCP_OWNER, neutron

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

AGENT_DOWN_TIME = 75  # seconds; Neutron's agent_down_time default
L2, DHCP, L3, METADATA = "Open vSwitch agent", "DHCP agent", "L3 agent", "Metadata agent"
# agent_type: (binary, topic, availability_zone)
AGENT_TYPES: dict[str, tuple[str, str, str | None]] = {
    L2: ("neutron-openvswitch-agent", "N/A", None),
    DHCP: ("neutron-dhcp-agent", "dhcp_agent", "nova"),
    L3: ("neutron-l3-agent", "l3_agent", "nova"),
    METADATA: ("neutron-metadata-agent", "N/A", None),
}
_ID_NAMESPACE = uuid.UUID("5a0f3b2e-6f1d-4c55-9a57-9e2a8d1c0b77")
AGENT_ATTRS = {"admin_state_up", "description"}


def agent_id(host: str, agent_type: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{host}\x00{agent_type}"))


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")  # Neutron's agent timestamps


def agent_not_found(agent: object) -> ApiError:
    return neutron(NotFound, "AgentNotFound", f"Agent {agent} could not be found.")


def _hidden(row: m.NetworkAgent | None, host: m.AgentHost) -> bool:
    return row is not None and row.deleted_at is not None and host.updated_at <= row.deleted_at


def _current(row: m.NetworkAgent | None) -> m.NetworkAgent | None:
    """The admin's changes, unless the agent was deleted (and came back since)."""
    return None if row is None or row.deleted_at is not None else row


def types_of(host: m.AgentHost) -> list[str]:
    return [L2, DHCP, L3, METADATA] if host.network_node else [L2]


def render(host: m.AgentHost, agent_type: str, row: m.NetworkAgent | None,
           now: datetime) -> dict[str, Any]:
    binary, topic, zone = AGENT_TYPES[agent_type]
    kept = _current(row)
    beat = _stamp(host.updated_at)
    return {
        "id": agent_id(host.host, agent_type), "agent_type": agent_type, "binary": binary,
        "topic": topic, "host": host.host, "availability_zone": zone,
        "admin_state_up": kept.admin_state_up if kept else True,
        "alive": now - host.updated_at <= timedelta(seconds=AGENT_DOWN_TIME),
        "description": kept.description if kept and kept.description else None,
        "heartbeat_timestamp": beat, "created_at": beat, "started_at": beat,
        "configurations": {"underlay_ip": host.underlay_ip} if agent_type == L2 else {},
        "resources_synced": None, "resource_versions": {},
    }


class AgentService:
    """The network agents, over the hosts' registrations."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    def _all(self, s: Session, types: tuple[str, ...] = tuple(AGENT_TYPES)
             ) -> list[dict[str, Any]]:
        rows = {r.id: r for r in s.scalars(sa.select(m.NetworkAgent))}
        now = utcnow()
        out = []
        for host in s.scalars(sa.select(m.AgentHost).order_by(m.AgentHost.host)):
            for agent_type in types_of(host):
                row = rows.get(agent_id(host.host, agent_type))
                if agent_type in types and not _hidden(row, host):
                    out.append(render(host, agent_type, row, now))
        return out

    def _find(self, s: Session, ctx: AuthContext, wanted: object) -> dict[str, Any]:
        self.core.require_admin(ctx, "get_agent")
        for agent in self._all(s):
            if agent["id"] == wanted:
                return agent
        raise agent_not_found(wanted)

    def every(self, ctx: AuthContext) -> list[dict[str, Any]]:
        self.core.require_admin(ctx, "get_agent")
        with self.core.db.session() as s:
            return self._all(s)

    def show(self, ctx: AuthContext, wanted: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            return self._find(s, ctx, wanted)

    def update(self, ctx: AuthContext, wanted: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.core.require_admin(ctx, "update_agent")
        views.only(obj, AGENT_ATTRS, "agent")

        def work(s: Session) -> dict[str, Any]:
            agent = self._find(s, ctx, wanted)
            row = s.get(m.NetworkAgent, agent["id"])
            if row is None or row.deleted_at is not None:
                if row is not None:
                    s.delete(row)
                    s.flush()
                row = m.NetworkAgent(id=agent["id"], host=agent["host"],
                                     agent_type=agent["agent_type"], admin_state_up=True,
                                     description="", deleted_at=None)
                s.add(row)
            row.admin_state_up = views.boolean(obj, "admin_state_up", row.admin_state_up)
            row.description = views.text(obj, "description", row.description)
            s.flush()
            return self._find(s, ctx, wanted)

        return self.core.transaction(work)

    def delete(self, ctx: AuthContext, wanted: str) -> None:
        self.core.require_admin(ctx, "delete_agent")

        def work(s: Session) -> None:
            agent = self._find(s, ctx, wanted)
            host = s.get(m.AgentHost, agent["host"])
            assert host is not None
            row = s.get(m.NetworkAgent, agent["id"])
            if row is None:
                row = m.NetworkAgent(id=agent["id"], host=agent["host"],
                                     agent_type=agent["agent_type"], admin_state_up=True,
                                     description="")
                s.add(row)
            row.deleted_at = host.updated_at  # the last registration it had
            s.flush()

        self.core.transaction(work)

    # ---- schedulers ---------------------------------------------------------------------

    def hosting_router(self, ctx: AuthContext, router_id: str) -> list[dict[str, Any]]:
        """``GET /v2.0/routers/{id}/l3-agents``: every network node's L3 agent."""
        self.core.require_admin(ctx, "get_l3-agents")
        with self.core.db.session() as s:
            self.core.router(s, ctx, router_id)
            return [{**a, "ha_state": None} for a in self._all(s, (L3,))]

    def hosting_network(self, ctx: AuthContext, network_id: str) -> list[dict[str, Any]]:
        """``GET /v2.0/networks/{id}/dhcp-agents``: the DHCP agents serving the network."""
        self.core.require_admin(ctx, "get_dhcp-agents")
        with self.core.db.session() as s:
            self.core.network(s, ctx, network_id)
            if not self._has_dhcp(s, network_id):
                return []
            return self._all(s, (DHCP,))

    @staticmethod
    def _has_dhcp(s: Session, network_id: str) -> bool:
        return s.scalar(sa.select(m.Port.id).where(
            m.Port.network_id == network_id, m.Port.device_owner == DHCP_OWNER)) is not None

    def _typed(self, s: Session, ctx: AuthContext, wanted: str, agent_type: str
               ) -> dict[str, Any]:
        agent = self._find(s, ctx, wanted)
        if agent["agent_type"] != agent_type:
            raise neutron(NotFound, "AgentNotFoundByTypeHost",
                          f"Agent {wanted} is a {agent['agent_type']}, not a {agent_type}.")
        return agent

    def routers_of(self, ctx: AuthContext, wanted: str) -> list[dict[str, Any]]:
        """``GET /v2.0/agents/{id}/l3-routers``: an L3 agent hosts every router."""
        with self.core.db.session() as s:
            self._typed(s, ctx, wanted, L3)
            rows = list(s.scalars(sa.select(m.Router).order_by(m.Router.created_at,
                                                               m.Router.id)))
            return views.routers(s, rows)

    def networks_of(self, ctx: AuthContext, wanted: str) -> list[dict[str, Any]]:
        """``GET /v2.0/agents/{id}/dhcp-networks``: the networks with a DHCP server."""
        with self.core.db.session() as s:
            self._typed(s, ctx, wanted, DHCP)
            served = sa.select(m.Port.network_id).where(m.Port.device_owner == DHCP_OWNER)
            rows = list(s.scalars(sa.select(m.Network).where(m.Network.id.in_(served))
                                  .order_by(m.Network.created_at, m.Network.id)))
            return views.networks(s, rows, ctx.is_admin)

    def schedule(self, ctx: AuthContext, wanted: str, agent_type: str, obj: dict[str, Any],
                 key: str) -> None:
        """POST /v2.0/agents/{id}/l3-routers | dhcp-networks: already hosted (409)."""
        with self.core.db.session() as s:
            agent = self._typed(s, ctx, wanted, agent_type)
            target = obj.get(key)
            if agent_type == L3:
                self.core.router(s, ctx, target)
                raise neutron(Conflict, "RouterHostedByL3Agent",
                              f"The router {target} has been already hosted by the L3 Agent "
                              f"{agent['id']} (Stratus hosts every router on every network "
                              "node).")
            self.core.network(s, ctx, target)
            raise neutron(Conflict, "NetworkHostedByDHCPAgent",
                          f"The network {target} has been already hosted by the DHCP Agent "
                          f"{agent['id']} (Stratus serves DHCP on every network node).")

    def unschedule(self, ctx: AuthContext, wanted: str, agent_type: str) -> None:
        with self.core.db.session() as s:
            self._typed(s, ctx, wanted, agent_type)
        raise BadRequest("Stratus hosts every router and DHCP server on every network node; "
                         "one cannot be removed from an agent (set the agent's "
                         "admin_state_up or delete the host's agent instead).")
