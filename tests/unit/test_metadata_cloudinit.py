"""network_data.json as cloud-init's OpenStack helper reads it.

cloud-init (cloudinit/sources/helpers/openstack.py, convert_net_json) turns
network_data.json into its network config v1: every link needs an ``id``, a
``type`` it knows as physical (bridge, ethernet, hw_veb, hyperv, ovs, phy, tap,
vhostuser, vif, ...) and ``ethernet_mac_address`` (the NIC is found by MAC);
every network a ``link`` naming a link id and a ``type`` it converts (``ipv4``
-> static with ``ip_address``; ``netmask`` and ``routes`` are copied as they
are, so routes need ``network``/``netmask``/``gateway``, v1's route keys); DNS
comes from each network's ``services`` of type ``dns`` and from the top-level
``services`` (``address``); a network's ``gateway`` is copied to the subnet (ifupdown
then sets the default route itself, while routes need net-tools' ``route``). These
checks say the same in our own words; when the ``cloudinit`` package is importable
the real converter runs too.
"""

from __future__ import annotations

import copy
import importlib.util
import ipaddress
import json
from typing import Any

import pytest
from test_metadata_content import SECOND_NIC, make_doc

from stratus.contracts import metadata_tree as content

pytestmark = pytest.mark.unit

PHYSICAL_LINK_TYPES = {"bridge", "ethernet", "hw_veb", "hyperv", "ovs", "phy", "tap",
                       "vhostuser", "vif"}
NETWORK_TYPES = {"ipv4", "ipv6", "ipv4_dhcp", "ipv6_dhcp", "ipv6_slaac", "static", "static6"}


def check_for_cloud_init(nd: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What cloud-init would configure per MAC: {mac: [subnet, ...]}."""
    assert set(nd) >= {"links", "networks", "services"}
    by_id: dict[str, str] = {}
    for link in nd["links"]:
        assert link["type"] in PHYSICAL_LINK_TYPES
        mac = link["ethernet_mac_address"]
        assert mac == mac.lower() and len(mac.split(":")) == 6
        assert isinstance(link.get("mtu", 0), int)
        assert link["id"] not in by_id  # link ids are unique
        by_id[link["id"]] = mac
    result: dict[str, list[dict[str, Any]]] = {mac: [] for mac in by_id.values()}
    seen_gateway: set[tuple[str, str]] = set()
    for net in nd["networks"]:
        assert net["link"] in by_id
        assert net["type"] in NETWORK_TYPES
        if net["type"] in ("ipv4", "ipv6"):
            ip = ipaddress.ip_address(net["ip_address"])
            iface = ipaddress.ip_interface(f"{ip}/{net['netmask']}")
            assert ip in iface.network
            if "gateway" in net:  # cloud-init copies it: one default gateway per version
                assert ipaddress.ip_address(net["gateway"]) in iface.network
                assert (net["type"], "gateway") not in seen_gateway
                seen_gateway.add((net["type"], "gateway"))
            for route in net["routes"]:
                assert set(route) == {"network", "netmask", "gateway"}
                ipaddress.ip_network(f"{route['network']}/{route['netmask']}")
                assert ipaddress.ip_address(route["gateway"]) in iface.network
        for service in net.get("services", []):
            assert service["type"] == "dns"
            ipaddress.ip_address(service["address"])
        result[by_id[net["link"]]].append(net)
    for service in nd["services"]:
        assert service["type"] == "dns"
        ipaddress.ip_address(service["address"])
    return result


def test_one_nic_gets_a_static_address_and_default_route() -> None:
    nd = json.loads(content.render(make_doc())["openstack/latest/network_data.json"])
    configured = check_for_cloud_init(nd)
    [subnet] = configured["fa:16:3e:00:00:01"]
    assert subnet["type"] == "ipv4"
    assert subnet["gateway"] == "192.168.10.1"  # ifupdown sets it without net-tools
    assert any(r["network"] == "0.0.0.0" and r["netmask"] == "0.0.0.0"
               for r in subnet["routes"])


def test_two_nics_each_configured() -> None:
    doc = make_doc()
    doc["networks"].append(copy.deepcopy(SECOND_NIC))
    nd = json.loads(content.render(doc)["openstack/latest/network_data.json"])
    configured = check_for_cloud_init(nd)
    assert len(configured["fa:16:3e:00:00:01"]) == 1
    assert len(configured["fa:16:3e:00:00:02"]) == 1
    # only one default route in the whole guest
    defaults = [r for subnets in configured.values() for s in subnets for r in s["routes"]
                if r["netmask"] == "0.0.0.0"]
    assert len(defaults) == 1


@pytest.mark.skipif(importlib.util.find_spec("cloudinit") is None,
                    reason="the cloudinit package is not installed here")
def test_real_cloud_init_converter() -> None:  # pragma: no cover - only where cloud-init is
    from cloudinit.sources.helpers import openstack

    doc = make_doc()
    doc["networks"].append(copy.deepcopy(SECOND_NIC))
    nd = json.loads(content.render(doc)["openstack/latest/network_data.json"])
    cfg = openstack.convert_net_json(nd, known_macs={"fa:16:3e:00:00:01": "eth0",
                                                     "fa:16:3e:00:00:02": "eth1"})
    phys = {c["name"]: c for c in cfg["config"] if c["type"] == "physical"}
    assert phys["eth0"]["subnets"][0]["type"] == "static"
    assert phys["eth0"]["subnets"][0]["address"] == "192.168.10.11"
    assert phys["eth0"]["subnets"][0]["gateway"] == "192.168.10.1"
    assert phys["eth1"]["mtu"] == 1500
