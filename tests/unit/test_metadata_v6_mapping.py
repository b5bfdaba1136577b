"""Metadata over IPv6 (fe80::a9fe:a9fe): the desired state, the link-local mapping, the
agent's convergence with fake drivers (restart, removal) and the service's lookup key."""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path

import pytest

from stratus.agent.network.drivers.fake import (
    FakeDhcp,
    FakeFirewall,
    FakeHost,
    FakeL2,
    FakeMetadata,
    FakeRouters,
)
from stratus.agent.network.ipv6 import link_local
from stratus.agent.network.metadata_v6 import (
    HostsFile,
    client_address,
    fixed_ip_for,
    link_local_metadata,
    mac_of_link_local,
    write_hosts,
)
from stratus.agent.network.naming import Naming
from stratus.agent.network.reconcile import NetworkAgent, NetworkDrivers
from stratus.agent.network.sources import StaticSource
from stratus.common.errors import NotFound
from stratus.contracts.network import HostState
from stratus.metadata.app import MetadataService, Settings, expected_signature

pytestmark = pytest.mark.unit

NET6 = "66666666-aaaa-4aaa-8aaa-000000000006"
NET4 = "44444444-bbbb-4bbb-8bbb-000000000004"
NAMES = Naming()
MAC_G1 = "fa:16:3e:00:06:01"
MAC_G2 = "fa:16:3e:00:04:01"
V6 = ipaddress.IPv6Address


def state_doc(hosts4: list[str] | None = None, stateful: bool = False) -> dict:
    """A SLAAC network (plus a stateful subnet when asked) and an IPv4-only one, each
    with a DHCP server; a router on the IPv4 one."""
    subnets6 = [{"id": "s6", "cidr": "2001:db8:6::/64", "gateway_ip": "2001:db8:6::1",
                 "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}]
    hosts6: list[dict] = []
    if stateful:
        subnets6.append({"id": "s6b", "cidr": "2001:db8:7::/64",
                         "ipv6_address_mode": "dhcpv6-stateful"})
        hosts6.append({"mac_address": MAC_G1, "ip_address": "2001:db8:7::11"})
    return {
        "host": "net1",
        "networks": [
            {"id": NET6, "segmentation_id": 60, "subnets": subnets6},
            {"id": NET4, "segmentation_id": 40, "subnets": [
                {"id": "s4", "cidr": "10.4.0.0/24", "gateway_ip": "10.4.0.1"}]}],
        "dhcp_servers": [
            {"network_id": NET6, "port_id": "dhcp-6-0000", "mac_address": "fa:16:3e:00:06:02",
             "fixed_ips": [{"subnet_id": "s6", "ip_address": "2001:db8:6::2"}],
             "hosts": hosts6},
            {"network_id": NET4, "port_id": "dhcp-4-0000", "mac_address": "fa:16:3e:00:04:02",
             "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.4.0.2"}],
             "hosts": [{"mac_address": MAC_G2, "ip_address": ip}
                       for ip in (hosts4 if hosts4 is not None else ["10.4.0.11"])]}],
        "routers": [{"id": "router-4", "interfaces": [
            {"port_id": "r-4-0000", "network_id": NET4, "subnet_id": "s4",
             "mac_address": "fa:16:3e:00:04:03", "ip_address": "10.4.0.1", "prefixlen": 24}]}],
        "metadata": {"upstream_url": "http://127.0.0.1:8775", "shared_secret": "s3cret"},
    }


def make_agent(host: FakeHost, doc: dict) -> tuple[NetworkAgent, StaticSource]:
    source = StaticSource(HostState.from_dict(doc))
    drivers = NetworkDrivers(FakeL2(host), FakeDhcp(host), FakeRouters(host),
                             FakeFirewall(host), FakeMetadata(host))
    return NetworkAgent(drivers, source), source


# --- the link-local mapping -------------------------------------------------------------
def test_the_mac_is_read_back_from_an_eui64_link_local_address() -> None:
    assert mac_of_link_local(V6(link_local(MAC_G1))) == MAC_G1
    assert mac_of_link_local(V6("fe80::1")) is None  # no ff:fe: not formed from a MAC
    assert mac_of_link_local(V6("fe80::8c3a:91ff:aa01:2b3c")) is None  # stable-privacy-like
    assert mac_of_link_local(V6("2001:db8::f816:3eff:fe00:601")) is None  # not link-local


def test_a_link_local_client_maps_to_its_host_entry_ipv6_first() -> None:
    addr = V6(link_local(MAC_G1))
    hosts = {MAC_G1: ["10.4.0.11", "2001:db8:7::11"]}
    assert fixed_ip_for(addr, hosts, ("2001:db8:6::/64",)) == "2001:db8:7::11"
    assert fixed_ip_for(addr, {MAC_G1: ["10.4.0.11"]}, ()) == "10.4.0.11"


