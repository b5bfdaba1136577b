"""The network contracts: the host-state document and the agent's reports round-trip
through their JSON shape, and a malformed document is refused saying what is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from stratus.contracts.network import (
    HostRegistration,
    HostState,
    ModelError,
    PortStatusReport,
)

pytestmark = pytest.mark.unit

NET = "11111111-aaaa-4aaa-8aaa-000000000001"
PUBLIC = "33333333-cccc-4ccc-8ccc-000000000003"


def document() -> dict:
    """A host-state document as the network API answers it (every kind of object)."""
    return {
        "host": "cmp1", "generation": 42, "tunnel_peers": ["192.0.2.1"],
        "networks": [
            {"id": NET, "segmentation_type": "vxlan", "segmentation_id": 10, "mtu": 1450,
             "name": "private", "external": False, "physical_network": None,
             "subnets": [{"id": "sub-1", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
                          "dns_nameservers": ["192.0.2.53"], "enable_dhcp": True,
                          "host_routes": [{"destination": "10.1.0.0/16",
                                           "nexthop": "10.0.0.254"}],
                          "ipv6_ra_mode": None, "ipv6_address_mode": None, "router_ra": False},
                         {"id": "sub-6", "cidr": "2001:db8::/64", "gateway_ip": "2001:db8::1",
                          "dns_nameservers": [], "enable_dhcp": True, "host_routes": [],
                          "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac",
                          "router_ra": True}]},
            {"id": PUBLIC, "segmentation_type": "flat", "segmentation_id": None,
             "physical_network": "public", "mtu": 1500, "external": True, "name": "public",
             "subnets": [{"id": "pub", "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1",
                          "dns_nameservers": [], "host_routes": [], "enable_dhcp": False,
                          "ipv6_ra_mode": None, "ipv6_address_mode": None,
                          "router_ra": False}]}],
        "ports": [{"id": "port-1", "network_id": NET, "mac_address": "fa:16:3e:00:00:01",
                   "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.11"}],
                   "security_groups": ["sg"], "port_security_enabled": True,
                   "allowed_address_pairs": [{"ip_address": "10.0.0.100/32",
                                              "mac_address": None}],
                   "device_owner": "compute:nova", "device_name": None}],
        "dhcp_servers": [{"network_id": NET, "port_id": "dhcp-1",
                          "mac_address": "fa:16:3e:00:00:02",
                          "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.2"}],
                          "hosts": [{"mac_address": "fa:16:3e:00:00:01",
                                     "ip_address": "10.0.0.11",
                                     "hostname": "host-10-0-0-11",
                                     "options": [{"name": "tftp-server",
                                                  "value": "10.0.0.2"}]}],
                          "metadata_proxy": True, "lease_seconds": 86400}],
        "routers": [{"id": "router-1", "enable_snat": True,
                     "interfaces": [{"port_id": "r-1", "network_id": NET, "subnet_id": "sub-1",
                                     "mac_address": "fa:16:3e:00:00:05",
                                     "ip_address": "10.0.0.1", "prefixlen": 24}],
                     "gateway": {"port_id": "r-gw", "network_id": PUBLIC,
                                 "mac_address": "fa:16:3e:00:00:06",
                                 "ip_address": "203.0.113.10", "prefixlen": 24,
                                 "gateway_ip": "203.0.113.1",
                                 "ipv6_address": "2001:db8:ff::10", "ipv6_prefixlen": 64,
                                 "ipv6_gateway_ip": "2001:db8:ff::1"},
                     "floating_ips": [{"floating_ip_address": "203.0.113.20",
                                       "fixed_ip_address": "10.0.0.11", "id": "fip-1"}],
                     "routes": [{"destination": "192.168.50.0/24", "nexthop": "10.0.0.254"}]}],
        "security_groups": [{"id": "sg", "name": "default", "member_ips": ["10.0.0.11"],
                             "rules": [{"direction": "ingress", "ethertype": "IPv4",
                                        "protocol": "tcp", "port_range_min": 22,
                                        "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0",
                                        "remote_group_id": None, "id": "rule-1"}]}],
        "metadata": {"upstream_url": "http://127.0.0.1:8775", "shared_secret": "s3cret"},
    }


def test_the_host_state_round_trips_unchanged() -> None:
    doc = document()
    state = HostState.from_dict(doc)
    assert state.to_dict() == doc
    assert HostState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert HostState.from_json(state.to_json()) == state
    assert state.generation == 42
    assert state.routers[0].gateway is not None
    assert state.routers[0].gateway.gateway_ip == "203.0.113.1"
    assert state.security_group("sg") is state.security_groups[0]


def test_the_generation_is_not_part_of_what_the_host_must_look_like() -> None:
    doc = document()
    older = HostState.from_dict(doc)
    doc["generation"] = 43
    assert HostState.from_dict(doc) == older  # the agent skips a woken pass on equality
    del doc["generation"]
    assert HostState.from_dict(doc).generation is None


def test_an_empty_state_round_trips_with_its_defaults() -> None:
    empty = HostState(host="nobody")
    assert HostState.from_dict(empty.to_dict()) == empty
    assert empty.to_dict()["networks"] == [] and empty.to_dict()["metadata"] == {
        "upstream_url": "", "shared_secret": ""}


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("host"), "HostState: required key 'host' is missing"),
    (lambda d: d.update(generation="7"), "HostState.generation must be an integer, got '7'"),
    (lambda d: d.update(networks={}), "HostState.networks must be a list"),
    (lambda d: d["networks"][0].update(mtu="1450"), "Network.mtu must be an integer"),
    (lambda d: d["networks"][1].pop("physical_network"), "a flat network needs physical_network"),
    (lambda d: d["ports"][0].update(port_security_enabled="yes"),
     "Port.port_security_enabled must be true or false, got 'yes'"),
    (lambda d: d["ports"][0]["fixed_ips"][0].update(ip_address="10.0.0.300"),
     "fixed ip '10.0.0.300' is not a valid IP address"),
    (lambda d: d["dhcp_servers"][0]["hosts"][0].update(mac_address="fa:16:3e"),
     "dhcp host mac_address 'fa:16:3e' is not a MAC address"),
    (lambda d: d["routers"][0]["gateway"].update(network_id="elsewhere"),
     "router router-1: network elsewhere is not in networks"),
    (lambda d: d["security_groups"][0]["rules"][0].update(protocol="gre"),
     "rule protocol 'gre' is not tcp, udp, icmp or null"),
    (lambda d: d.update(metadata=[]), "MetadataSettings must be a JSON object, got list"),
])
def test_a_malformed_host_state_says_what_is_wrong(mutate: Callable[[dict], object],
                                                   message: str) -> None:
    doc = document()
    mutate(doc)
    with pytest.raises(ModelError) as err:
        HostState.from_dict(doc)
    assert message in str(err.value)


def test_a_state_that_is_not_json_says_so() -> None:
    with pytest.raises(ModelError, match="not valid JSON"):
        HostState.from_json("{")
    with pytest.raises(ModelError, match="HostState must be a JSON object, got list"):
        HostState.from_json("[]")


def test_the_reports_round_trip_through_their_bodies() -> None:
    registration = HostRegistration(underlay_ip="192.0.2.5", network_node=True)
    body = registration.to_body()
    assert body == {"host": {"underlay_ip": "192.0.2.5", "network_node": True}}
    assert HostRegistration.from_body(json.loads(json.dumps(body))) == registration
    assert HostRegistration().to_body() == {"host": {"underlay_ip": None,
                                                    "network_node": False}}
    report = PortStatusReport(active=["p1", "p2"], down=["p3"])
    assert report.to_body() == {"ports": {"active": ["p1", "p2"], "down": ["p3"]}}
    assert PortStatusReport.from_body(report.to_body()) == report
    assert PortStatusReport.from_body({"ports": {}}) == PortStatusReport()


@pytest.mark.parametrize(("cls", "body", "message"), [
    (HostRegistration, {"underlay_ip": "192.0.2.5"},
     "HostRegistration: the body must be a JSON object with a 'host' object"),
    (HostRegistration, {"host": {"underlay_ip": "not-an-ip"}},
     "underlay_ip 'not-an-ip' is not a valid IP address"),
    (HostRegistration, {"host": {"network_node": "true"}},
     "HostRegistration.network_node must be true or false, got 'true'"),
    (PortStatusReport, {"ports": {"active": "p1"}}, "PortStatusReport.active must be a list"),
    (PortStatusReport, {"ports": {"down": [7]}},
     "PortStatusReport.down[0] must be a string, got 7"),
    (PortStatusReport, [], "PortStatusReport: the body must be a JSON object"),
])
def test_a_malformed_report_says_what_is_wrong(cls: type[HostRegistration | PortStatusReport],
                                               body: object, message: str) -> None:
    with pytest.raises(ModelError) as err:
        cls.from_body(body)
    assert message in str(err.value)
