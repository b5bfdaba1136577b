"""The IPv6 data plane with real parts (docs/ipv6.md): one fake host (a network namespace)
running the network agent, once with the ``linuxbridge`` backend and once with ``ovs`` (a
private userspace Open vSwitch in the host, the hybrid plug), real dnsmasq, radvd and
nftables, and fake guests (namespaces behind veths with the ports' MACs):

* guest 1 on network A gets a SLAAC address from the router's advertisements (subnet
  A1, ``slaac``) and a stateful DHCPv6 address from dnsmasq (subnet A2,
  ``dhcpv6-stateful``, ISC ``dhclient -6`` as the client);
* guest 2 on network B (``slaac``) is reached across the router namespace, and only while
  its security group has an ICMPv6 echo rule;
* guest 3 on network C (``slaac``, no router) gets its address from dnsmasq's own RAs;
* a guest sending from an address that is not its own is dropped;
* the router's gateway holds its IPv6 address on the external network and routes IPv6
  out (its IPv6 default route) and back without translation: the outside sees the
  guest's own address.

Every host object carries ``z6d-<random>`` (namespaces, state directory; the agent's
deploy prefix ``z6d`` and its nftables tables live inside the fake host) and is removed,
the agent's own objects by converging it to an empty state.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netlab import FakeVM, Lab, nsx, sh
from stratus.agent.network.agent import build_agent
from stratus.agent.network.ipv6 import link_local
from stratus.agent.network.naming import Naming
from stratus.agent.network.reconcile import NetworkAgent
from stratus.common.config import Config
from stratus.contracts.network import HostState

pytestmark = [pytest.mark.integration]

NEEDED = ("ip", "dnsmasq", "radvd", "dhclient", "nft", "ping", "bridge", "ethtool")
PREFIX = "z6d"
NAMES = Naming(deploy_prefix=PREFIX, nft_prefix="z6d_test_")
ICMP6_ECHO_REQUEST = 128
PEER_ECHO = """
import socket
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("2001:db8:ee::1", 9606)); s.listen(4)
while True:
    c, addr = s.accept(); c.sendall(addr[0].encode()); c.close()
