"""Network agents (``agent``, ``l3_agent_scheduler``, ``dhcp_agent_scheduler``) as
Neutron shows them, derived from the hosts' registrations (``agent_host``).

One Stratus network agent does on each host what several Neutron agents do, so every
registered host shows an L2 agent ("Linux bridge agent" when its registration says
``l2_backend: linuxbridge``, else "Open vSwitch agent": an agent that does not say is shown
as one, as before the field existed), and a network node also a
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

Which agents host a router or a network: by default the L3 (DHCP) agents of every network
node (a network with no DHCP port has none). An admin may remove a router or network from
one agent (``DELETE /v2.0/agents/{id}/l3-routers/{router}``): that host's state document
then leaves it out and its agent tears it down; adding it back (POST) restores it. Those
choices are ``agent_binding`` rows; ``hoststate.py`` reads them through ``unhosted``.
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
LINUXBRIDGE = "Linux bridge agent"
# agent_type: (binary, topic, availability_zone)
AGENT_TYPES: dict[str, tuple[str, str, str | None]] = {
    L2: ("neutron-openvswitch-agent", "N/A", None),
    LINUXBRIDGE: ("neutron-linuxbridge-agent", "N/A", None),
    DHCP: ("neutron-dhcp-agent", "dhcp_agent", "nova"),
    L3: ("neutron-l3-agent", "l3_agent", "nova"),
    METADATA: ("neutron-metadata-agent", "N/A", None),
}
CONFIGURATIONS: dict[str, Any] = {
    L2: lambda host: {"tunneling_ip": host.underlay_ip, "l2_population": True},
    # Stratus's linuxbridge backend always tunnels with VXLAN (FDB entries from the API).
    LINUXBRIDGE: lambda host: {"tunneling_ip": host.underlay_ip, "tunnel_types": ["vxlan"],
                               "l2_population": True},
    DHCP: lambda host: {"dhcp_driver": "dnsmasq"},
    L3: lambda host: {"agent_mode": "legacy"},
    METADATA: lambda host: {},
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
    l2 = LINUXBRIDGE if host.l2_backend == "linuxbridge" else L2
    return [l2, DHCP, L3, METADATA] if host.network_node else [l2]


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
        "configurations": CONFIGURATIONS[agent_type](host),
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
        if not ctx.is_admin:  # as Neutron: another's resource is not found, not forbidden
            raise agent_not_found(wanted)
        for agent in self._all(s):
            if agent["id"] == wanted:
                return agent
        raise agent_not_found(wanted)

    def every(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """Every agent; none for a non-admin (Neutron's policy filters the list)."""
        if not ctx.is_admin:
            return []
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
            if obj.get("description", "") is not None:  # null: no description
                row.description = views.text(obj, "description", row.description)
            else:
                row.description = ""
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

    @staticmethod
    def _bindings(s: Session, agent_ids: list[str]) -> dict[tuple[str, str], bool]:
        if not agent_ids:
            return {}
        return {(b.agent_id, b.resource_id): b.hosted for b in s.scalars(
            sa.select(m.AgentBinding).where(m.AgentBinding.agent_id.in_(agent_ids)))}

    @staticmethod
    def _router_hosted(bindings: dict[tuple[str, str], bool], agent: str, router: str) -> bool:
        return bindings.get((agent, router), True)

    def _network_hosted(self, s: Session, bindings: dict[tuple[str, str], bool], agent: str,
                        network: str) -> bool:
        return bindings.get((agent, network), self._has_dhcp(s, network))

    @staticmethod
    def _has_dhcp(s: Session, network_id: str) -> bool:
        return s.scalar(sa.select(m.Port.id).where(
            m.Port.network_id == network_id, m.Port.device_owner == DHCP_OWNER)) is not None

    def hosting_router(self, ctx: AuthContext, router_id: str) -> list[dict[str, Any]]:
        """``GET /v2.0/routers/{id}/l3-agents``: the network nodes' L3 agents hosting it."""
        self.core.require_admin(ctx, "get_l3-agents")
        with self.core.db.session() as s:
            self.core.router(s, ctx, router_id)
            agents = self._all(s, (L3,))
            bindings = self._bindings(s, [a["id"] for a in agents])
            return [{**a, "ha_state": None} for a in agents
                    if self._router_hosted(bindings, a["id"], router_id)]

    def hosting_network(self, ctx: AuthContext, network_id: str) -> list[dict[str, Any]]:
        """``GET /v2.0/networks/{id}/dhcp-agents``: the DHCP agents serving the network."""
        self.core.require_admin(ctx, "get_dhcp-agents")
        with self.core.db.session() as s:
            self.core.network(s, ctx, network_id)
            agents = self._all(s, (DHCP,))
            bindings = self._bindings(s, [a["id"] for a in agents])
            return [a for a in agents if self._network_hosted(s, bindings, a["id"], network_id)]

    def _typed(self, s: Session, ctx: AuthContext, wanted: str, agent_type: str
               ) -> dict[str, Any]:
        agent = self._find(s, ctx, wanted)
        if agent["agent_type"] != agent_type:
            raise neutron(NotFound, "AgentNotFoundByTypeHost",
                          f"Agent {wanted} is a {agent['agent_type']}, not a {agent_type}.")
        return agent

    def routers_of(self, ctx: AuthContext, wanted: str) -> list[dict[str, Any]]:
        """``GET /v2.0/agents/{id}/l3-routers``: every router not removed from the agent."""
        with self.core.db.session() as s:
            agent = self._typed(s, ctx, wanted, L3)
            bindings = self._bindings(s, [agent["id"]])
            rows = [r for r in s.scalars(sa.select(m.Router).order_by(
                m.Router.created_at, m.Router.id))
                if self._router_hosted(bindings, agent["id"], r.id)]
            return views.routers(s, rows)

    def networks_of(self, ctx: AuthContext, wanted: str) -> list[dict[str, Any]]:
        """``GET /v2.0/agents/{id}/dhcp-networks``: networks with a DHCP server or added to
        the agent, but not removed from it."""
        with self.core.db.session() as s:
            agent = self._typed(s, ctx, wanted, DHCP)
            bindings = self._bindings(s, [agent["id"]])
            rows = [n for n in s.scalars(sa.select(m.Network).order_by(
                m.Network.created_at, m.Network.id))
                if self._network_hosted(s, bindings, agent["id"], n.id)]
            return views.networks(s, rows, ctx.is_admin)

    def _bind(self, ctx: AuthContext, wanted: str, agent_type: str, target: object,
              hosted: bool) -> None:
        """Add (``hosted``) or remove a router / network on one agent, as Neutron answers:
        an L3 agent adding a router it hosts is a no-op, a DHCP agent adding a network it
        serves a 409; removing what the agent does not host is a 409."""

        def work(s: Session) -> None:
            agent = self._typed(s, ctx, wanted, agent_type)
            if agent_type == L3:
                rid = self.core.router(s, ctx, target).id
                now = self._router_hosted(self._bindings(s, [agent["id"]]), agent["id"], rid)
            else:
                rid = self.core.network(s, ctx, target).id
                now = self._network_hosted(s, self._bindings(s, [agent["id"]]), agent["id"],
                                           rid)
            if hosted and now and agent_type == DHCP:
                raise neutron(Conflict, "NetworkHostedByDHCPAgent",
                              f"The network {rid} has been already hosted by the DHCP Agent "
                              f"{agent['id']}.")
            if not hosted and not now:
                kind = ("RouterNotHostedByL3Agent", "router", "L3 agent") if (
                    agent_type == L3) else ("NetworkNotHostedByDhcpAgent", "network",
                                            "DHCP Agent")
                raise neutron(Conflict, kind[0], f"The {kind[1]} {rid} is not hosted by the "
                              f"{kind[2]} {agent['id']}.")
            if hosted == now:
                return
            row = s.get(m.AgentBinding, (agent["id"], rid))
            if row is None:
                s.add(m.AgentBinding(agent_id=agent["id"], resource_id=rid, hosted=hosted))
            else:
                row.hosted = hosted
            s.flush()

        self.core.require_admin(ctx, "update_agent")
        self.core.transaction(work)

    def schedule(self, ctx: AuthContext, wanted: str, agent_type: str, obj: dict[str, Any],
                 key: str) -> None:
        """POST /v2.0/agents/{id}/l3-routers | dhcp-networks."""
        if not isinstance(obj.get(key), str):
            raise BadRequest(f"Invalid input: '{key}' (an id) is required.")
        self._bind(ctx, wanted, agent_type, obj[key], hosted=True)

    def unschedule(self, ctx: AuthContext, wanted: str, agent_type: str, target: str) -> None:
        """DELETE /v2.0/agents/{id}/l3-routers/{router} | dhcp-networks/{network}."""
        self._bind(ctx, wanted, agent_type, target, hosted=False)


def unhosted(s: Session, host: str) -> tuple[frozenset[str], frozenset[str]]:
    """(routers, networks) an admin removed from ``host``'s L3 / DHCP agent: the host-state
    document leaves them out (``hoststate.py``)."""
    off = {(b.agent_id, b.resource_id) for b in s.scalars(sa.select(m.AgentBinding).where(
        m.AgentBinding.agent_id.in_([agent_id(host, L3), agent_id(host, DHCP)]),
        ~m.AgentBinding.hosted))}
    return (frozenset(r for a, r in off if a == agent_id(host, L3)),
            frozenset(r for a, r in off if a == agent_id(host, DHCP)))
