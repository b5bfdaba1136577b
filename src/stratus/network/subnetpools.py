"""Subnet pools (``subnet_allocation``, ``default-subnetpools``): prefixes subnets take
their CIDR from.

``SubnetPoolService`` (``core.subnetpools``) owns the ``subnetpool`` rows: create,
list, show, update (prefixes only grow; bounds stay ordered), delete (409 while a subnet
was allocated from the pool). ``allocate`` is the hook ``subnets.py`` calls for a
subnet created with ``subnetpool_id`` (or ``use_default_subnetpool``): it picks the
first free block of the requested prefix length (``prefixlen``, else the pool's
``default_prefixlen``) not overlapping the pool's other subnets, or checks an explicit
``cidr`` against the pool. An UPDATE of the pool row comes first, so two allocations
from one pool are serialized by the database (a row lock on PostgreSQL; SQLite has one
writer) and never pick the same block. A pool is IPv4 or IPv6 (its prefixes say which,
never both; Neutron's bounds: /8-/32 for IPv4, /64-/128 for IPv6, so an IPv6 pool gives
/64s unless asked otherwise); one default pool per family. Address scopes and pool
quotas do not exist (``address_scope_id`` and ``default_quota`` are null).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from stratus.common.timeutil import new_id, utcnow
from stratus.network import ipam, views
from stratus.network import models as m
from stratus.network.settings import neutron

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
POOL_ATTRS = {
    "name", "description", "project_id", "tenant_id", "prefixes", "default_prefixlen",
    "min_prefixlen", "max_prefixlen", "shared", "is_default", "address_scope_id",
    "default_quota", "ip_version", "tags",
}
DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}  # Neutron's defaults
MAX_PREFIXLEN = {4: 32, 6: 128}
MAX_PREFIXES = 64


def pool_not_found(pool_id: object) -> ApiError:
    return neutron(NotFound, "SubnetPoolNotFound", f"Subnet pool {pool_id} could not be found.")


def parse_prefixes(raw: object) -> list[IPNet]:
    """The pool's prefixes, merged where adjacent or nested (as Neutron stores them), all of
    one family."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest("Invalid input for prefixes. Reason: a non-empty list of CIDRs is "
                         "expected, e.g. [\"10.10.0.0/16\"] or [\"2001:db8::/48\"].")
    if len(raw) > MAX_PREFIXES:
        raise BadRequest(f"Invalid input for prefixes. Reason: at most {MAX_PREFIXES} "
                         "prefixes.")
    nets = [ipam.parse_cidr(item, "prefix", None) for item in raw]
    if len({n.version for n in nets}) > 1:
        raise neutron(BadRequest, "PrefixVersionMismatch",
                      "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
    return sorted(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]


def _bound(obj: dict[str, Any], key: str, default: int, version: int = 4) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.isdigit():  # Neutron converts "24" too
        value = int(value)
    top = MAX_PREFIXLEN[version]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise BadRequest(f"Invalid input for {key}. Reason: {value!r} is not an integer from "
                         f"0 to {top}.")
    return value


def bounds(obj: dict[str, Any], current: m.SubnetPool | None, version: int = 4
           ) -> tuple[int, int, int]:
    """(min, default, max) prefix lengths: given, else current, else Neutron's defaults."""
    if current is not None:
        version = current.ip_version
    lo = _bound(obj, "min_prefixlen", current.min_prefixlen if current else
                DEFAULT_MIN_PREFIXLEN[version], version)
    hi = _bound(obj, "max_prefixlen", current.max_prefixlen if current else
                MAX_PREFIXLEN[version], version)
    default = _bound(obj, "default_prefixlen", current.default_prefixlen if current else lo,
                     version)
    if lo > hi:
        raise neutron(BadRequest, "IllegalSubnetPoolPrefixBounds",
                      f"Illegal prefix bounds: min_prefixlen={lo}, max_prefixlen={hi} "
                      "(min_prefixlen must not exceed max_prefixlen).")
    if not lo <= default <= hi:
        raise neutron(BadRequest, "IllegalSubnetPoolPrefixBounds",
                      f"Illegal prefix bounds: default_prefixlen={default} must be between "
                      f"min_prefixlen={lo} and max_prefixlen={hi}.")
    return lo, default, hi


def check_unsupported(obj: dict[str, Any]) -> None:
    if obj.get("address_scope_id") is not None:
        raise BadRequest("Invalid input for address_scope_id: address scopes are not "
                         "supported (the only value is null).")
    if obj.get("default_quota") is not None:
        raise BadRequest("Invalid input for default_quota: subnet pool quotas are not "
                         "supported (the only value is null).")
    if obj.get("ip_version") not in (None, 4, 6):
        raise BadRequest(f"Invalid input for ip_version: {obj.get('ip_version')!r} is not "
                         "in [4, 6].")


def free_blocks(prefixes: list[IPNet], taken: list[IPNet]) -> list[IPNet]:
    """The parts of ``prefixes`` no block of ``taken`` overlaps, in address order."""
    blocks = list(prefixes)
    for used in taken:
        nxt: list[IPNet] = []
        for block in blocks:
            if used.version != block.version:
                nxt.append(block)
            elif used.subnet_of(block):  # type: ignore[arg-type]
                nxt.extend(block.address_exclude(used))  # type: ignore[arg-type]
            elif not block.subnet_of(used):  # type: ignore[arg-type]
                nxt.append(block)
        blocks = nxt
    return sorted(blocks, key=lambda b: (b.version, int(b.network_address), b.prefixlen))


def first_fit(prefixes: list[IPNet], taken: list[IPNet], prefixlen: int) -> IPNet | None:
    """The lowest free block of ``/prefixlen`` (every free block is aligned: a CIDR)."""
    for block in free_blocks(prefixes, taken):
        if block.prefixlen <= prefixlen:
            return ipaddress.ip_network(f"{block.network_address}/{prefixlen}")
    return None


class SubnetPoolService:
    """The subnet pool resource over the database."""

    def __init__(self, core: NetworkCore) -> None:
        self.core = core

    # ---- lookups ------------------------------------------------------------------------

    @staticmethod
    def usable(ctx: AuthContext, pool: m.SubnetPool) -> bool:
        return ctx.is_admin or pool.shared or pool.project_id == ctx.project_id

    def get(self, s: Session, ctx: AuthContext, pool_id: object) -> m.SubnetPool:
        pool = s.get(m.SubnetPool, pool_id) if isinstance(pool_id, str) and pool_id else None
        if pool is None or not self.usable(ctx, pool):
            raise pool_not_found(pool_id)
        return pool

    @staticmethod
    def taken(s: Session, pool_id: str) -> list[IPNet]:
        return [ipaddress.ip_network(c) for c in s.scalars(
            sa.select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool_id))]

    # ---- the resource -------------------------------------------------------------------

    def visible(self, ctx: AuthContext) -> list[dict[str, Any]]:
        q = sa.select(m.SubnetPool).order_by(m.SubnetPool.created_at, m.SubnetPool.id)
        if not ctx.is_admin:
            q = q.where(sa.or_(m.SubnetPool.project_id == ctx.project_id, m.SubnetPool.shared))
        with self.core.db.session() as s:
            return views.subnetpools(list(s.scalars(q)))

    def show(self, ctx: AuthContext, pool_id: str) -> dict[str, Any]:
        with self.core.db.session() as s:
            return views.subnetpools([self.get(s, ctx, pool_id)])[0]

    def _check_default(self, s: Session, ctx: AuthContext, pool_id: str | None,
                       version: int) -> None:
        if not ctx.is_admin:
            raise Forbidden("rule:create_subnetpool:is_default is disallowed by policy "
                            "(only an admin sets the default subnet pool).")
        other = s.scalar(sa.select(m.SubnetPool.id).where(
            m.SubnetPool.default_for == version))
        if other is not None and other != pool_id:
            raise neutron(BadRequest, "InvalidInput",
                          f"A default subnetpool for this IP family has already been set "
                          f"({other}). Only one default may exist per IP family.")

    def create(self, ctx: AuthContext, obj: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        views.only(obj, POOL_ATTRS, "subnetpool")
        check_unsupported(obj)
        if "prefixes" not in obj:
            raise BadRequest("Invalid input for operation: 'prefixes' is required.")
        prefixes = parse_prefixes(obj["prefixes"])
        version = prefixes[0].version
        if obj.get("ip_version") not in (None, version):
            raise BadRequest(f"Invalid input for ip_version: the prefixes are IPv{version}; "
                             f"ip_version is {obj['ip_version']}.")
        lo, default, hi = bounds(obj, None, version)
        shared = views.boolean(obj, "shared", False)
        is_default = views.boolean(obj, "is_default", False)
        name = views.text(obj, "name")
        description = views.text(obj, "description")
        if shared and not ctx.is_admin:
            raise Forbidden("rule:create_subnetpool:shared is disallowed by policy.")

        def work(s: Session) -> dict[str, Any]:
            project = core.target_project(ctx, obj)
            if is_default:
                self._check_default(s, ctx, None, version)
            now = utcnow()
            pool = m.SubnetPool(
                id=new_id(), project_id=project, name=name, description=description,
                ip_version=version, prefixes=[str(p) for p in prefixes],
                default_prefixlen=default, min_prefixlen=lo, max_prefixlen=hi, shared=shared,
                default_for=version if is_default else None, allocations=0,
                created_at=now, updated_at=now, revision_number=0)
            s.add(pool)
            s.flush()
            return views.subnetpools([pool])[0]

        core.require_member(ctx, "create_subnetpool")
        return core.transaction(work)

    def update(self, ctx: AuthContext, pool_id: str, obj: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        views.only(obj, POOL_ATTRS, "subnetpool")
        for key in ("shared", "ip_version", "project_id", "tenant_id"):
            if key in obj:
                raise BadRequest(f"Cannot update read-only attribute {key}")
        check_unsupported(obj)

        def work(s: Session) -> dict[str, Any]:
            pool = self.get(s, ctx, pool_id)
            if not core.owns(ctx, pool.project_id):
                raise Forbidden("rule:update_subnetpool is disallowed by policy")
            core.require_member(ctx, "update_subnetpool")
            if "prefixes" in obj:
                new = parse_prefixes(obj["prefixes"])
                if new[0].version != pool.ip_version:
                    raise neutron(BadRequest, "PrefixVersionMismatch",
                                  "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
                for old in (ipaddress.ip_network(p) for p in pool.prefixes):
                    if not any(old.subnet_of(n) for n in new):  # type: ignore[arg-type]
                        raise neutron(BadRequest, "IllegalSubnetPoolPrefixUpdate",
                                      f"Illegal update to prefixes: prefix {old} is missing; "
                                      "existing prefixes must be a subset of the new "
                                      "prefixes (a pool's prefixes only grow).")
                pool.prefixes = [str(p) for p in new]
            pool.min_prefixlen, pool.default_prefixlen, pool.max_prefixlen = bounds(obj, pool)
            if "is_default" in obj:
                wanted = views.boolean(obj, "is_default", False)
                if wanted != (pool.default_for is not None):
                    self._check_default(s, ctx, pool.id, pool.ip_version)
                    pool.default_for = pool.ip_version if wanted else None
            pool.name = views.text(obj, "name", pool.name)
            pool.description = views.text(obj, "description", pool.description)
            pool.updated_at = utcnow()
            pool.revision_number += 1
            s.flush()
            return views.subnetpools([pool])[0]

        return core.transaction(work)

    def delete(self, ctx: AuthContext, pool_id: str) -> None:
        core = self.core

        def work(s: Session) -> None:
            pool = self.get(s, ctx, pool_id)
            if not core.owns(ctx, pool.project_id):
                raise Forbidden("rule:delete_subnetpool is disallowed by policy")
            core.require_member(ctx, "delete_subnetpool")
            if s.scalar(sa.select(m.Subnet.id).where(m.Subnet.subnetpool_id == pool.id)):
                raise neutron(Conflict, "SubnetPoolInUse",
                              f"Unable to complete operation on subnet pool {pool.id}. "
                              "Subnets were allocated from it; delete them first.")
            s.delete(pool)
            s.flush()

        core.transaction(work)

    # ---- the hook subnets.py calls ------------------------------------------------------

    def allocate(self, s: Session, ctx: AuthContext, obj: dict[str, Any], version: int = 4
                 ) -> tuple[IPNet, str] | None:
        """(cidr, pool id) for a subnet asking a pool for its CIDR, or None when it does not
        (no ``subnetpool_id``, no ``use_default_subnetpool``)."""
        pool_id = obj.get("subnetpool_id")
        use_default = views.boolean(obj, "use_default_subnetpool", False)
        if pool_id is None and not use_default:
            if obj.get("prefixlen") is not None:
                raise BadRequest("Invalid input for prefixlen: it is only used with "
                                 "subnetpool_id or use_default_subnetpool.")
            return None
        if pool_id is not None and use_default:
            raise BadRequest("subnetpool_id and use_default_subnetpool cannot both be given.")
        if pool_id is None:
            pool_id = s.scalar(sa.select(m.SubnetPool.id).where(
                m.SubnetPool.default_for == version))
            if pool_id is None:
                raise BadRequest(f"No default subnetpool found for IPv{version} "
                                 "(use_default_subnetpool needs one: is_default=true).")
        pool = self.get(s, ctx, pool_id)
        # Serialize allocations from this pool (see the module docstring).
        s.execute(sa.update(m.SubnetPool).where(m.SubnetPool.id == pool.id)
                  .values(allocations=m.SubnetPool.allocations + 1))
        s.refresh(pool)
        prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
        taken = self.taken(s, pool.id)
        if obj.get("cidr") is not None:
            if obj.get("prefixlen") is not None:
                raise BadRequest("cidr and prefixlen cannot both be given.")
            cidr = ipam.parse_cidr(obj["cidr"], "cidr", pool.ip_version)
            self._check_len(pool, cidr.prefixlen)
            if not any(cidr.subnet_of(p) for p in prefixes):  # type: ignore[arg-type]
                raise neutron(BadRequest, "SubnetAllocationError",
                              f"Cannot allocate requested subnet {cidr} from the available "
                              f"set of prefixes {', '.join(pool.prefixes)}.")
            if any(cidr.overlaps(t) for t in taken):
                raise neutron(Conflict, "SubnetAllocationError",
                              f"Failed to allocate subnet: {cidr} overlaps a subnet already "
                              f"allocated from subnet pool {pool.id}.")
            return cidr, pool.id
        prefixlen = _bound(obj, "prefixlen", pool.default_prefixlen, pool.ip_version)
        self._check_len(pool, prefixlen)
        found = first_fit(prefixes, taken, prefixlen)
        if found is None:
            raise neutron(Conflict, "SubnetAllocationError",
                          f"Failed to allocate subnet: Insufficient prefix space to allocate "
                          f"subnet size /{prefixlen} from subnet pool {pool.id}.")
        return found, pool.id

    @staticmethod
    def _check_len(pool: m.SubnetPool, prefixlen: int) -> None:
        if not pool.min_prefixlen <= prefixlen <= pool.max_prefixlen:
            raise neutron(BadRequest, "SubnetAllocationError",
                          f"Unsupported prefix length /{prefixlen}: subnet pool {pool.id} "
                          f"allocates /{pool.min_prefixlen} to /{pool.max_prefixlen}.")
