"""Address arithmetic and allocation choices of the network service (no HTTP)."""

from __future__ import annotations

import ipaddress

import pytest

from stratus.common.errors import BadRequest
from stratus.network import ipam
from stratus.network.core import Settings

pytestmark = pytest.mark.unit
N = ipaddress.IPv4Network
A = ipaddress.IPv4Address


@pytest.mark.parametrize(("cidr", "message"), [
    ("10.0.0.0/33", "cidr 10.0.0.0/33 is not a valid IPv4 network."),
    ("10.0.0.1/24", "cidr 10.0.0.1/24 has host bits set; the network is 10.0.0.0/24"),
    ("fd00::/64", "cidr fd00::/64 is an IPv6 network; ip_version 4 needs an IPv4 one."),
    ("banana", "cidr 'banana' is not a valid IPv4 network"),
    (7, "cidr 7 is not a valid IPv4 network"),
])
def test_bad_cidrs_say_what_is_wrong(cidr: object, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        ipam.parse_cidr(cidr)
    assert message in err.value.message


def test_tiny_subnets_are_refused() -> None:
    with pytest.raises(BadRequest, match="at least a /30"):
        ipam.check_subnet_size(N("10.0.0.0/31"))
    ipam.check_subnet_size(N("10.0.0.0/30"))


def test_default_pools_skip_the_gateway() -> None:
    net = N("10.0.0.0/24")
    assert ipam.default_pools(net, A("10.0.0.1")) == [(A("10.0.0.2"), A("10.0.0.254"))]
    assert ipam.default_pools(net, A("10.0.0.100")) == [
        (A("10.0.0.1"), A("10.0.0.99")), (A("10.0.0.101"), A("10.0.0.254"))]
    assert ipam.default_pools(net, None) == [(A("10.0.0.1"), A("10.0.0.254"))]


@pytest.mark.parametrize(("pools", "message"), [
    ([{"start": "10.0.1.5", "end": "10.0.1.9"}], "is not inside the subnet 10.0.0.0/24"),
    ([{"start": "10.0.0.9", "end": "10.0.0.5"}], "start is after end"),
    ([{"start": "10.0.0.1", "end": "10.0.0.9"}], "Gateway ip 10.0.0.1 conflicts"),
    ([{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.9", "end": "10.0.0.20"}],
     "overlap"),
    ([{"start": "10.0.0.0", "end": "10.0.0.9"}], "is the network address"),
    ([{"start": "10.0.0.2"}], "exactly 'start' and 'end'"),
    ([], "non-empty list"),
])
def test_bad_allocation_pools(pools: list, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        ipam.parse_pools(pools, N("10.0.0.0/24"), A("10.0.0.1"))


def test_pools_are_sorted_and_sized() -> None:
    pools = ipam.parse_pools([{"start": "10.0.0.50", "end": "10.0.0.59"},
                              {"start": "10.0.0.2", "end": "10.0.0.3"}],
                             N("10.0.0.0/24"), A("10.0.0.1"))
    assert pools[0][0] == A("10.0.0.2") and ipam.pool_size(pools) == 12


def test_pick_free_never_returns_a_taken_value_and_none_when_full() -> None:
    pools = [(A("10.0.0.2"), A("10.0.0.6"))]
    taken: list[str] = []
    for _ in range(5):
        ip = ipam.pick_free_ip(pools, taken)
        assert ip is not None and ip not in taken
        taken.append(ip)
    assert sorted(taken) == [f"10.0.0.{i}" for i in range(2, 7)]
    assert ipam.pick_free_ip(pools, taken) is None


def test_pick_free_in_a_huge_range_costs_what_is_used() -> None:
    ranges = [(1, 2**24 - 1)]
    taken = set(range(1, 1000))
    value = ipam.pick_free(ranges, taken)
    assert value is not None and 1000 <= value < 1000 + ipam.CANDIDATE_WINDOW
    assert ipam.pick_free(ranges, set(), window=1) == 1


def test_segment_ranges_from_configuration() -> None:
    assert ipam.parse_ranges("1:10, 20:20", 1, 100, "x") == [(1, 10), (20, 20)]
    with pytest.raises(ValueError, match="must satisfy"):
        ipam.parse_ranges("5:1", 1, 100, "x")
    with pytest.raises(ValueError, match="first:last"):
        ipam.parse_ranges("a:b", 1, 100, "x")


def test_mtu_comes_from_the_tunnel_overhead() -> None:
    s = Settings(physical_mtu=9000)
    assert (s.max_mtu("vxlan"), s.max_mtu("gre"), s.max_mtu("flat")) == (8950, 8958, 9000)
