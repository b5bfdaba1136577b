"""Port extra DHCP options (extra_dhcp_opt): the API, the host-state document, and the
dnsmasq files the agent renders from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from network_api import ADMIN, ALICE, NetApi, in_process
from stratus.agent.network.drivers.dnsmasq import DnsmasqDriver
from stratus.agent.network.naming import Naming
from stratus.contracts.network import DhcpServer, Network
from stratus.network.dhcpopts import merge

pytestmark = pytest.mark.unit

TFTP = {"opt_name": "tftp-server", "opt_value": "10.0.0.2", "ip_version": 4}
BOOT = {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as client:
        yield client


def test_merge_replaces_adds_and_removes_by_name_and_version() -> None:
    have = merge([], [TFTP, {"opt_name": "66", "opt_value": "x"}])
    assert have == [TFTP, {"opt_name": "66", "opt_value": "x", "ip_version": 4}]
    have = merge(have, [{"opt_name": "tftp-server", "opt_value": "10.0.0.3"},
                        {"opt_name": "66", "opt_value": None}, BOOT])
    assert have == [{**TFTP, "opt_value": "10.0.0.3"}, BOOT]


def test_ports_keep_show_and_update_their_options(api: NetApi) -> None:
    net = api.network(token=ALICE)
    api.subnet(net["id"], "10.0.0.0/24", ALICE)
    port = api.port(net["id"], ALICE, extra_dhcp_opts=[TFTP, BOOT])
    assert port["extra_dhcp_opts"] == [TFTP, BOOT]
    url = f"/v2.0/ports/{port['id']}"
    up = api.ok("PUT", url, ALICE, json={"port": {"extra_dhcp_opts": [
        {"opt_name": "bootfile-name", "opt_value": None},
        {"opt_name": "tftp-server", "opt_value": "10.0.0.9"}]}})["port"]
    assert up["extra_dhcp_opts"] == [{**TFTP, "opt_value": "10.0.0.9"}]
    assert api.ok("GET", url, ALICE)["port"]["extra_dhcp_opts"] == up["extra_dhcp_opts"]
    # A port without them, and an update that does not name them, keep what they have.
    assert api.port(net["id"], ALICE)["extra_dhcp_opts"] == []
    assert api.ok("PUT", url, ALICE, json={"port": {"name": "x"}})["port"][
        "extra_dhcp_opts"] == up["extra_dhcp_opts"]
    # The network node's host state carries them to dnsmasq (IPv4 ones only).
    api.ok("PUT", url, ALICE, json={"port": {"extra_dhcp_opts": [
        {"opt_name": "domain-search", "opt_value": "example.org", "ip_version": 6}]}})
    api.ok("PUT", "/v2.0/stratus-agent/hosts/net1", ADMIN,
           json={"host": {"underlay_ip": "10.0.0.5", "network_node": True}})
    state = api.ok("GET", "/v2.0/stratus-agent/hosts/net1", ADMIN)
    (server,) = state["dhcp_servers"]
    (host,) = [h for h in server["hosts"] if h["mac_address"] == port["mac_address"]]
    assert host["options"] == [{"name": "tftp-server", "value": "10.0.0.9"}]


@pytest.mark.parametrize("opts", [
    "tftp-server",
    [{"opt_value": "x"}],
    [{"opt_name": "no-such-option", "opt_value": "x"}],
    [{"opt_name": "0", "opt_value": "x"}],
    [{"opt_name": "255", "opt_value": "x"}],
    [{"opt_name": "007", "opt_value": "x"}],
    [{"opt_name": "tftp-server", "opt_value": "a\nb"}],
    [{"opt_name": "tftp-server", "opt_value": ""}],
    [{"opt_name": "tftp-server", "opt_value": 5}],
    [{"opt_name": "tftp-server", "opt_value": "x", "ip_version": 5}],
    [{"opt_name": "tftp-server", "opt_value": "x", "extra": 1}],
    [{"opt_name": str(i), "opt_value": "x"} for i in range(1, 40)],
])
def test_bad_options_are_400_and_make_nothing(api: NetApi, opts: Any) -> None:
    net = api.network(token=ALICE)
    resp = api.call("POST", "/v2.0/ports", ALICE,
                    json={"port": {"network_id": net["id"], "extra_dhcp_opts": opts}})
    assert resp.status_code == 400, resp.text
    assert "extra_dhcp_opts" in resp.json()["NeutronError"]["message"]
    assert api.ok("GET", f"/v2.0/ports?network_id={net['id']}", ALICE)["ports"] == []


def test_dnsmasq_tags_the_host_and_serves_its_options(tmp_path: Path) -> None:
    server = DhcpServer.from_dict({
        "network_id": "net-1", "port_id": "dhcpport-123456", "mac_address": "fa:16:3e:00:00:02",
        "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.2"}],
        "hosts": [{"mac_address": "fa:16:3e:00:00:0B", "ip_address": "10.0.0.11",
                   "hostname": "web1", "options": [{"name": "tftp-server", "value": "10.0.0.2"},
                                                   {"name": "66", "value": "boot.example"}]},
                  {"mac_address": "fa:16:3e:00:00:0a", "ip_address": "10.0.0.10"}]})
    network = Network.from_dict({"id": "net-1", "segmentation_id": 5, "mtu": 1450,
                                 "subnets": [{"id": "s1", "cidr": "10.0.0.0/24"}]})
    driver = DnsmasqDriver(None, Naming(), str(tmp_path))  # type: ignore[arg-type]
    assert driver.render_hosts(server) == (
        "fa:16:3e:00:00:0a,10.0.0.10\nfa:16:3e:00:00:0b,set:pfa163e00000b,10.0.0.11,web1\n")
    opts = driver.render_opts(server, network).splitlines()
    assert opts[-2:] == ["tag:pfa163e00000b,option:tftp-server,10.0.0.2",
                         "tag:pfa163e00000b,66,boot.example"]
