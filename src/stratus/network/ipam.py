"""Address arithmetic for subnets: validating cidrs, gateways and pools, choosing free values.

Pure functions, no database: the callers read what is taken, ask here for a
candidate, and insert it; the database's unique constraints settle races
(see ``core.transaction``). Candidates are picked at random among the first
free values so that concurrent writers rarely pick the same one.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Iterable, Iterator

from stratus.common.errors import BadRequest

IPv4Net = ipaddress.IPv4Network
IPv4 = ipaddress.IPv4Address
CANDIDATE_WINDOW = 64


def parse_cidr(value: object, what: str = "cidr") -> IPv4Net:
    """An IPv4 network in canonical form, or a 400 that says what is wrong."""
    if not isinstance(value, str) or "/" not in value:
        raise BadRequest(f"{what} {value!r} is not a valid IPv4 network (expected a.b.c.d/nn).")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise BadRequest(f"{what} {value} is not a valid IPv4 network.") from None
    if not isinstance(net, IPv4Net):
        raise BadRequest(f"{what} {value} is an IPv6 network; only IPv4 is supported.")
    if str(net) != value.strip():
        raise BadRequest(
            f"{what} {value} has host bits set; the network is {net} (use that instead)."
        )
    return net


def parse_ip(value: object, what: str = "ip_address") -> IPv4:
    if not isinstance(value, str):
        raise BadRequest(f"{what} {value!r} is not a valid IPv4 address.")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise BadRequest(f"{what} {value!r} is not a valid IPv4 address.") from None
    if not isinstance(ip, IPv4):
        raise BadRequest(f"{what} {value} is an IPv6 address; only IPv4 is supported.")
    return ip


def host_range(net: IPv4Net) -> tuple[int, int]:
    """First and last usable host address (as ints) of a subnet of at least a /30."""
    return int(net.network_address) + 1, int(net.broadcast_address) - 1


def check_subnet_size(net: IPv4Net) -> None:
    if net.prefixlen > 30:
        raise BadRequest(
            f"cidr {net} is too small: a subnet needs at least a /30 (two usable addresses)."
        )


def check_usable(net: IPv4Net, ip: IPv4, what: str) -> None:
    if ip not in net:
        raise BadRequest(f"{what} {ip} is not inside the subnet {net}.")
    if ip in (net.network_address, net.broadcast_address):
        raise BadRequest(f"{what} {ip} is the network or broadcast address of {net}.")


def default_gateway(net: IPv4Net) -> IPv4:
    return IPv4(host_range(net)[0])


def default_pools(net: IPv4Net, gateway: IPv4 | None) -> list[tuple[IPv4, IPv4]]:
    """All host addresses except the gateway, as one or two ranges."""
    first, last = host_range(net)
    if gateway is None or not first <= int(gateway) <= last:
        return [(IPv4(first), IPv4(last))]
    g = int(gateway)
    pools = []
    if g > first:
        pools.append((IPv4(first), IPv4(g - 1)))
    if g < last:
        pools.append((IPv4(g + 1), IPv4(last)))
    return pools


def parse_pools(
    raw: object, net: IPv4Net, gateway: IPv4 | None
) -> list[tuple[IPv4, IPv4]]:
    """Validate allocation_pools: inside the cidr, ordered, disjoint, not holding the gateway."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest("allocation_pools must be a non-empty list of {start, end} objects.")
    pools: list[tuple[IPv4, IPv4]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise BadRequest(
                f"allocation pool {item!r} must be an object with exactly 'start' and 'end'."
            )
        start = parse_ip(item["start"], "allocation pool start")
        end = parse_ip(item["end"], "allocation pool end")
        check_usable(net, start, "allocation pool start")
        check_usable(net, end, "allocation pool end")
        if int(start) > int(end):
            raise BadRequest(f"allocation pool {start}-{end}: start is after end.")
        if gateway is not None and int(start) <= int(gateway) <= int(end):
            raise BadRequest(
                f"Gateway ip {gateway} conflicts with allocation pool {start}-{end}."
            )
        pools.append((start, end))
    pools.sort(key=lambda p: int(p[0]))
    for (s1, e1), (s2, e2) in itertools.pairwise(pools):
        if int(s2) <= int(e1):
            raise BadRequest(f"allocation pools {s1}-{e1} and {s2}-{e2} overlap.")
    return pools


def pool_size(pools: Iterable[tuple[IPv4, IPv4]]) -> int:
    return sum(int(e) - int(s) + 1 for s, e in pools)


def free_in_ranges(ranges: Iterable[tuple[int, int]], taken: set[int]) -> Iterator[int]:
    """Values of the inclusive ranges that are not taken, in order, lazily."""
    for first, last in ranges:
        for value in range(first, last + 1):
            if value not in taken:
                yield value


def pick_free(
    ranges: Iterable[tuple[int, int]], taken: set[int], window: int = CANDIDATE_WINDOW
) -> int | None:
    """A random value among the first ``window`` free ones, or None when all are taken.

    Stops after ``len(taken) + window`` steps, so huge ranges cost what is used.
    """
    candidates = []
    for value in free_in_ranges(ranges, taken):
        candidates.append(value)
        if len(candidates) >= window:
            break
    return random.choice(candidates) if candidates else None


def pick_free_ip(
    pools: Iterable[tuple[IPv4, IPv4]], taken: Iterable[str], window: int = CANDIDATE_WINDOW
) -> str | None:
    used = {int(ipaddress.IPv4Address(t)) for t in taken}
    value = pick_free(((int(s), int(e)) for s, e in pools), used, window)
    return None if value is None else str(IPv4(value))


def parse_ranges(spec: str, lowest: int, highest: int, what: str) -> list[tuple[int, int]]:
    """'1:1000,2000:2100' -> [(1, 1000), (2000, 2100)] (a configuration value)."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        first, _, last = part.partition(":")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"{what}: {part!r} is not first:last") from None
        if not lowest <= lo <= hi <= highest:
            raise ValueError(
                f"{what}: {part!r} must satisfy {lowest} <= first <= last <= {highest}"
            )
        out.append((lo, hi))
    return out


def overlaps(a: IPv4Net, b: IPv4Net) -> bool:
    return a.overlaps(b)