"""
PEER_ASK = """
import socket
c = socket.create_connection(("2001:db8:ee::1", 9606), timeout=3)
print(c.recv(100).decode())
"""


def eui64(prefix: str, mac: str) -> str:
    """The SLAAC address of ``mac`` in a /64 ``prefix`` (``2001:db8:a::``)."""
    iid = int(ipaddress.IPv6Address(link_local(mac))) & (2**64 - 1)
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address(prefix)) | iid))


class World:
    """One host, three networks, one router, three guests, and the agent's state."""

    def __init__(self, lab: Lab, tmp: Path, tag: str, backend: str):
        self.lab, self.tmp = lab, tmp
        self.h1 = lab.host(f"{tag}-h1")
        ovs_rundir = lab.ovs(self.h1) if backend == "ovs" else ""
        # the outside: a namespace on the external network, with an address beyond it
        # (reached through the router's IPv6 default route) and a route back to network A
        self.inet = lab.netns(f"{tag}-inet")
        lab.link_hosts(self.h1, "ext0", None, self.inet, "eth0", None)
        nsx(self.inet, "ethtool", "-K", "eth0", "tx", "off")  # as a real NIC
        sh("ip", "-n", self.inet, "addr", "add", "2001:db8:ff::1/64", "dev", "eth0", "nodad")
        sh("ip", "-n", self.inet, "addr", "add", "2001:db8:ee::1/128", "dev", "lo")
        sh("ip", "-n", self.inet, "route", "add", "2001:db8:a1::/64", "via", "2001:db8:ff::10")
        # the underlay (no peer host: a veth pair inside the host; no dummy module here)
        sh("ip", "-n", self.h1, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
        sh("ip", "-n", self.h1, "addr", "add", "172.31.251.1/24", "dev", "ul0")
        sh("ip", "-n", self.h1, "link", "set", "ul0", "up")
        sh("ip", "-n", self.h1, "link", "set", "ul1", "up")
        ids = ("net_a", "net_b", "net_c", "a1", "a2", "b1", "c1", "router", "sg_g1", "sg_g2",
               "public", "pub4", "pub6")
        self.id = {name: str(uuid.uuid4()) for name in ids}
        self.ports = {name: str(uuid.uuid4()) for name in (
            "g1", "g2", "g3", "dhcp_a", "dhcp_b", "dhcp_c", "r_a1", "r_a2", "r_b1", "r_gw")}
        self.macs = {name: f"fa:16:3e:00:06:{i:02x}" for i, name in enumerate(self.ports, 1)}
        self.echo_open = False
        self.guests: dict[str, FakeVM] = {
            g: lab.vm(f"{tag}-{g}", self.h1, self.ports[g], self.macs[g],
                      tap=NAMES.tap(self.ports[g])) for g in ("g1", "g2", "g3")}
        self.addr = {
            "g1_slaac": eui64("2001:db8:a1::", self.macs["g1"]),
            "g1_dhcp": "2001:db8:a2::11",
            "g2": eui64("2001:db8:b1::", self.macs["g2"]),
            "g3": eui64("2001:db8:c1::", self.macs["g3"]),
        }
        conf = tmp / "h1.conf"
        conf.write_text(
            f"[DEFAULT]\ndeploy_prefix = {PREFIX}\n[agent]\n"
            f"host = h1\nl2_backend = {backend}\nunderlay_interface = ul0\n"
            f"tunnel_type = gre\ndatapath_type = netdev\novs_rundir = {ovs_rundir}\n"
            f"underlay_ip = 172.31.251.1\nstate_dir = {tmp / 'h1'}\n"
            f"network_state_url = {tmp / 'h1'}.json\n"
            "metadata_url = http://127.0.0.1:9\nmetadata_shared_secret = z6d\n"
            f"host_netns = {self.h1}\nnetns_prefix = {self.h1}-\nnft_prefix = z6d_test_\n"
            "physical_interface_mappings = public:ext0\n")
        self.agent: NetworkAgent = build_agent(Config.load(str(conf)))[0]

    # --- the desired state --------------------------------------------------------------
    def subnet(self, key: str, cidr: str, mode: str, routed: bool) -> dict[str, Any]:
        return {"id": self.id[key], "cidr": cidr, "gateway_ip": cidr.replace("::/64", "::1"),
                "ipv6_ra_mode": mode, "ipv6_address_mode": mode, "router_ra": routed}

    def fixed(self, key: str, ip: str) -> dict[str, str]:
        return {"subnet_id": self.id[key], "ip_address": ip}

    def state(self) -> dict[str, Any]:
        i = self.id
        networks = [
            {"id": i["net_a"], "segmentation_id": 601, "mtu": 1450, "subnets": [
                self.subnet("a1", "2001:db8:a1::/64", "slaac", True),
                self.subnet("a2", "2001:db8:a2::/64", "dhcpv6-stateful", True)]},
            {"id": i["net_b"], "segmentation_id": 602, "mtu": 1450, "subnets": [
                self.subnet("b1", "2001:db8:b1::/64", "slaac", True)]},
            {"id": i["net_c"], "segmentation_id": 603, "mtu": 1450, "subnets": [
                self.subnet("c1", "2001:db8:c1::/64", "slaac", False)]},
            {"id": i["public"], "segmentation_type": "flat", "physical_network": "public",
             "mtu": 1500, "external": True, "subnets": [
                 {"id": i["pub4"], "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1",
                  "enable_dhcp": False},
                 {"id": i["pub6"], "cidr": "2001:db8:ff::/64", "gateway_ip": "2001:db8:ff::1",
                  "enable_dhcp": False}]},
        ]
        m = self.macs

        def port(name: str, net: str, ips: list[dict[str, str]], group: str) -> dict:
            return {"id": self.ports[name], "network_id": i[net], "mac_address": m[name],
                    "fixed_ips": ips, "security_groups": [i[group]]}

        def dhcp(name: str, net: str, ips: list[dict[str, str]],
                 hosts: list[dict[str, str]]) -> dict:
            return {"network_id": i[net], "port_id": self.ports[name], "mac_address": m[name],
                    "fixed_ips": ips, "hosts": hosts, "metadata_proxy": False}

        def itf(name: str, net: str, sub: str, ip: str) -> dict:
            return {"port_id": self.ports[name], "network_id": i[net], "subnet_id": i[sub],
                    "mac_address": m[name], "ip_address": ip, "prefixlen": 64}

        a = self.addr
        echo = [{"direction": "ingress", "ethertype": "IPv6", "protocol": "icmp",
                 "port_range_min": ICMP6_ECHO_REQUEST, "remote_ip_prefix": "::/0"}]
        return {
            "host": "h1", "networks": networks,
            "ports": [
                port("g1", "net_a", [self.fixed("a1", a["g1_slaac"]),
                                     self.fixed("a2", a["g1_dhcp"])], "sg_g1"),
                port("g2", "net_b", [self.fixed("b1", a["g2"])], "sg_g2"),
                port("g3", "net_c", [self.fixed("c1", a["g3"])], "sg_g2")],
            "dhcp_servers": [
                dhcp("dhcp_a", "net_a", [self.fixed("a1", eui64("2001:db8:a1::", m["dhcp_a"])),
                                         self.fixed("a2", "2001:db8:a2::2")],
                     [{"mac_address": m["g1"], "ip_address": a["g1_dhcp"]}]),
                dhcp("dhcp_b", "net_b", [self.fixed("b1", eui64("2001:db8:b1::", m["dhcp_b"]))],
                     []),
                dhcp("dhcp_c", "net_c", [self.fixed("c1", eui64("2001:db8:c1::", m["dhcp_c"]))],
                     [])],
            "routers": [{"id": i["router"], "interfaces": [
                itf("r_a1", "net_a", "a1", "2001:db8:a1::1"),
                itf("r_a2", "net_a", "a2", "2001:db8:a2::1"),
                itf("r_b1", "net_b", "b1", "2001:db8:b1::1")],
                "gateway": {"port_id": self.ports["r_gw"], "network_id": i["public"],
                            "mac_address": m["r_gw"], "ip_address": "203.0.113.10",
                            "prefixlen": 24, "gateway_ip": "203.0.113.1",
                            "ipv6_address": "2001:db8:ff::10", "ipv6_prefixlen": 64,
                            "ipv6_gateway_ip": "2001:db8:ff::1"}}],
            "security_groups": [
                {"id": i["sg_g1"], "rules": [{"direction": "egress", "ethertype": "IPv6"}]},
                {"id": i["sg_g2"], "rules": [{"direction": "egress", "ethertype": "IPv6"}]
                 + (echo if self.echo_open else [])}],
        }

    def converge(self, state: dict[str, Any] | None = None) -> None:
        state = self.state() if state is None else state
        HostState.from_dict(state)  # the document is valid
        (self.tmp / "h1.json").write_text(json.dumps(state))
        report = self.agent.reconcile_once()
        assert report.ok, report

    # --- guests -------------------------------------------------------------------------
    def global6(self, guest: str) -> set[str]:
        out = sh("ip", "-n", self.guests[guest].name, "-j", "-6", "addr", "show", "dev",
                 "eth0", "scope", "global")
        return {a["local"] for e in json.loads(out or "[]") for a in e.get("addr_info", [])
                if "local" in a and "tentative" not in a}

    def wait_address(self, guest: str, address: str, seconds: float = 40,
                     solicit: bool = True) -> bool:
        """Until the guest has ``address`` (past its duplicate address detection); with
        ``solicit`` its link is bounced first, so that it sends a router solicitation."""
        ns = self.guests[guest].name
        if solicit:
            sh("ip", "-n", ns, "link", "set", "eth0", "down")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if address in self.global6(guest):
                return True
            time.sleep(0.5)
        return False

    def dhcpv6(self, guest: str) -> str:
        """``dhclient -6`` once in the guest (then stopped by pid); its output."""
        ns = self.guests[guest].name
        pidfile = self.tmp / f"dhclient-{guest}.pid"
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, "dhclient", "-6", "-1", "-v",
             "-lf", str(self.tmp / f"dhclient-{guest}.leases"), "-pf", str(pidfile), "eth0"],
            capture_output=True, text=True, timeout=90)
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid:
            self.lab.pids.append(pid)  # the lab stops it by pid (it runs in the background)
        return proc.stdout + proc.stderr

    def diagnose(self) -> str:
        out = sh("sh", "-c", f"tail -n 20 {self.tmp}/h1/dhcp/*/log {self.tmp}/h1/ra/*/log "
             f"{self.tmp}/h1/ra/*/radvd.conf", check=False)
        for g in self.guests.values():
            out += sh("ip", "-n", g.name, "-6", "addr", check=False)
            out += sh("ip", "-n", g.name, "-6", "route", check=False)
        return out


