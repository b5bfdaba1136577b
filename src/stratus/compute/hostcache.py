"""The scheduler's in-process cache of host rows, and the session note that keeps it
current.

Every change of a host row the scheduler reads bumps the row's ``generation``; a
transaction that changes a host notes it with :func:`changed`, and once the transaction
is committed :meth:`ComputeCore.refresh_hosts` re-reads exactly those rows.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.compute import models as m
from stratus.compute import scheduler

# session.info key: the hosts whose rows this transaction changed
CHANGED_HOSTS = "compute_hosts_changed"


def changed(s: Session, host: str) -> None:
    """Note in the session that the host's row changed (its cache entry is re-read after
    the commit)."""
    s.info.setdefault(CHANGED_HOSTS, set()).add(host)


class HostCache:
    """Host rows as scheduler records, with their generations; ``fingerprint`` is
    ``(count, sum(generation), max(id))`` of exactly what is cached."""

    def __init__(self) -> None:
        self.records: dict[str, scheduler.HostRecord] = {}
        self.gens: dict[str, int] = {}
        self.total = 0
        self.max_id = 0

    @property
    def fingerprint(self) -> tuple[int, int, int]:
        return len(self.records), self.total, self.max_id

    @staticmethod
    def columns() -> tuple[Any, ...]:
        t = cast(sa.Table, m.ComputeHost.__table__)
        # a host's zone: its aggregate's, else its agent's (compute/aggregates.py)
        return (t.c.host, sa.func.coalesce(t.c.aggregate_zone, t.c.availability_zone),
                t.c.vcpus, t.c.memory_mb, t.c.local_gb,
                t.c.claimed_vcpus, t.c.claimed_ram, t.c.claimed_disk, t.c.enabled,
                t.c.virt_type, t.c.cpu_arch, t.c.generation, t.c.id)

    @classmethod
    def load(cls, s: Session) -> HostCache:
        cache = cls()
        for row in s.execute(sa.select(*cls.columns())):
            cache.update(row)
        return cache

    def update(self, row: Any) -> None:
        host, gen = str(row[0]), int(row[11])
        old = self.gens.get(host)
        if old is not None and gen <= old:
            return  # what is cached is as new
        if old is None:
            self.max_id = max(self.max_id, int(row[12]))
        self.records[host] = scheduler.HostRecord(
            host, row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]), True,
            row[9], row[10])
        self.gens[host] = gen
        self.total += gen - (old or 0)
