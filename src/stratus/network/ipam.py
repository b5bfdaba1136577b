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
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
CANDIDATE_WINDOW = 64
_FORM = {4: "a.b.c.d/nn", 6: "x:y::/nn"}


def _ipv(version: int | None) -> str:
    return "IP" if version is None else f"IPv{version}"


def parse_cidr(value: object, what: str = "cidr", version: int | None = 4) -> IPNet:
    """A network of ``version`` (None: either) in canonical form, or a 400 saying what is wrong."""
    kind = _ipv(version)
    if not isinstance(value, str) or "/" not in value:
        form = _FORM.get(version or 4) if version else "a.b.c.d/nn or x:y::/nn"
        raise BadRequest(f"{what} {value!r} is not a valid {kind} network (expected {form}).")
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise BadRequest(f"{what} {value} is not a valid {kind} network.") from None
    if version is not None and net.version != version:
        raise BadRequest(f"{what} {value} is an IPv{net.version} network; ip_version "
                         f"{version} needs an {kind} one.")
    if net.network_address != _addr(value):
        raise BadRequest(
            f"{what} {value} has host bits set; the network is {net} (use that instead)."
        )
    return net


def parse_cidr4(value: object, what: str = "cidr") -> IPv4Net:
    """An IPv4 network (``parse_cidr`` with version 4, typed so)."""
    net = parse_cidr(value, what, 4)
    assert isinstance(net, IPv4Net)
    return net


def _addr(value: str) -> IP | None:
    try:
        return ipaddress.ip_address(value.strip().partition("/")[0])
    except ValueError:
        return None


def parse_ip(value: object, what: str = "ip_address", version: int | None = 4) -> IP:
    """An address of ``version`` (None: either), or a 400 saying what is wrong."""
    kind = _ipv(version)
    if not isinstance(value, str):
        raise BadRequest(f"{what} {value!r} is not a valid {kind} address.")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise BadRequest(f"{what} {value!r} is not a valid {kind} address.") from None
    if version is not None and ip.version != version:
        raise BadRequest(f"{what} {value} is an IPv{ip.version} address; an {kind} address "
                         "is expected here.")
    return ip


def host_range(net: IPNet) -> tuple[int, int]:
    """First and last usable host address (as ints): IPv4 leaves out the network and
    broadcast addresses, IPv6 only the subnet-router anycast one (the prefix itself)."""
    if net.version == 6:
        return int(net.network_address) + 1, int(net.broadcast_address)
    return int(net.network_address) + 1, int(net.broadcast_address) - 1


def check_subnet_size(net: IPNet) -> None:
    limit = 30 if net.version == 4 else 126
    if net.prefixlen > limit:
        raise BadRequest(
            f"cidr {net} is too small: a subnet needs at least a /{limit} "
            "(two usable addresses)."
        )


def check_usable(net: IPNet, ip: IP, what: str) -> None:
    if ip not in net:
        raise BadRequest(f"{what} {ip} is not inside the subnet {net}.")
    if ip == net.network_address:
        raise BadRequest(f"{what} {ip} is the network address of {net}.")
    if net.version == 4 and ip == net.broadcast_address:
        raise BadRequest(f"{what} {ip} is the broadcast address of {net}.")


def _ip(version: int, value: int) -> IP:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def default_gateway(net: IPNet) -> IP:
    return _ip(net.version, host_range(net)[0])


def default_pools(net: IPNet, gateway: IP | None) -> list[tuple[IP, IP]]:
    """All host addresses except the gateway, as one or two ranges."""
    first, last = host_range(net)
    v = net.version
    if gateway is None or not first <= int(gateway) <= last:
        return [(_ip(v, first), _ip(v, last))]
    g = int(gateway)
    pools = []
    if g > first:
        pools.append((_ip(v, first), _ip(v, g - 1)))
    if g < last:
        pools.append((_ip(v, g + 1), _ip(v, last)))
    return pools


AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def auto_address(version: int, ra_mode: str | None, address_mode: str | None) -> bool:
    """True for an IPv6 subnet whose hosts make their own address (EUI-64 from the MAC)."""
    mode = address_mode if address_mode is not None else ra_mode
    return version == 6 and mode in AUTO_ADDRESS_MODES


def eui64(net: IPNet, mac: str) -> str:
    """The modified EUI-64 address of ``mac`` in the /64 ``net`` (RFC 4291 appendix A)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = int.from_bytes(bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]]), "big")
    return str(ipaddress.IPv6Address(int(net.network_address) | iid))


def parse_pools(
    raw: object, net: IPNet, gateway: IP | None
) -> list[tuple[IP, IP]]:
    """Validate allocation_pools: inside the cidr, ordered, disjoint, not holding the gateway."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest("allocation_pools must be a non-empty list of {start, end} objects.")
    pools: list[tuple[IP, IP]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise BadRequest(
                f"allocation pool {item!r} must be an object with exactly 'start' and 'end'."
            )
        start = parse_ip(item["start"], "allocation pool start", net.version)
        end = parse_ip(item["end"], "allocation pool end", net.version)
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


def pool_size(pools: Iterable[tuple[IP, IP]]) -> int:
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
    pools: Iterable[tuple[IP, IP]], taken: Iterable[str], window: int = CANDIDATE_WINDOW
) -> str | None:
    pools = list(pools)
    if not pools:
        return None
    version = pools[0][0].version
    used = {int(ipaddress.ip_address(t)) for t in taken}
    value = pick_free(((int(s), int(e)) for s, e in pools), used, window)
    return None if value is None else str(_ip(version, value))


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


def overlaps(a: IPNet, b: IPNet) -> bool:
    return a.version == b.version and a.overlaps(b)
