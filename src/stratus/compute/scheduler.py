"""The scheduler: pure filters and weighers over host records (no database, no I/O).

``select_hosts`` returns the candidate hosts for one server, best first, or
raises :class:`NoValidHost` naming the filter that removed the last host. The
caller then claims the first candidate atomically in its database and moves to
the next one when the claim loses a race (see ``ComputeCore.claim``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


class NoValidHost(Exception):
    """No host passed the filters; the message says which filter removed the last ones."""


@dataclass(frozen=True)
class HostRecord:
    host: str
    availability_zone: str
    vcpus: int
    memory_mb: int
    local_gb: int
    claimed_vcpus: int = 0
    claimed_ram: int = 0
    claimed_disk: int = 0
    enabled: bool = True
    alive: bool = True
    virt_type: str = "kvm"
    cpu_arch: str = "x86_64"
    servers_of_group: frozenset[str] = frozenset()  # groups with a member on this host
    server_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Ratios:
    cpu: float = 4.0
    ram: float = 1.0
    disk: float = 1.0
    reserved_memory_mb: int = 512


@dataclass
class Request:
    """What one server needs and where it may go."""

    vcpus: int
    ram: int
    disk: int
    availability_zone: str | None = None
    force_host: str | None = None
    image_properties: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    group_policy: str | None = None
    group_hosts: Sequence[str] = ()  # hosts the group's other members are on
    same_host: Sequence[str] = ()  # server ids
    different_host: Sequence[str] = ()
    ignore_hosts: Sequence[str] = ()  # tried already (reschedules)
    # AggregateInstanceExtraSpecsFilter: the hosts whose aggregates hold the flavor's
    # aggregate_instance_extra_specs (compute/aggregates.py); None: the flavor has none
    aggregate_hosts: frozenset[str] | None = None


def capacity(h: HostRecord, r: Ratios) -> tuple[float, float, float]:
    """(vcpus, ram, disk) the scheduler may place on the host in total."""
    return (
        h.vcpus * r.cpu,
        max(h.memory_mb - r.reserved_memory_mb, 0) * r.ram,
        h.local_gb * r.disk,
    )


def free(h: HostRecord, r: Ratios) -> tuple[float, float, float]:
    cpu, ram, disk = capacity(h, r)
    return cpu - h.claimed_vcpus, ram - h.claimed_ram, disk - h.claimed_disk


_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "i686": "i686", "arm64": "aarch64"}
_HV_TYPES = {"qemu": {"qemu", "kvm"}, "kvm": {"qemu", "kvm"}}

Filter = Callable[[HostRecord, Request, Ratios], bool]


def f_enabled(h: HostRecord, _q: Request, _r: Ratios) -> bool:
    return h.enabled


def f_alive(h: HostRecord, _q: Request, _r: Ratios) -> bool:
    return h.alive


def f_ignore(h: HostRecord, q: Request, _r: Ratios) -> bool:
    return h.host not in q.ignore_hosts


def f_force_host(h: HostRecord, q: Request, _r: Ratios) -> bool:
    return q.force_host is None or h.host == q.force_host


def f_az(h: HostRecord, q: Request, _r: Ratios) -> bool:
    return not q.availability_zone or h.availability_zone == q.availability_zone


def f_ram(h: HostRecord, q: Request, r: Ratios) -> bool:
    return free(h, r)[1] >= q.ram


def f_cores(h: HostRecord, q: Request, r: Ratios) -> bool:
    return free(h, r)[0] >= q.vcpus


def f_disk(h: HostRecord, q: Request, r: Ratios) -> bool:
    return free(h, r)[2] >= q.disk


def f_image_props(h: HostRecord, q: Request, _r: Ratios) -> bool:
    props = q.image_properties
    arch = props.get("hw_architecture") or props.get("architecture")
    if arch:
        wanted = _ARCH_ALIASES.get(str(arch).lower(), str(arch).lower())
        if wanted != h.cpu_arch:
            return False
    hv = props.get("img_hv_type") or props.get("hypervisor_type")
    if hv:
        return h.virt_type in _HV_TYPES.get(str(hv).lower(), {str(hv).lower()})
    return True


def f_aggregate_specs(h: HostRecord, q: Request, _r: Ratios) -> bool:
    return q.aggregate_hosts is None or h.host in q.aggregate_hosts


def f_group(h: HostRecord, q: Request, _r: Ratios) -> bool:
    if q.group_policy == "affinity" and q.group_hosts:
        return h.host in q.group_hosts
    if q.group_policy == "anti-affinity":
        return h.host not in q.group_hosts
    return True


def f_same_host(h: HostRecord, q: Request, _r: Ratios) -> bool:
    return all(s in h.server_ids for s in q.same_host)


def f_different_host(h: HostRecord, q: Request, _r: Ratios) -> bool:
    return not any(s in h.server_ids for s in q.different_host)


FILTERS: list[tuple[str, Filter]] = [
    ("ComputeFilter (enabled)", f_enabled),
    ("ComputeFilter (alive)", f_alive),
    ("RetryFilter", f_ignore),
    ("ForcedHostFilter", f_force_host),
    ("AvailabilityZoneFilter", f_az),
    ("RamFilter", f_ram),
    ("CoreFilter", f_cores),
    ("DiskFilter", f_disk),
    ("ImagePropertiesFilter", f_image_props),
    ("AggregateInstanceExtraSpecsFilter", f_aggregate_specs),
    ("ServerGroupAffinityFilter", f_group),
    ("SameHostFilter", f_same_host),
    ("DifferentHostFilter", f_different_host),
]


def filter_hosts(hosts: Iterable[HostRecord], q: Request, r: Ratios) -> list[HostRecord]:
    remaining = list(hosts)
    if not remaining:
        raise NoValidHost("There are no compute hosts.")
    # One fused pass with the cheap checks inlined; the staged pass below only runs to
    # name the filter that removed the last host.
    cpu_cap, ram_cap, disk_cap = r.cpu, r.ram, r.disk
    reserved, vcpus, ram, disk = r.reserved_memory_mb, q.vcpus, q.ram, q.disk
    zone = q.availability_zone
    # Only the filters this request can be removed by (most requests: none of them).
    props = q.image_properties
    rest = [fn for fn, used in (
        (f_ignore, bool(q.ignore_hosts)), (f_force_host, q.force_host is not None),
        (f_image_props, any(props.get(k) for k in (
            "hw_architecture", "architecture", "img_hv_type", "hypervisor_type"))),
        (f_aggregate_specs, q.aggregate_hosts is not None),
        (f_group, q.group_policy in ("affinity", "anti-affinity")),
        (f_same_host, bool(q.same_host)), (f_different_host, bool(q.different_host)))
        if used]
    fast = [h for h in remaining
            if h.enabled and h.alive
            and h.vcpus * cpu_cap - h.claimed_vcpus >= vcpus
            and (h.memory_mb - reserved if h.memory_mb > reserved else 0) * ram_cap
            - h.claimed_ram >= ram
            and h.local_gb * disk_cap - h.claimed_disk >= disk
            and (not zone or h.availability_zone == zone)]
    if rest:
        fast = [h for h in fast if all(fn(h, q, r) for fn in rest)]
    if fast:
        return fast
    for name, fn in FILTERS:
        passed = [h for h in remaining if fn(h, q, r)]
        if not passed:
            raise NoValidHost(
                f"Filter {name} returned 0 hosts (of {len(remaining)} that reached it)."
            )
        remaining = passed
    return remaining


def weigh(hosts: list[HostRecord], q: Request, r: Ratios, weigher: str = "spread",
          limit: int | None = None) -> list[HostRecord]:
    """Best first. spread: most free RAM (then vCPU); pack: least. Soft group policies
    prefer (soft-affinity) or avoid (soft-anti-affinity) the members' hosts."""
    sign = -1 if weigher == "spread" else 1
    reserved, cpu_cap, ram_cap = r.reserved_memory_mb, r.cpu, r.ram
    policy = q.group_policy

    def key(h: HostRecord) -> tuple[int, float, float, str]:
        soft = 0
        if policy == "soft-affinity":
            soft = 0 if h.host in q.group_hosts else 1
        elif policy == "soft-anti-affinity":
            soft = sum(1 for g in q.group_hosts if g == h.host)
        ram = (h.memory_mb - reserved if h.memory_mb > reserved else 0) * ram_cap \
            - h.claimed_ram
        return soft, sign * ram, sign * (h.vcpus * cpu_cap - h.claimed_vcpus), h.host

    if limit is not None and len(hosts) > limit:
        return heapq.nsmallest(limit, hosts, key=key)
    return sorted(hosts, key=key)


def select_hosts(hosts: Iterable[HostRecord], q: Request, r: Ratios, weigher: str = "spread",
                 limit: int | None = None) -> list[HostRecord]:
    """The hosts that pass every filter, best first (only the best ``limit`` if given)."""
    return weigh(filter_hosts(hosts, q, r), q, r, weigher, limit)
