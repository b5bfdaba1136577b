"""The generation of the hosts' desired state, and the tracking that bumps it.

A transaction run by ``NetworkCore.transaction`` is tracked: when it changed a
row the host state documents are built from, it bumps ``state_generation``
before it commits (in the same transaction, so an agent woken by the new
generation reads the new rows).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.network import models as m

TRACK = "stratus.network.track"
CHANGED = "stratus.network.hoststate_changed"
STATE_MODELS: tuple[type, ...] = (
    m.Network, m.Subnet, m.Port, m.IPAllocation, m.SecurityGroup, m.SecurityGroupRule,
    m.PortSecurityGroup, m.Router, m.FloatingIP, m.AgentHost, m.AgentBinding,
)
STATE_TABLES = {cls.__tablename__ for cls in STATE_MODELS}  # type: ignore[attr-defined]
# Columns in no host state document: a change of only these bumps nothing (the agents' own
# port status reports and registration refreshes must not wake them).
BOOKKEEPING = {"status", "updated_at", "revision_number"}


def _changes_host_state(obj: object) -> bool:
    if not isinstance(obj, STATE_MODELS):
        return False
    return any(attr.key not in BOOKKEEPING and attr.history.has_changes()
               for attr in sa.inspect(obj).attrs)


@sa.event.listens_for(Session, "before_flush")
def _track_flush(session: Session, _context: object, _instances: object) -> None:
    if not session.info.get(TRACK) or session.info.get(CHANGED):
        return
    if any(isinstance(o, STATE_MODELS) for o in (*session.new, *session.deleted)) or any(
            _changes_host_state(o) for o in session.dirty):
        session.info[CHANGED] = True


@sa.event.listens_for(Session, "do_orm_execute")
def _track_statement(state: sa.orm.ORMExecuteState) -> None:
    if not state.session.info.get(TRACK) or not (
            state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in STATE_TABLES:
        state.session.info[CHANGED] = True


def bump_generation(s: Session) -> None:
    """One more generation of every host's state (creates the row when it is missing)."""
    done = s.execute(sa.update(m.StateGeneration).where(m.StateGeneration.id == 1)
                     .values(generation=m.StateGeneration.generation + 1)
                     .execution_options(synchronize_session=False))
    if not getattr(done, "rowcount", 0):
        s.add(m.StateGeneration(id=1, generation=1))
        s.flush()


def read_generation(s: Session) -> int:
    return s.scalar(sa.select(m.StateGeneration.generation)
                    .where(m.StateGeneration.id == 1)) or 0