def test_a_slaac_client_maps_to_its_eui64_address_on_the_first_prefix() -> None:
    addr = V6(link_local(MAC_G1))
    assert fixed_ip_for(addr, {}, ("2001:db8:6::/64", "2001:db8:9::/64")) == \
        "2001:db8:6:0:f816:3eff:fe00:601"
    assert fixed_ip_for(addr, {"fa:16:3e:99:99:99": ["10.0.0.9"]}, ()) is None  # unknown MAC
    assert fixed_ip_for(V6("fe80::1"), {}, ("2001:db8:6::/64",)) is None


def test_client_addresses_lose_their_zone_and_ipv4_mapping() -> None:
    assert client_address("fe80::f816:3eff:fe00:601%ns-dhcp") == V6("fe80::f816:3eff:fe00:601")
    assert str(client_address("::ffff:10.4.0.11")) == "10.4.0.11"
    assert client_address("not-an-address") is None


def test_the_hosts_file_is_read_again_only_when_it_changed(tmp_path: Path) -> None:
    path = str(tmp_path / "ns.hosts")
    view = HostsFile(path)
    assert view.current() == {}  # no file yet
    assert write_hosts(path, {MAC_G2: ["10.4.0.11"]})
    assert not write_hosts(path, {MAC_G2: ["10.4.0.11"]})  # same content: untouched
    assert view.current() == {MAC_G2: ["10.4.0.11"]}
    assert write_hosts(path, {MAC_G2: ["10.4.0.11"], MAC_G1: ["10.4.0.12"]})
    assert view.current()[MAC_G1] == ["10.4.0.12"]
    Path(path).write_text("{broken")  # a torn write keeps the last good view
    assert view.current()[MAC_G1] == ["10.4.0.12"]


# --- the desired state ------------------------------------------------------------------
def test_desired_link_local_metadata_of_a_dhcp_server() -> None:
    state = HostState.from_dict(state_doc(stateful=True))
    nets = {n.id: n for n in state.networks}
    dhcp6, dhcp4 = state.dhcp_servers
    ll6 = link_local_metadata(dhcp6, nets[NET6], "ns-dhcp-6-000")
    assert ll6.interface == "ns-dhcp-6-000"
    assert ll6.slaac_prefixes == ("2001:db8:6::/64",)  # not the stateful subnet
    assert ll6.hosts == {MAC_G1: ["2001:db8:7::11"]}
    ll4 = link_local_metadata(dhcp4, nets[NET4], "ns-dhcp-4-000")
    assert ll4.slaac_prefixes == () and ll4.hosts == {MAC_G2: ["10.4.0.11"]}


# --- convergence with fake drivers --------------------------------------------------------
def test_every_dhcp_proxy_serves_link_local_metadata_and_no_router_proxy_does() -> None:
    host = FakeHost()
    agent, _ = make_agent(host, state_doc())
    assert agent.reconcile_once().ok
    ns6, ns4 = NAMES.dhcp_netns(NET6), NAMES.dhcp_netns(NET4)
    assert set(host.proxy_link_local) == {ns6, ns4}  # the IPv4-only network too
    assert host.proxy_link_local[ns6].interface == NAMES.dhcp_dev("dhcp-6-0000")
    assert host.proxy_link_local[ns6].slaac_prefixes == ("2001:db8:6::/64",)
    assert host.proxy_link_local[ns4].hosts == {MAC_G2: ["10.4.0.11"]}
    assert NAMES.router_netns("router-4") in host.proxies  # IPv4 only (169.254.169.254)
    assert NAMES.router_netns("router-4") not in host.proxy_link_local


def test_a_new_port_reaches_the_proxy_without_restarting_it() -> None:
    host = FakeHost()
    agent, source = make_agent(host, state_doc())
    agent.reconcile_once()
    created = copy.deepcopy(host.created)
    source.state = HostState.from_dict(state_doc(hosts4=["10.4.0.11", "10.4.0.12"]))
    assert agent.reconcile_once(woken=True).ok
    assert host.proxy_link_local[NAMES.dhcp_netns(NET4)].hosts[MAC_G2] == \
        ["10.4.0.11", "10.4.0.12"]
    assert host.created == created


