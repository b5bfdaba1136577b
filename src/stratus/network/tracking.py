"""The generations of the hosts' desired state, and the tracking that bumps them.

A transaction run by ``NetworkCore.transaction`` is tracked: when it changed a row a
host state document is built from, it bumps the generation of the hosts whose documents
it may have changed, before it commits (in the same transaction, so an agent woken by
the new generation reads the new rows).

Per-host generations. ``state_generation`` (one row) is the sequence: every bump takes
its next value ``g`` and writes it into ``host_generation`` rows: the row of each host
touched, the row :data:`NETWORK_NODES` (every network node: they serve DHCP for every
port and every router) and, when the change may touch any host, the row :data:`EVERY`.
A host's generation is the largest of its own row, :data:`EVERY`, and (when its document
is asked for as a network node's) :data:`NETWORK_NODES`. It only goes up, so an agent's
``since`` keeps its meaning, and a long-poll wakes only the agents of the hosts touched.

Which hosts a change touches (conservative: when unsure, every host):

* a port (its row, addresses, security groups): the hosts it is and was bound to, and
  the hosts carrying a port of a security group that has it as a member or reaches such
  a group through remote-group rules (their documents list the members' addresses);
* a security group or rule: the hosts carrying a port of it, or of a group whose rules
  reach it; a network or subnet: the hosts carrying a port on it;
* a router or floating IP: the network nodes only;
* a port owned by the network (DHCP, router, floating IP), a host registration, an
  agent binding, and any bulk statement whose rows cannot be told: every host.

The hosts are resolved from the database both before each flush (the state before the
change: a port deleted, a group left) and before the commit (the state after it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.network import models as m

TRACK = "stratus.network.track"
CHANGED = "stratus.network.hoststate_changed"  # a Touched, once anything changed
# Rows of host_generation that are no host (a host name never holds "/").
EVERY = "/every"
NETWORK_NODES = "/network-nodes"
STATE_MODELS: tuple[type, ...] = (
    m.Network, m.Subnet, m.Port, m.IPAllocation, m.SecurityGroup, m.SecurityGroupRule,
    m.PortSecurityGroup, m.Router, m.FloatingIP, m.AgentHost, m.AgentBinding,
)
STATE_TABLES = {cls.__tablename__ for cls in STATE_MODELS}  # type: ignore[attr-defined]
# Columns in no host state document: a change of only these bumps nothing (the agents' own
# port status reports and registration refreshes must not wake them).
BOOKKEEPING = {"status", "updated_at", "revision_number"}
NETWORK_OWNED = "network:"


@dataclass
class Touched:
    """What one transaction changed, on the way to the hosts it touched."""

    every: bool = False
    hosts: set[str] = field(default_factory=set)
    ports: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)

    def resolve(self, s: Session) -> None:
        """Add the hosts the ports, groups and networks touched reach now."""
        if self.every:
            return
        groups = set(self.groups)
        if self.ports:
            ids = sorted(self.ports)
            for host, owner in s.execute(sa.select(m.Port.host_id, m.Port.device_owner)
                                         .where(m.Port.id.in_(ids))):
                if owner and owner.startswith(NETWORK_OWNED):
                    self.every = True
                    return
                if host:
                    self.hosts.add(host)
            groups |= set(s.scalars(sa.select(m.PortSecurityGroup.security_group_id)
                                    .where(m.PortSecurityGroup.port_id.in_(ids))))
        frontier = set(groups)
        while frontier:  # the groups whose rules reach a touched group (remote groups)
            found = set(s.scalars(sa.select(m.SecurityGroupRule.security_group_id).where(
                m.SecurityGroupRule.remote_group_id.in_(sorted(frontier))))) - groups
            groups |= found
            frontier = found
        if groups:
            self.hosts |= _hosts(s, sa.select(m.Port.host_id).join(
                m.PortSecurityGroup, m.PortSecurityGroup.port_id == m.Port.id).where(
                m.PortSecurityGroup.security_group_id.in_(sorted(groups))))
        if self.networks:
            self.hosts |= _hosts(s, sa.select(m.Port.host_id).where(
                m.Port.network_id.in_(sorted(self.networks))))


def _hosts(s: Session, query: sa.Select[Any]) -> set[str]:
    return {str(h) for h in s.scalars(query.distinct()) if h}


def _values(obj: object, key: str) -> list[object]:
    """Every value of ``obj.key`` in this flush: the current one and the one replaced."""
    hist = sa.inspect(obj).attrs[key].history
    return [v for v in (*hist.added, *hist.unchanged, *hist.deleted) if v is not None]


def _changes_host_state(obj: object) -> bool:
    if not isinstance(obj, STATE_MODELS):
        return False
    return any(attr.key not in BOOKKEEPING and attr.history.has_changes()
               for attr in sa.inspect(obj).attrs)


def _note(t: Touched, obj: object) -> None:
    """Record what ``obj`` (new, deleted or changed) touches."""
    if isinstance(obj, m.Port):
        if obj.id:
            t.ports.add(obj.id)
        t.hosts.update(str(h) for h in _values(obj, "host_id") if h)
        if any(str(o).startswith(NETWORK_OWNED) for o in _values(obj, "device_owner")):
            t.every = True
    elif isinstance(obj, m.IPAllocation | m.PortSecurityGroup):
        t.ports.update(str(p) for p in _values(obj, "port_id"))
        if isinstance(obj, m.PortSecurityGroup):
            t.groups.update(str(g) for g in _values(obj, "security_group_id"))
    elif isinstance(obj, m.SecurityGroupRule):
        t.groups.update(str(g) for g in _values(obj, "security_group_id"))
    elif isinstance(obj, m.SecurityGroup):
        t.groups.add(obj.id)
    elif isinstance(obj, m.Network):
        t.networks.add(obj.id)
    elif isinstance(obj, m.Subnet):
        t.networks.update(str(n) for n in _values(obj, "network_id"))
    elif isinstance(obj, m.Router | m.FloatingIP):
        pass  # the network nodes' documents only: every bump includes them
    else:
        t.every = True  # AgentHost (tunnel peers, roles), AgentBinding


def _touched(session: Session) -> Touched:
    t = session.info.get(CHANGED)
    if not isinstance(t, Touched):
        t = session.info[CHANGED] = Touched()
    return t


@sa.event.listens_for(Session, "before_flush")
def _track_flush(session: Session, _context: object, _instances: object) -> None:
    if not session.info.get(TRACK):
        return
    changed = [o for o in (*session.new, *session.deleted) if isinstance(o, STATE_MODELS)]
    changed += [o for o in session.dirty if _changes_host_state(o)]
    if not changed:
        return
    t = _touched(session)
    for obj in changed:
        _note(t, obj)
    t.resolve(session)  # the state before this flush: where a deleted port was, its groups


def _port_ids(where: object) -> list[str] | None:
    """The port ids of a ``port_id == x`` or ``port_id IN (...)`` criterion; None: other."""
    if not isinstance(where, sa.BinaryExpression):
        return None
    left, right = where.left, where.right
    if getattr(left, "name", None) != "port_id" or not isinstance(right, sa.BindParameter):
        return None
    value = right.value
    values = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return [str(v) for v in values] if all(isinstance(v, str) for v in values) else None


@sa.event.listens_for(Session, "do_orm_execute")
def _track_statement(state: sa.orm.ORMExecuteState) -> None:
    if not state.session.info.get(TRACK) or not (
            state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if name not in STATE_TABLES:
        return
    t = _touched(state.session)
    ports = None
    if name in (m.IPAllocation.__tablename__, m.PortSecurityGroup.__tablename__) and (
            state.is_delete):
        ports = _port_ids(getattr(state.statement, "whereclause", None))
    if ports is None:
        t.every = True
        return
    t.ports.update(ports)
    t.resolve(state.session)  # before the statement: the groups the ports leave


def bump_generation(s: Session, touched: Touched | None = None) -> int:
    """Take the next value of the sequence and make it the generation of the hosts
    ``touched`` reaches (None: every host); answers the value."""
    done = s.execute(sa.update(m.StateGeneration).where(m.StateGeneration.id == 1)
                     .values(generation=m.StateGeneration.generation + 1)
                     .execution_options(synchronize_session=False))
    if not getattr(done, "rowcount", 0):
        s.add(m.StateGeneration(id=1, generation=1))
        s.flush()
    value = int(s.scalar(sa.select(m.StateGeneration.generation)
                         .where(m.StateGeneration.id == 1)) or 0)
    if touched is None or touched.every:
        rows: Iterable[str] = [EVERY]
    else:
        rows = sorted({NETWORK_NODES, *touched.hosts})
    _set(s, list(rows), value)
    return value


def _set(s: Session, rows: list[str], value: int) -> None:
    table = m.HostGeneration
    for i in range(0, len(rows), 500):
        chunk = rows[i:i + 500]
        s.execute(sa.update(table).where(table.host.in_(chunk)).values(generation=value)
                  .execution_options(synchronize_session=False))
        have = set(s.scalars(sa.select(table.host).where(table.host.in_(chunk))))
        s.add_all(table(host=h, generation=value) for h in chunk if h not in have)
    s.flush()


def bump_if_changed(s: Session) -> bool:
    """Before a tracked transaction commits: bump the hosts it touched, if any; whether
    it bumped."""
    s.flush()
    t = s.info.pop(CHANGED, None)
    if not isinstance(t, Touched):
        return False
    t.resolve(s)  # the state after the change
    s.info[TRACK] = False  # the bump's own rows are no change of anybody's document
    try:
        bump_generation(s, t)
    finally:
        s.info[TRACK] = True
    return True


def read_generation(s: Session) -> int:
    """The sequence's last value (the newest generation of any host)."""
    return s.scalar(sa.select(m.StateGeneration.generation)
                    .where(m.StateGeneration.id == 1)) or 0


def host_generations(s: Session, keys: Iterable[tuple[str, bool | None]]
                     ) -> dict[tuple[str, bool | None], int]:
    """The generation of each ``(host, network_node)``; ``network_node`` None: as the host
    is registered (the role its state document takes)."""
    keys = list(keys)
    hosts = sorted({h for h, _ in keys})
    rows = {h: int(g) for h, g in s.execute(sa.select(m.HostGeneration.host,
                                                      m.HostGeneration.generation)
                                            .where(m.HostGeneration.host.in_(
                                                [EVERY, NETWORK_NODES, *hosts])))}
    unknown = sorted({h for h, node in keys if node is None})
    nodes = set(s.scalars(sa.select(m.AgentHost.host).where(
        m.AgentHost.host.in_(unknown), m.AgentHost.network_node.is_(True)))) if unknown else set()
    answer = {}
    for host, node in keys:
        node_role = node if node is not None else host in nodes
        answer[(host, node)] = max(rows.get(host, 0), rows.get(EVERY, 0),
                                   rows.get(NETWORK_NODES, 0) if node_role else 0)
    return answer
