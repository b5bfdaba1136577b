"""The compute service layer's root: settings, transactions, policy, quotas, hosts, claims.

``ComputeCore`` is the one object the API binds its routes to (``router.include(table,
core)``). It owns the database and the downstream APIs, and carries one service object
per resource family, each in its own module: ``flavors`` (compute/flavors.py),
``keypairs`` (keypairs.py), ``server_groups`` (server_groups.py), ``quotas``
(quotas.py), ``hosts`` (hosts.py: hypervisors, services, zones) and ``servers``
(servers.py: the server life cycle, with placement.py, server_checks.py,
server_reads.py, server_actions.py and server_security_groups.py).

Capacity and quota are counted with conditional UPDATEs (``... SET used = used + n
WHERE used + n <= limit``): the database decides atomically, on SQLite and on
PostgreSQL, so concurrent creates can neither over-commit a host nor pass a quota.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common import longpoll, policy
from stratus.common.auth import AuthContext
from stratus.common.config import Config
from stratus.common.db import Database
from stratus.common.errors import Forbidden, NotFound
from stratus.common.timeutil import isotime, utcnow
from stratus.compute import instance_actions, scheduler
from stratus.compute import models as m
from stratus.compute import quotas as project_quotas
from stratus.compute.consoles import Consoles
from stratus.compute.downstream import Downstream
from stratus.compute.flavors import Flavors
from stratus.compute.hostcache import CHANGED_HOSTS, HostCache, changed
from stratus.compute.hosts import Hosts
from stratus.compute.images_proxy import ImageProxy
from stratus.compute.instance_actions import InstanceActions
from stratus.compute.keypairs import Keypairs
from stratus.compute.quotas import QUOTA_RESOURCES, Quotas
from stratus.compute.security_groups import SecurityGroupProxy
from stratus.compute.server_groups import ServerGroups
from stratus.compute.servers import ServerFlow
from stratus.compute.usage import Usage

T = TypeVar("T")
SECTION = "compute"
TRANSACTION_ATTEMPTS = 60
CONFLICT_AFTER = 3  # integrity errors (a lost race for a unique value) before a 409

__all__ = ["SECTION", "ComputeCore", "Settings"]


@dataclass
class Settings:
    """The [compute] section, parsed and checked once."""

    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 512
    scheduler_weigher: str = "spread"
    scheduler_max_attempts: int = 3
    service_down_time: int = 60
    default_availability_zone: str = "nova"
    # Seconds between two sweeps for servers stuck on dead hosts (per process; run from
    # the heartbeat route). Derived from service_down_time by from_config.
    dead_host_sweep_interval: float = 10.0
    # consoles (compute/consoles.py): a token's life, the noVNC page its URL opens
    console_token_ttl: int = 600
    novncproxy_base_url: str = "http://127.0.0.1:6080/vnc_lite.html"
    quotas: dict[str, int] = field(default_factory=lambda: {
        "instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "server_groups": 10,
        "server_group_members": 10, "metadata_items": 128})

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        def ratio(key: str) -> float:
            raw = config.get(SECTION, key)
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"[compute] {key}={raw!r} is not a number") from None
            if value <= 0:
                raise ValueError(f"[compute] {key}={raw!r} must be above 0")
            return value

        weigher = config.get(SECTION, "scheduler_weigher")
        if weigher not in ("spread", "pack"):
            raise ValueError(f"[compute] scheduler_weigher={weigher!r}: use spread or pack")
        return cls(
            cpu_allocation_ratio=ratio("cpu_allocation_ratio"),
            ram_allocation_ratio=ratio("ram_allocation_ratio"),
            disk_allocation_ratio=ratio("disk_allocation_ratio"),
            reserved_host_memory_mb=config.get_int(SECTION, "reserved_host_memory_mb", 0),
            scheduler_weigher=weigher,
            scheduler_max_attempts=config.get_int(SECTION, "scheduler_max_attempts", 1),
            service_down_time=config.get_int(SECTION, "service_down_time", 1),
            dead_host_sweep_interval=min(
                10.0, config.get_int(SECTION, "service_down_time", 1) / 4),
            default_availability_zone=config.get(SECTION, "default_availability_zone"),
            console_token_ttl=config.get_int(SECTION, "console_token_ttl", 1),
            novncproxy_base_url=config.get(SECTION, "novncproxy_base_url"),
            quotas={r: config.get_int(SECTION, f"quota_{r}", -1) for r in QUOTA_RESOURCES},
        )

    @property
    def ratios(self) -> scheduler.Ratios:
        return scheduler.Ratios(self.cpu_allocation_ratio, self.ram_allocation_ratio,
                                self.disk_allocation_ratio, self.reserved_host_memory_mb)


class ComputeCore:
    """The compute service's behaviour over its database and the downstream APIs."""

    def __init__(self, db: Database, settings: Settings, downstream: Downstream) -> None:
        self.db = db
        self.settings = settings
        self.downstream = downstream
        self._sweep_lock = threading.Lock()
        self._hosts_lock = threading.Lock()
        self._hosts: HostCache | None = None
        self.host_cache_loads = 0  # full reads of the host rows (figures and tests)
        self._last_sweep = -math.inf
        # The service objects of each resource family (their modules are named alike).
        self.flavors = Flavors(self)
        self.keypairs = Keypairs(self)
        self.server_groups = ServerGroups(self)
        self.quotas = Quotas(self)
        self.hosts = Hosts(self)
        self.servers = ServerFlow(self)
        self.security_groups = SecurityGroupProxy(self)
        self.images = ImageProxy(self)  # Nova's image proxy (/v2.1/images)
        self.accounting = Usage(self)
        self.consoles = Consoles(self)
        self.instance_actions = InstanceActions(self)  # os-instance-actions

    # ---- transactions ------------------------------------------------------------------

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction; rerun it on lock contention or a lost race
        (:meth:`Database.transaction`: 60 attempts, a 409 after 3 integrity errors). The
        host rows it changed are re-read into the scheduler's cache after the commit."""
        return self.db.transaction(work, attempts=TRANSACTION_ATTEMPTS,
                                   conflict_after=CONFLICT_AFTER,
                                   after_commit=self._refresh_changed_hosts)

    def _refresh_changed_hosts(self, s: Session) -> None:
        names = s.info.pop(CHANGED_HOSTS, None)
        if names:
            self.refresh_hosts(names)
            # their generations moved: the agents' long-polls in this process read now
            longpoll.poke()

    # ---- policy ------------------------------------------------------------------------

    @staticmethod
    def require_admin(ctx: AuthContext, action: str) -> None:
        if not policy.permits(ctx, action, ctx.is_admin):
            raise Forbidden(f"Policy doesn't allow {action} to be performed.")

    @staticmethod
    def require_member(ctx: AuthContext, action: str) -> None:
        if not policy.permits(ctx, action, policy.has_role(ctx, "member")):
            raise Forbidden(f"Policy doesn't allow {action} to be performed.")

    # ---- quotas (stratus.compute.quotas) ------------------------------------------------

    def quota_limits(self, s: Session, project_id: str) -> dict[str, int]:
        return project_quotas.quota_limits(s, self.settings.quotas, project_id)

    def usage(self, s: Session, project_id: str) -> m.ProjectUsage:
        return project_quotas.usage(s, project_id)

    def reserve(self, s: Session, project_id: str, instances: int, cores: int, ram: int,
                must: bool = True) -> bool:
        """Count a server against the project's quota, atomically; 403 overLimit if over."""
        return project_quotas.reserve(s, self.settings.quotas, project_id, instances, cores, ram,
                                      must)

    def release(self, s: Session, project_id: str, instances: int, cores: int, ram: int) -> None:
        project_quotas.release(s, project_id, instances, cores, ram)

    # ---- hosts -------------------------------------------------------------------------

    def alive(self, host: m.ComputeHost, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return not host.forced_down and (
            now - host.heartbeat_at < timedelta(seconds=self.settings.service_down_time))

    def host(self, s: Session, name: str) -> m.ComputeHost:
        row = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == name)).first()
        if row is None:
            raise NotFound(f"Compute host {name} could not be found.")
        return row

    def host_records(self, s: Session, fresh: bool = False,
                     hinted: Sequence[str] = ()) -> list[scheduler.HostRecord]:
        """The scheduler's view of every host, from the in-process cache when it is current.

        Every change of a host row the scheduler reads (claims, inventory, enabled,
        forced_down) bumps its ``generation`` in the same statement or transaction, and
        generations only go up, so ``(count, sum(generation), max(id))`` (one aggregate
        query) equals the cache's own only when every cached row is current. Otherwise
        all rows are read again (``fresh`` forces that). Alive-ness (the heartbeat, which
        does not bump the generation) is read separately: the few hosts that are down.
        ``hinted``: server ids of same_host/different_host hints, whose hosts are filled
        into ``server_ids``. The cache only chooses candidates: the claim stays a
        conditional UPDATE in the database, so a stale cache cannot over-commit a host.
        """
        t = cast(sa.Table, m.ComputeHost.__table__)
        fp = s.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.generation),
                                                                   0),
                                 sa.func.coalesce(sa.func.max(t.c.id), 0))).one()
        with self._hosts_lock:
            cache = self._hosts
            if fresh or cache is None or cache.fingerprint != (int(fp[0]), int(fp[1]),
                                                               int(fp[2])):
                cache = None
        if cache is None:
            cache = HostCache.load(s)
            with self._hosts_lock:
                self._hosts = cache
            self.host_cache_loads += 1
        oldest = utcnow() - timedelta(seconds=self.settings.service_down_time)
        dead = {str(h) for (h,) in s.execute(sa.select(t.c.host).where(sa.or_(
            t.c.forced_down.is_(True), t.c.heartbeat_at <= oldest)))}
        servers: dict[str, set[str]] = {}
        if hinted:
            for sid, host in s.execute(sa.select(m.Server.id, m.Server.host).where(
                    m.Server.id.in_(list(hinted)), m.Server.deleted.is_(False),
                    m.Server.host.is_not(None))):
                servers.setdefault(str(host), set()).add(sid)
        with self._hosts_lock:
            records = list(cache.records.values())
        if not dead and not servers:
            return records
        return [r if r.host not in dead and r.host not in servers else dataclasses.replace(
            r, alive=r.host not in dead, server_ids=frozenset(servers.get(r.host, ())))
            for r in records]

    def refresh_hosts(self, names: Iterable[str]) -> None:
        """Re-read the rows this process just changed (after commit) into the cache."""
        if self._hosts is None:
            return
        t = cast(sa.Table, m.ComputeHost.__table__)
        with self.db.session() as s:
            rows = list(s.execute(sa.select(*HostCache.columns()).where(
                t.c.host.in_(list(names)))))
        with self._hosts_lock:
            if self._hosts is not None:
                for row in rows:
                    self._hosts.update(row)

    def claim(self, s: Session, host: str, vcpus: int, ram: int, disk: int) -> bool:
        """Take capacity on ``host`` if it is still there: one conditional UPDATE."""
        r = self.settings
        t = cast(sa.Table, m.ComputeHost.__table__)
        result = s.execute(sa.update(t).where(
            t.c.host == host,
            t.c.enabled.is_(True),
            t.c.claimed_vcpus + vcpus <= t.c.vcpus * r.cpu_allocation_ratio,
            t.c.claimed_ram + ram
            <= (t.c.memory_mb - r.reserved_host_memory_mb) * r.ram_allocation_ratio,
            t.c.claimed_disk + disk <= t.c.local_gb * r.disk_allocation_ratio,
        ).values(claimed_vcpus=t.c.claimed_vcpus + vcpus, claimed_ram=t.c.claimed_ram + ram,
                 claimed_disk=t.c.claimed_disk + disk,
                 claimed_instances=t.c.claimed_instances + 1,
                 generation=t.c.generation + 1))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            changed(s, host)
            return True
        return False

    def unclaim(self, s: Session, host: str, vcpus: int, ram: int, disk: int) -> None:
        t = cast(sa.Table, m.ComputeHost.__table__)
        s.execute(sa.update(t).where(t.c.host == host).values(
            claimed_vcpus=t.c.claimed_vcpus - vcpus, claimed_ram=t.c.claimed_ram - ram,
            claimed_disk=t.c.claimed_disk - disk,
            claimed_instances=t.c.claimed_instances - 1, generation=t.c.generation + 1))
        changed(s, host)

    @staticmethod
    def bump(s: Session, host: str | None) -> None:
        """Wake the host's agent: its assignments changed."""
        if host:
            t = cast(sa.Table, m.ComputeHost.__table__)
            s.execute(sa.update(t).where(t.c.host == host).values(generation=t.c.generation + 1))
            changed(s, host)

    # ---- lookups -----------------------------------------------------------------------

    @staticmethod
    def flavor_visible(s: Session, ctx: AuthContext, flavor: m.Flavor) -> bool:
        if flavor.is_public or ctx.is_admin:
            return True
        return s.get(m.FlavorAccess, (flavor.id, ctx.project_id or "")) is not None

    def flavor(self, s: Session, ctx: AuthContext, flavor_id: str) -> m.Flavor:
        row = s.get(m.Flavor, flavor_id)
        if row is None or not self.flavor_visible(s, ctx, row):
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        return row

    @staticmethod
    def server(s: Session, ctx: AuthContext, server_id: str) -> m.Server:
        row = s.get(m.Server, server_id)
        if row is None or row.deleted or not (ctx.is_admin or row.project_id == ctx.project_id):
            raise NotFound(f"Instance {server_id} could not be found.")
        return row

    @staticmethod
    def group(s: Session, ctx: AuthContext, group_id: str) -> m.ServerGroup:
        row = s.get(m.ServerGroup, group_id)
        if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
            raise NotFound(f"Server group {group_id} could not be found.")
        return row

    def expire_dead_builds(self, s: Session) -> int:
        """Servers building, or in a task (not deleting), on a host whose last heartbeat is
        older than ``service_down_time``, and unchanged for as long, go ERROR with a fault.

        One join finds them (usually none); each is changed by a conditional UPDATE, so a
        report that lands meanwhile wins. Returns how many went ERROR."""
        now = utcnow()
        limit = now - timedelta(seconds=self.settings.service_down_time)
        t = cast(sa.Table, m.Server.__table__)
        h = cast(sa.Table, m.ComputeHost.__table__)
        stuck = s.execute(sa.select(t.c.id, t.c.host, t.c.vm_state, t.c.task_state,
                                    t.c.updated_at).join(h, h.c.host == t.c.host).where(
            t.c.deleted.is_(False), t.c.updated_at < limit, h.c.heartbeat_at < limit,
            sa.or_(t.c.vm_state == "building",
                   sa.and_(t.c.task_state.is_not(None), t.c.task_state != "deleting")))).all()
        changed = 0
        for sid, host, vm_state, task, updated in stuck:
            doing = "being built" if vm_state == "building" else f"in task {task}"
            fault = {"code": 500, "created": isotime(now), "message": (
                f"The compute host {host} stopped reporting while the server was {doing}."),
                "details": ""}
            result = s.execute(sa.update(t).where(
                t.c.id == sid, t.c.updated_at == updated, t.c.vm_state == vm_state,
                t.c.task_state.is_not_distinct_from(task), t.c.deleted.is_(False)).values(
                vm_state="error", task_state=None, fault=fault, updated_at=now))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                changed += 1
                instance_actions.fail_open(s, sid, host, str(fault["message"]))
        if changed:
            s.expire_all()
        return changed

    def sweep_dead_hosts(self, force: bool = False) -> int:
        """``expire_dead_builds`` in its own transaction, at most every
        ``dead_host_sweep_interval`` seconds per process (called on every heartbeat of any
        host, so stuck servers go ERROR without anyone reading them)."""
        with self._sweep_lock:
            now = time.monotonic()
            if not force and now - self._last_sweep < self.settings.dead_host_sweep_interval:
                return 0
            self._last_sweep = now
        return self.transaction(self.expire_dead_builds)
