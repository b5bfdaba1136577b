"""Host aggregates (os-aggregates): named groups of compute hosts with metadata, one
of whose keys, ``availability_zone``, makes the group an availability zone.

A host's zone is the zone of the aggregate it is in (``compute_host.aggregate_zone``,
kept here whenever a membership or an aggregate's zone changes), else the zone its agent
reports. As in Nova, a host cannot be in two aggregates with different zones (400), and
an aggregate's zone cannot change while one of its hosts runs a server in that zone.
Every host whose zone moves gets a new generation, so the scheduler's host cache
(hostcache.py) reads its new zone.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.errors import BadRequest, Conflict, NotFound
from stratus.common.timeutil import utcnow
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

AZ_KEY = "availability_zone"
UNSET = object()  # update(): a field not given


@dataclass
class AggregateView:
    """An aggregate as the API shows it (``hosts`` in the order they were added)."""

    id: int
    uuid: str
    name: str
    availability_zone: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime | None
    hosts: list[str] = field(default_factory=list)


def _view(s: Session, agg: m.Aggregate) -> AggregateView:
    hosts = list(s.scalars(sa.select(m.AggregateHost.host).where(
        m.AggregateHost.aggregate_id == agg.id).order_by(m.AggregateHost.id)))
    meta = dict(agg.meta or {})
    if agg.availability_zone is not None:
        meta[AZ_KEY] = agg.availability_zone
    return AggregateView(agg.id, agg.uuid, agg.name, agg.availability_zone, meta,
                         agg.created_at, agg.updated_at, hosts)


def _get(s: Session, agg_id: int) -> m.Aggregate:
    agg = s.get(m.Aggregate, agg_id)
    if agg is None:
        raise NotFound(f"Aggregate {agg_id} could not be found.")
    return agg


def _name_free(s: Session, name: str, but: int | None = None) -> None:
    q = sa.select(m.Aggregate.id).where(m.Aggregate.name == name)
    if but is not None:
        q = q.where(m.Aggregate.id != but)
    if s.scalars(q).first() is not None:
        raise Conflict(f"Aggregate {name} already exists.")


def _other_zones(s: Session, host: str, but: int) -> set[str]:
    """The zones of the other aggregates ``host`` is in."""
    return {z for z in s.scalars(sa.select(m.Aggregate.availability_zone).join(
        m.AggregateHost, m.AggregateHost.aggregate_id == m.Aggregate.id).where(
        m.AggregateHost.host == host, m.Aggregate.id != but,
        m.Aggregate.availability_zone.is_not(None))) if z is not None}


def _members(s: Session, agg_id: int) -> list[str]:
    return list(s.scalars(sa.select(m.AggregateHost.host).where(
        m.AggregateHost.aggregate_id == agg_id)))


def _check_zone(s: Session, agg: m.Aggregate, zone: str | None, action: str) -> None:
    """Refuse ``zone`` for ``agg`` when one of its hosts is in an aggregate of another
    zone, or when the zone changes while a host of ``agg`` runs a server recorded in the
    aggregate's present zone (Nova's rules, 400)."""
    hosts = _members(s, agg.id)
    if zone is not None:
        for host in hosts:
            clash = _other_zones(s, host, agg.id) - {zone}
            if clash:
                raise BadRequest(
                    f"Cannot {action} aggregate {agg.id}: host {host} is already in "
                    f"availability zone {sorted(clash)[0]} (a host may be in one zone "
                    f"only).")
    if zone == agg.availability_zone or agg.availability_zone is None or not hosts:
        return
    inside = s.scalars(sa.select(m.Server.id).where(
        m.Server.host.in_(hosts), m.Server.deleted.is_(False),
        m.Server.availability_zone == agg.availability_zone)).first()
    if inside is not None:
        raise BadRequest(f"Cannot {action} aggregate {agg.id}: one or more of its hosts "
                         f"contain servers in availability zone {agg.availability_zone}.")


def _rezone(core: ComputeCore, s: Session, hosts: list[str]) -> None:
    """Recompute the aggregate zone of ``hosts``; a host whose zone moved gets a new
    generation (the scheduler's cache, the agent's long-poll)."""
    for host in hosts:
        zones = sorted(_other_zones(s, host, -1))
        zone = zones[0] if zones else None
        row = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == host)).first()
        if row is not None and row.aggregate_zone != zone:
            row.aggregate_zone = zone
            s.flush()
            core.bump(s, host)


class Aggregates:
    """The aggregates of one compute database (admin; the API checks the policy)."""

    def __init__(self, core: ComputeCore) -> None:
        self.core = core

    def list(self) -> list[AggregateView]:
        with self.core.db.session() as s:
            return [_view(s, a) for a in s.scalars(
                sa.select(m.Aggregate).order_by(m.Aggregate.id))]

    def show(self, agg_id: int) -> AggregateView:
        with self.core.db.session() as s:
            return _view(s, _get(s, agg_id))

    def create(self, name: str, zone: str | None) -> AggregateView:
        def work(s: Session) -> AggregateView:
            _name_free(s, name)
            agg = m.Aggregate(uuid=str(uuidlib.uuid4()), name=name, availability_zone=zone,
                              meta={}, created_at=utcnow(), updated_at=None)
            s.add(agg)
            s.flush()
            return _view(s, agg)

        return self.core.transaction(work)

    def update(self, agg_id: int, name: str | None = None,
               zone: str | object | None = UNSET) -> AggregateView:
        """Rename and/or re-zone (``zone`` None: no zone any more)."""
        def work(s: Session) -> AggregateView:
            agg = _get(s, agg_id)
            if name is not None and name != agg.name:
                _name_free(s, name, agg.id)
                agg.name = name
            if zone is not UNSET:
                new = zone if isinstance(zone, str) else None
                _check_zone(s, agg, new, "update")
                agg.availability_zone = new
            agg.updated_at = utcnow()
            s.flush()
            _rezone(self.core, s, _members(s, agg.id))
            return _view(s, agg)

        return self.core.transaction(work)

    def delete(self, agg_id: int) -> None:
        def work(s: Session) -> None:
            agg = _get(s, agg_id)
            if _members(s, agg.id):
                raise BadRequest(f"Cannot delete aggregate {agg_id}: it still has hosts "
                                 f"(remove them first).")
            s.delete(agg)

        self.core.transaction(work)

    def add_host(self, agg_id: int, host: str) -> AggregateView:
        def work(s: Session) -> AggregateView:
            agg = _get(s, agg_id)
            self.core.host(s, host)  # 404 for a host that never reported
            if host in _members(s, agg.id):
                raise Conflict(f"Aggregate {agg_id} already has host {host}.")
            if agg.availability_zone is not None:
                clash = _other_zones(s, host, agg.id) - {agg.availability_zone}
                if clash:
                    raise BadRequest(
                        f"Cannot add host {host} to aggregate {agg_id}: the host is in "
                        f"availability zone {sorted(clash)[0]} and this aggregate's zone "
                        f"is {agg.availability_zone} (a host may be in one zone only).")
            s.add(m.AggregateHost(aggregate_id=agg.id, host=host))
            agg.updated_at = utcnow()
            s.flush()
            _rezone(self.core, s, [host])
            return _view(s, agg)

        return self.core.transaction(work)

    def remove_host(self, agg_id: int, host: str) -> AggregateView:
        def work(s: Session) -> AggregateView:
            agg = _get(s, agg_id)
            row = s.scalars(sa.select(m.AggregateHost).where(
                m.AggregateHost.aggregate_id == agg.id,
                m.AggregateHost.host == host)).first()
            if row is None:
                raise NotFound(f"Cannot remove host {host} from aggregate {agg_id}: the "
                               f"host is not in it.")
            s.delete(row)
            agg.updated_at = utcnow()
            s.flush()
            _rezone(self.core, s, [host])
            return _view(s, agg)

        return self.core.transaction(work)

    def set_metadata(self, agg_id: int, values: dict[str, str | None]) -> AggregateView:
        """Set keys (a None value deletes the key); ``availability_zone`` is the zone."""
        def work(s: Session) -> AggregateView:
            agg = _get(s, agg_id)
            meta = dict(agg.meta or {})
            for key, value in values.items():
                if key == AZ_KEY:
                    continue
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = value
            if AZ_KEY in values and values[AZ_KEY] != agg.availability_zone:
                _check_zone(s, agg, values[AZ_KEY], "update")
                agg.availability_zone = values[AZ_KEY]
            agg.meta = meta
            agg.updated_at = utcnow()
            s.flush()
            _rezone(self.core, s, _members(s, agg.id))
            return _view(s, agg)

        return self.core.transaction(work)


def zone_available(s: Session, zone: str, default: str) -> bool:
    """Whether a server may ask for ``zone`` (Nova: the zones of enabled hosts, and the
    default zone)."""
    t = m.ComputeHost
    return zone == default or s.scalars(sa.select(t.id).where(
        sa.func.coalesce(t.aggregate_zone, t.availability_zone) == zone,
        t.enabled.is_(True))).first() is not None


# Flavor extra specs the AggregateInstanceExtraSpecsFilter reads (scheduler.py): only the
# scoped ones, so a flavor's other keys never keep a server off a host.
SPEC_SCOPE = "aggregate_instance_extra_specs:"


def scoped_specs(extra_specs: dict[str, Any]) -> dict[str, str]:
    """The flavor's ``aggregate_instance_extra_specs:<key>`` specs, by ``<key>``."""
    return {k[len(SPEC_SCOPE):]: str(v) for k, v in extra_specs.items()
            if k.startswith(SPEC_SCOPE) and len(k) > len(SPEC_SCOPE)}


def hosts_matching(s: Session, specs: dict[str, str]) -> frozenset[str]:
    """The hosts whose aggregates' metadata hold every spec: per key, the values of all
    the host's aggregates (each split on ','), one of which must equal the spec's."""
    per_host: dict[str, dict[str, set[str]]] = {}
    for host, meta, zone in s.execute(sa.select(
            m.AggregateHost.host, m.Aggregate.meta, m.Aggregate.availability_zone).join(
            m.Aggregate, m.Aggregate.id == m.AggregateHost.aggregate_id)):
        values = per_host.setdefault(str(host), {})
        items = dict(meta or {})
        if zone is not None:
            items[AZ_KEY] = zone
        for key, value in items.items():
            values.setdefault(key, set()).update(x.strip() for x in str(value).split(","))
    return frozenset(h for h, values in per_host.items()
                     if all(want.strip() in values.get(key, ()) for key, want in specs.items()))