def test_a_new_slaac_prefix_restarts_the_proxy() -> None:
    host = FakeHost()
    agent, source = make_agent(host, state_doc())
    agent.reconcile_once()
    ns6 = NAMES.dhcp_netns(NET6)
    before = host.created[f"proxy:{ns6}"]
    doc = state_doc()
    doc["networks"][0]["subnets"].append({"id": "s6c", "cidr": "2001:db8:8::/64",
                                          "ipv6_address_mode": "dhcpv6-stateless"})
    source.state = HostState.from_dict(doc)
    assert agent.reconcile_once().ok
    assert host.created[f"proxy:{ns6}"] == before + 1
    assert host.proxy_link_local[ns6].slaac_prefixes == ("2001:db8:6::/64", "2001:db8:8::/64")


def test_an_agent_restart_recreates_nothing_and_a_removed_network_leaves_nothing() -> None:
    host = FakeHost()
    agent, _ = make_agent(host, state_doc())
    agent.reconcile_once()
    created = copy.deepcopy(host.created)
    again, source = make_agent(host, state_doc())  # a new process, the same host
    assert again.reconcile_once().ok
    assert host.created == created
    doc = state_doc()
    doc["networks"] = doc["networks"][1:]
    doc["dhcp_servers"] = doc["dhcp_servers"][1:]
    source.state = HostState.from_dict(doc)
    assert again.reconcile_once().ok
    assert set(host.proxy_link_local) == {NAMES.dhcp_netns(NET4)}
    assert NAMES.dhcp_netns(NET6) not in host.proxies


def test_a_dhcp_server_without_metadata_proxy_serves_no_link_local_metadata() -> None:
    host = FakeHost()
    doc = state_doc()
    doc["dhcp_servers"][1]["metadata_proxy"] = False
    agent, _ = make_agent(host, doc)
    assert agent.reconcile_once().ok
    assert set(host.proxy_link_local) == {NAMES.dhcp_netns(NET6)}


# --- the real driver's settings file --------------------------------------------------------
class _Runner:
    def __init__(self, links: list[dict]) -> None:
        self.out = json.dumps(links)
        self.calls: list[list[str]] = []

    def run(self, argv: list[str], **_kw: object) -> str:
        self.calls.append(argv)
        return self.out


def test_the_real_driver_writes_the_listener_and_the_hosts_file(tmp_path: Path) -> None:
    from stratus.agent.ip_lib import IpLib
    from stratus.agent.network.drivers.metadata import ProcessMetadataProxy
    from stratus.agent.network.metadata_v6 import LinkLocalMetadata

    ip = IpLib(_Runner([{"ifname": "ns-dhcp-6-000", "ifindex": 7}]))
    driver = ProcessMetadataProxy(ip, str(tmp_path))
    v6 = driver._listen_v6("st-qdhcp-x", LinkLocalMetadata(
        "ns-dhcp-6-000", ("2001:db8:6::/64",), {MAC_G1: ["10.0.0.5"]}))
    assert v6["listen_v6"] == {"address": "fe80::a9fe:a9fe", "interface": "ns-dhcp-6-000",
                               "ifindex": 7}
    assert json.loads(Path(str(v6["hosts_file"])).read_text()) == {MAC_G1: ["10.0.0.5"]}
    assert driver._listen_v6("st-qdhcp-x", None) == {}
    # a hosts file without settings (the agent stopped in between) is listed, then removed
    assert driver.list_proxies() == {"st-qdhcp-x"}
    driver.remove_proxy("st-qdhcp-x")
    assert driver.list_proxies() == set()
    assert not list((tmp_path / "metadata").iterdir())


# --- stratus-metadata: the lookup key ---------------------------------------------------------
class _Source:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def lookup(self, network_id: str, fixed_ip: str) -> None:
        self.asked.append((network_id, fixed_ip))
        return None

    def set_password(self, server_id: str, password: str) -> None:
        raise AssertionError("not used")


def _headers(ip: str) -> dict[str, str]:
    return {"x-forwarded-for": ip, "x-stratus-network-id": NET6,
            "x-stratus-signature": expected_signature("s3cret", NET6, ip)}


@pytest.mark.parametrize(("sent", "key"), [
    ("2001:DB8:6:0:0:0:0:11", "2001:db8:6::11"),  # the compute API's canonical text
    ("2001:db8:6::11", "2001:db8:6::11"),
    ("::ffff:10.4.0.11", "10.4.0.11"),
    ("10.4.0.11", "10.4.0.11"),
])
def test_the_service_looks_an_ipv6_client_up_by_its_canonical_fixed_ip(sent: str, key: str
                                                                        ) -> None:
    svc = MetadataService(_Source(), Settings(shared_secret="s3cret"))
    assert svc.identify(_headers(sent)) == (NET6, key)


def test_the_service_refuses_a_link_local_address_as_a_fixed_ip() -> None:
    svc = MetadataService(_Source(), Settings(shared_secret="s3cret"))
    with pytest.raises(NotFound, match="link-local"):
        svc.identify(_headers("fe80::f816:3eff:fe00:601"))