@pytest.fixture(scope="module", params=["linuxbridge", "ovs"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    missing = [t for t in NEEDED if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing host tools {missing}: run scripts/install-test-deps.sh")
    if request.param == "ovs" and not shutil.which("ovs-vswitchd"):
        pytest.skip("Open vSwitch is not installed: run scripts/install-test-deps.sh")
    tag = f"z6d-{uuid.uuid4().hex[:6]}"
    lab = Lab()
    w = None
    tmp = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))
    tmp.chmod(0o755)  # dnsmasq (user nobody) reads its files under it
    lab.dirs.append(tmp)
    try:
        w = World(lab, tmp, tag, request.param)
        w.converge()
        yield w
    finally:
        if w is not None:
            w.converge({"host": "h1"})  # an empty state removes all the agent made
        for ns in sh("ip", "netns", "list", check=False).split("\n"):
            if ns.startswith(tag):  # namespaces the agent left (a failed convergence)
                for pid in sh("ip", "netns", "pids", ns.split()[0], check=False).split():
                    lab.pids.append(int(pid))
                lab.namespaces.append(ns.split()[0])
        lab.cleanup()


def test_dhcp_and_router_namespaces_hold_their_ipv6_addresses(world: World) -> None:
    dhcp_ns = world.agent.d.dhcp.netns(world.id["net_a"])
    dev = NAMES.dhcp_dev(world.ports["dhcp_a"])
    addrs = sh("ip", "-n", dhcp_ns, "-6", "-o", "addr", "show", "dev", dev, "scope", "global")
    assert "2001:db8:a2::2/64" in addrs
    assert eui64("2001:db8:a1::", world.macs["dhcp_a"]) + "/64" in addrs
    router_ns = world.agent.d.routers.netns(world.id["router"])
    assert nsx(router_ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding").strip() == "1"
    assert "2001:db8:b1::1/64" in sh("ip", "-n", router_ns, "-6", "-o", "addr")
    conf = (world.tmp / "h1" / "ra" / router_ns / "radvd.conf").read_text()
    assert "prefix 2001:db8:a1::/64 { AdvOnLink on; AdvAutonomous on; };" in conf
    assert "prefix 2001:db8:a2::/64 { AdvOnLink on; AdvAutonomous off; };" in conf
    assert "AdvManagedFlag on;" in conf


def test_a_guest_gets_a_slaac_and_a_stateful_dhcpv6_address(world: World) -> None:
    assert world.wait_address("g1", world.addr["g1_slaac"]), world.diagnose()
    out = world.dhcpv6("g1")
    assert world.wait_address("g1", world.addr["g1_dhcp"], 10, solicit=False), (
        out + world.diagnose())
    # the default route is the router's, learnt from its advertisements
    assert "default via fe80::" in sh("ip", "-n", world.guests["g1"].name, "-6", "route")


def test_an_isolated_slaac_subnet_gets_dnsmasq_advertisements(world: World) -> None:
    assert world.wait_address("g3", world.addr["g3"]), world.diagnose()
    # dnsmasq is no default router (router lifetime 0)
    assert "default" not in sh("ip", "-n", world.guests["g3"].name, "-6", "route")


def test_icmpv6_echo_across_the_router_follows_the_security_group(world: World) -> None:
    lab, g1 = world.lab, world.guests["g1"].name
    assert world.wait_address("g1", world.addr["g1_slaac"]), world.diagnose()
    assert world.wait_address("g2", world.addr["g2"]), world.diagnose()
    assert lab.ping(g1, "2001:db8:a1::1")  # the router's own address on g1's subnet
    assert not lab.ping(g1, world.addr["g2"], count=2)  # g2's group: no ingress rule
    world.echo_open = True
    world.converge()
    try:
        assert lab.ping(g1, world.addr["g2"], count=3), world.diagnose()
    finally:
        world.echo_open = False
        world.converge()
    assert not lab.ping(g1, world.addr["g2"], count=2)


def test_a_spoofed_ipv6_source_is_dropped(world: World) -> None:
    lab, g1 = world.lab, world.guests["g1"].name
    world.echo_open = True
    world.converge()
    try:
        assert world.wait_address("g1", world.addr["g1_slaac"]), world.diagnose()
        assert world.wait_address("g2", world.addr["g2"]), world.diagnose()
        assert lab.ping(g1, world.addr["g2"], count=2)
        sh("ip", "-n", g1, "addr", "add", "2001:db8:a1::99/64", "dev", "eth0", "nodad")
        try:
            assert not lab.ping(g1, world.addr["g2"], count=2, source="2001:db8:a1::99")
        finally:
            sh("ip", "-n", g1, "addr", "del", "2001:db8:a1::99/64", "dev", "eth0")
    finally:
        world.echo_open = False
        world.converge()


def test_ipv6_leaves_through_the_gateway_untranslated(world: World) -> None:
    router_ns = world.agent.d.routers.netns(world.id["router"])
    gw = NAMES.gateway_dev(world.ports["r_gw"])
    assert "2001:db8:ff::10/64" in sh("ip", "-n", router_ns, "-6", "-o", "addr", "show",
                                      "dev", gw)
    assert f"default via 2001:db8:ff::1 dev {gw}" in sh("ip", "-n", router_ns, "-6", "route")
    assert world.wait_address("g1", world.addr["g1_slaac"]), world.diagnose()
    g1 = world.guests["g1"].name
    # beyond the external network: out by the router's IPv6 default route
    assert world.lab.ping(g1, "2001:db8:ee::1", source=world.addr["g1_slaac"]), world.diagnose()
    # the outside sees the guest's own address (no NAT for IPv6): a TCP server there
    # answers each connection with the peer's address
    server = subprocess.Popen(["ip", "netns", "exec", world.inet, "python3", "-c", PEER_ECHO],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    world.lab.pids.append(server.pid)  # stopped by pid at the end (and here)
    try:
        peer = ""
        for _ in range(20):  # until the server listens
            proc = subprocess.run(["ip", "netns", "exec", g1, "python3", "-c", PEER_ASK],
                                  capture_output=True, text=True, timeout=30)
            peer = proc.stdout.strip()
            if proc.returncode == 0:
                break
            time.sleep(0.2)
        assert peer == world.addr["g1_slaac"], (peer, proc.stderr)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_killed_radvd_is_started_again_and_a_changed_config_reloaded(world: World) -> None:
    radvd = world.agent.d.routers.radvd  # type: ignore[attr-defined]
    ns = world.agent.d.routers.netns(world.id["router"])
    pid = radvd.pid(ns)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):  # until it is gone (a zombie of no one: init reaps it)
        if radvd.pid(ns) is None:
            break
        time.sleep(0.1)
    world.converge()
    again = radvd.pid(ns)
    assert again is not None and again != pid
    # a router interface fewer: the same radvd, its configuration re-read
    state = world.state()
    state["routers"][0]["interfaces"] = state["routers"][0]["interfaces"][:2]
    world.converge(state)
    assert radvd.pid(ns) == again
    conf = (world.tmp / "h1" / "ra" / ns / "radvd.conf").read_text()
    assert "2001:db8:b1::" not in conf and "2001:db8:a1::/64" in conf
    world.converge()


SEND_NA = """
import socket, sys, time
target, mac = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
idx = socket.if_nametoindex("eth0")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
na = (bytes([136, 0, 0, 0, 0x20, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, target)
      + bytes([2, 1]) + bytes.fromhex(mac.replace(":", "")))
for _ in range(3):
    s.sendto(na, ("ff02::1", 0, 0, idx)); time.sleep(0.1)
"""


def test_a_guest_cannot_claim_another_address_in_a_neighbour_advertisement(
        world: World) -> None:
    """g1 advertises (unsolicited, override) the DHCP port's address with its own MAC:
    the router's neighbour entry is poisoned only when g1's port has no port security."""
    router_ns = world.agent.d.routers.netns(world.id["router"])
    victim, g1 = "2001:db8:a2::2", world.guests["g1"]

    def router_sees() -> str:
        assert world.lab.ping(router_ns, victim, count=1)  # a fresh entry, the true MAC
        nsx(g1.name, "python3", "-c", SEND_NA, victim, g1.mac)
        time.sleep(0.3)
        return sh("ip", "-n", router_ns, "-6", "neigh", "show", victim)

    sh("ip", "-n", router_ns, "-6", "neigh", "flush", "to", victim, check=False)
    assert world.macs["dhcp_a"] in router_sees()
    unsecured = world.state()
    unsecured["ports"][0]["port_security_enabled"] = False
    world.converge(unsecured)
    try:
        sh("ip", "-n", router_ns, "-6", "neigh", "flush", "to", victim, check=False)
        assert g1.mac in router_sees()  # the test can fail: without the check, poisoned
    finally:
        world.converge()
        sh("ip", "-n", router_ns, "-6", "neigh", "flush", "to", victim, check=False)
