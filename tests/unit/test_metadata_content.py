"""stratus.contracts.metadata_tree: the files rendered from an instance document."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from stratus.contracts import metadata_tree as content

pytestmark = pytest.mark.unit

UUID = "3f0c1a2b-aaaa-4bbb-8ccc-444455556666"


def make_doc(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "uuid": UUID, "name": "Web 1", "hostname": "web1", "project_id": "p1",
        "availability_zone": "az1", "launch_index": 2, "created_at": "2026-01-01T00:00:00Z",
        "meta": {"role": "web"},
        "keys": [{"name": "ops", "type": "ssh", "data": "ssh-ed25519 AAAAops ops"},
                 {"name": "dev", "type": "ssh", "data": "ssh-rsa AAAAdev dev"}],
        "user_data": base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
        "password": None,
        "networks": [{
            "port_id": "0123456789abcdef0000", "network_id": "net-a",
            "mac_address": "FA:16:3E:00:00:01", "mtu": 1450,
            "ip_address": "192.168.10.11", "floating_ip": "203.0.113.20",
            "subnet": {"id": "sub-a", "cidr": "192.168.10.0/24", "gateway_ip": "192.168.10.1",
                       "dns_nameservers": ["192.168.10.1", "9.9.9.9"],
                       "host_routes": [{"destination": "10.0.0.0/8", "nexthop": "192.168.10.254"}],
                       "enable_dhcp": True}}],
        "vendor_data": {"x": 1},
    }
    doc.update(extra)
    return doc


SECOND_NIC: dict[str, Any] = {
    "port_id": "fedcba98765432100000", "network_id": "net-b", "mac_address": "fa:16:3e:00:00:02",
    "mtu": 1500, "ip_address": "10.9.0.5", "floating_ip": None,
    "subnet": {"id": "sub-b", "cidr": "10.9.0.0/16", "gateway_ip": None,
               "dns_nameservers": ["9.9.9.9"], "host_routes": [], "enable_dhcp": False}}


def test_render_lists_every_path_of_the_contract() -> None:
    files = content.render(make_doc())
    for version in (*content.OPENSTACK_VERSIONS, "latest"):
        assert f"openstack/{version}/meta_data.json" in files
        assert f"openstack/{version}/user_data" in files
    latest = {p for p in files if p.startswith("openstack/latest/")}
    assert latest == {f"openstack/latest/{n}" for n in (
        "meta_data.json", "network_data.json", "user_data", "vendor_data.json",
        "vendor_data2.json")}
    assert "openstack/2012-08-10/network_data.json" not in files  # appeared in 2015-10-15
    assert "openstack/2015-10-15/network_data.json" in files
    assert "openstack/2016-06-30/vendor_data2.json" not in files
    assert "openstack/2018-08-27/vendor_data2.json" in files
    assert files["ec2/latest/user-data"] == b"#!/bin/sh\necho hi\n"
    assert json.loads(files["ec2/latest/meta-data.json"])["instance-id"] == "i-3f0c1a2b"
    assert all(isinstance(v, bytes) for v in files.values())


def test_meta_data_json_shape() -> None:
    md = json.loads(content.render(make_doc())["openstack/latest/meta_data.json"])
    assert md["uuid"] == UUID
    assert md["name"] == "Web 1" and md["hostname"] == "web1"
    assert md["public_keys"] == {"ops": "ssh-ed25519 AAAAops ops", "dev": "ssh-rsa AAAAdev dev"}
    assert md["keys"][0] == {"name": "ops", "type": "ssh", "data": "ssh-ed25519 AAAAops ops"}
    assert md["availability_zone"] == "az1"
    assert md["project_id"] == "p1"
    assert md["launch_index"] == 2
    assert md["meta"] == {"role": "web"}
    assert md["devices"] == []
    assert len(base64.b64decode(md["random_seed"])) == 512


def test_random_seed_is_per_server_and_deterministic() -> None:
    a = content.render(make_doc())
    b = content.render(make_doc())
    c = content.render(make_doc(uuid="99999999-aaaa-4bbb-8ccc-444455556666"))
    assert a == b  # a config drive is reproducible
    seed = json.loads(a["openstack/latest/meta_data.json"])["random_seed"]
    assert seed != json.loads(c["openstack/latest/meta_data.json"])["random_seed"]


def test_user_data_absent_means_no_file() -> None:
    files = content.render(make_doc(user_data=None))
    assert not any(p.endswith("user_data") or p.endswith("user-data") for p in files)
    assert content.render(make_doc(user_data=""))  == files


def test_vendor_data() -> None:
    files = content.render(make_doc())
    assert json.loads(files["openstack/latest/vendor_data.json"]) == {"x": 1}
    assert json.loads(files["openstack/latest/vendor_data2.json"]) == {}
    files = content.render(make_doc(vendor_data=None))
    assert json.loads(files["openstack/latest/vendor_data.json"]) == {}


def test_network_data_one_nic() -> None:
    nd = json.loads(content.render(make_doc())["openstack/latest/network_data.json"])
    assert nd["links"] == [{"id": "tap0123456789a", "vif_id": "0123456789abcdef0000",
                            "type": "ovs", "mtu": 1450,
                            "ethernet_mac_address": "fa:16:3e:00:00:01"}]
    [net] = nd["networks"]
    assert net["type"] == "ipv4" and net["link"] == "tap0123456789a"
    assert net["ip_address"] == "192.168.10.11" and net["netmask"] == "255.255.255.0"
    assert net["network_id"] == "net-a"
    assert net["gateway"] == "192.168.10.1"
    assert net["routes"] == [
        {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.10.1"},
        {"network": "10.0.0.0", "netmask": "255.0.0.0", "gateway": "192.168.10.254"}]
    assert nd["services"] == [{"type": "dns", "address": "192.168.10.1"},
                              {"type": "dns", "address": "9.9.9.9"}]


def test_network_data_two_nics() -> None:
    doc = make_doc()
    doc["networks"].append(copy.deepcopy(SECOND_NIC))
    nd = json.loads(content.render(doc)["openstack/latest/network_data.json"])
    assert [link["id"] for link in nd["links"]] == ["tap0123456789a", "tapfedcba98765"]
    assert [n["id"] for n in nd["networks"]] == ["network0", "network1"]
    second = nd["networks"][1]
    assert second["link"] == "tapfedcba98765" and second["netmask"] == "255.255.0.0"
    assert second["routes"] == []  # no gateway: no default route on the second NIC
    assert "gateway" not in second
    # DNS servers de-duplicated across subnets
    assert [s["address"] for s in nd["services"]] == ["192.168.10.1", "9.9.9.9"]


def test_network_data_gateway_only_on_the_first_nic() -> None:
    doc = make_doc()
    nic = copy.deepcopy(SECOND_NIC)
    nic["subnet"]["gateway_ip"] = "10.9.0.1"
    doc["networks"].append(nic)
    nets = content.network_data(doc)["networks"]
    assert nets[0]["gateway"] == "192.168.10.1"
    assert "gateway" not in nets[1]
    # the default route stays in both networks' routes, as Nova renders it
    assert nets[1]["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0",
                                  "gateway": "10.9.0.1"}]


def test_network_data_ipv6_and_overrides() -> None:
    nic = {"port_id": "abcdefabcdefabcdef", "network_id": "n6", "mac_address": "fa:16:3e:00:00:06",
           "mtu": 1500, "ip_address": "2001:db8::5", "device_name": "tapcustom",
           "vif_type": "bridge",
           "subnet": {"cidr": "2001:db8::/64", "gateway_ip": "2001:db8::1",
                      "dns_nameservers": [], "host_routes": []}}
    nd = content.network_data(make_doc(networks=[nic]))
    assert nd["links"][0]["id"] == "tapcustom" and nd["links"][0]["type"] == "bridge"
    net = nd["networks"][0]
    assert net["type"] == "ipv6" and net["netmask"] == "ffff:ffff:ffff:ffff::"
    assert net["routes"] == [{"network": "::", "netmask": "::", "gateway": "2001:db8::1"}]


def test_ec2_metadata_json() -> None:
    meta = json.loads(content.render(make_doc(flavor_name="m1.tiny", image_id="abcdef12-0000",
                                              security_groups=["default", "web"]))
                      ["ec2/latest/meta-data.json"])
    assert meta["instance-id"] == "i-3f0c1a2b"
    assert meta["instance-type"] == "m1.tiny"
    assert meta["ami-id"] == "ami-abcdef12"
    assert meta["hostname"] == meta["local-hostname"] == "web1"
    assert meta["local-ipv4"] == "192.168.10.11"
    assert meta["public-ipv4"] == "203.0.113.20"
    assert meta["placement"] == {"availability-zone": "az1"}
    assert meta["public-keys"] == {"0": {"openssh-key": "ssh-ed25519 AAAAops ops"},
                                   "1": {"openssh-key": "ssh-rsa AAAAdev dev"}}
    assert meta["security-groups"] == ["default", "web"]
    assert meta["reservation-id"].startswith("r-") and len(meta["reservation-id"]) == 10
    assert meta["ami-launch-index"] == 2


@pytest.mark.parametrize(("path", "expected"), [
    ("public-keys/", b"0=ops\n1=dev"),
    ("public-keys", b"0=ops\n1=dev"),
    ("public-keys/0/", b"openssh-key"),
    ("public-keys/0=ops/", b"openssh-key"),
    ("public-keys/1/openssh-key", b"ssh-rsa AAAAdev dev"),
    ("placement/", b"availability-zone"),
    ("placement/availability-zone", b"az1"),
    ("block-device-mapping/", b"ami\nroot"),
    ("block-device-mapping/root", b"/dev/vda"),
    ("instance-id", b"i-3f0c1a2b"),
    ("local-ipv4", b"192.168.10.11"),
    ("security-groups", b"default\nweb"),
    ("hostname", b"web1"),
])
def test_ec2_text_tree(path: str, expected: bytes) -> None:
    tree = content.ec2_tree(make_doc(security_groups=["default", "web"]))
    assert content.ec2_text(tree, path) == expected


def test_ec2_text_top_listing_is_plain_text() -> None:
    listing = content.ec2_text(content.ec2_tree(make_doc()), "")
    assert listing is not None
    lines = listing.decode().split("\n")
    assert "instance-id" in lines and "public-keys/" in lines and "placement/" in lines
    assert "block-device-mapping/" in lines
    assert not any(line.startswith("_") or "<" in line for line in lines)


@pytest.mark.parametrize("path", ["nothing", "placement/x", "public-keys/7/", "_key_names",
                                  "instance-id/more"])
def test_ec2_text_unknown_paths(path: str) -> None:
    assert content.ec2_text(content.ec2_tree(make_doc()), path) is None


def test_user_data_not_base64_is_served_as_is() -> None:
    files = content.render(make_doc(user_data="#cloud-config\n{}"))
    assert files["openstack/latest/user_data"] == b"#cloud-config\n{}"


def test_network_data_port_with_two_addresses_is_one_link() -> None:
    nic = make_doc()["networks"][0]
    second_ip = copy.deepcopy(nic)
    second_ip["ip_address"] = "192.168.20.5"
    second_ip["subnet"] = {"id": "sub-c", "cidr": "192.168.20.0/24", "gateway_ip": None,
                           "dns_nameservers": [], "host_routes": []}
    nd = content.network_data(make_doc(networks=[nic, second_ip]))
    assert [link["id"] for link in nd["links"]] == ["tap0123456789a"]
    assert [(n["link"], n["ip_address"]) for n in nd["networks"]] == [
        ("tap0123456789a", "192.168.10.11"), ("tap0123456789a", "192.168.20.5")]


def test_network_data_without_mtu_omits_it() -> None:
    nic = make_doc()["networks"][0]
    nic["mtu"] = None
    nd = content.network_data(make_doc(networks=[nic]))
    assert "mtu" not in nd["links"][0]
