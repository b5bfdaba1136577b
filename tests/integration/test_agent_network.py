"""The network agent against the real thing: two fake hosts (network namespaces),
each test run twice: with the ``linuxbridge`` backend (kernel VXLAN between the
hosts) and with the ``ovs`` backend (a private userspace Open vSwitch per host,
datapath netdev, GRE tunnels over the br-phy underlay); fake VMs, dnsmasq,
a router namespace with SNAT and a floating IP, nftables security groups and
anti-spoofing, and the metadata proxy against a small upstream that checks the
signature. Everything is named ``t16n-...`` (the agents' deploy prefix is ``t16n``, their
nftables tables ``stratus_test_t16n_...``) and removed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from netlab import FakeVM, Lab, nsx, sh
from stratus.agent.ip_lib import pid_running
from stratus.agent.network.agent import build_agent
from stratus.agent.network.metadata_proxy import bind_in_netns
from stratus.agent.network.naming import Naming
from stratus.agent.network.reconcile import NetworkAgent
from stratus.common.config import Config
from stratus.contracts.network import HostState, tap_name

pytestmark = [pytest.mark.integration]

NEEDED = ("ip", "dnsmasq", "nft", "busybox", "ping", "setsid", "bridge", "ethtool")
SECRET = "test-shared-secret"
PREFIX = "t16n"  # the agents' deploy prefix: every host object they make carries it
NAMES = Naming(deploy_prefix=PREFIX, nft_prefix="stratus_test_")


def _require_tools() -> None:
    missing = [t for t in NEEDED if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing host tools {missing}: run scripts/install-test-deps.sh")


def agent_state_root(lab: Lab) -> Path:
    """A directory for the agents' state that dnsmasq (user nobody) can reach: not under
    pytest's base temp, which every pytest session on the machine resets to mode 0700."""
    tmp = Path(tempfile.mkdtemp(prefix="snet-agent-", dir="/tmp"))
    tmp.chmod(0o755)
    lab.dirs.append(tmp)
    return tmp


def uid() -> str:
    return str(uuid.uuid4())


class Upstream:
    """A stand-in for stratus-metadata, listening on 127.0.0.1 inside host 1."""

    def __init__(self, host_ns: str):
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                net = self.headers.get("X-Stratus-Network-ID", "")
                ip = self.headers.get("X-Forwarded-For", "")
                sig = self.headers.get("X-Stratus-Signature", "")
                good = hmac.new(SECRET.encode(), f"{net}\n{ip}".encode(),
                                hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(sig, good)
                outer.requests.append({"path": self.path, "network": net, "ip": ip, "ok": ok})
                body = json.dumps({"uuid": "instance-for-" + ip}).encode() if ok else b"bad"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = bind_in_netns(f"/run/netns/{host_ns}",
                                    lambda: ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class World:
    """Two hosts, three networks, a router, four fake VMs, and the agents' states."""

    def __init__(self, lab: Lab, tmp: Path, backend: str):
        self.lab, self.tmp, self.backend = lab, tmp, backend
        self.h1 = lab.host("t16n-h1")
        self.h2 = lab.host("t16n-h2")
        self.ovs = {}
        if backend == "ovs":
            self.ovs = {self.h1: lab.ovs(self.h1), self.h2: lab.ovs(self.h2)}
        self.inet = lab.netns("t16n-inet")
        sh("ip", "-n", self.h1, "link", "set", "lo", "up")
        lab.link_hosts(self.h1, "ul0", "172.31.250.1/24", self.h2, "ul0", "172.31.250.2/24")
        if backend == "ovs":  # a route through the underlay: br-phy must take it along
            sh("ip", "-n", self.h1, "route", "add", "198.51.100.0/24", "via", "172.31.250.2",
               "dev", "ul0")
        lab.link_hosts(self.h1, "ext0", None, self.inet, "eth0", "203.0.113.1/24")
        sh("ip", "netns", "exec", self.inet, "ethtool", "-K", "eth0", "tx", "off")  # a real NIC
        self.upstream = Upstream(self.h1)

        self.net_a, self.net_b, self.public = uid(), uid(), uid()
        self.sub_a, self.sub_b, self.sub_pub = uid(), uid(), uid()
        self.router = uid()
        self.sg_default, self.sg_ping, self.sg_web = uid(), uid(), uid()
        self.ports = {name: uid() for name in ("vm1", "vm2", "vm3", "dhcp_a", "dhcp_b",
                                                "r_a", "r_gw", "vm4")}
        self.macs = {name: f"fa:16:3e:00:00:{i:02x}" for i, name in enumerate(self.ports, 1)}
        self.ips = {"vm1": "10.10.0.11", "vm2": "10.10.0.12", "vm3": "10.10.0.13",
                    "vm4": "10.10.0.14"}
        self.with_vm4 = False  # a port whose device is a tap (what the compute agent makes)
        self.web_open = False
        self.with_b = True
        self.extra_leases: list[dict[str, str]] = []
        self.extra_ports: list[dict[str, Any]] = []  # more instance ports on h1
        self.vms: dict[str, FakeVM] = {}
        for vm, host in (("vm1", self.h1), ("vm2", self.h2), ("vm3", self.h2)):
            self.vms[vm] = lab.vm(f"t16n-{vm}", host, self.ports[vm], self.macs[vm],
                                  tap=NAMES.tap(self.ports[vm]))
        self.agents = {
            "h1": self.make_agent("h1", self.h1, "172.31.250.1"),
            "h2": self.make_agent("h2", self.h2, "172.31.250.2"),
        }

    # --- configuration and desired state -------------------------------------------------
    def make_agent(self, name: str, ns: str, ip: str) -> NetworkAgent:
        conf = self.tmp / f"{name}.conf"
        conf.write_text(
            f"[DEFAULT]\ndeploy_prefix = {PREFIX}\n[agent]\n"
            f"host = {name}\nl2_backend = {self.backend}\nunderlay_interface = ul0\n"
            "tunnel_type = gre\ndatapath_type = netdev\n"
            f"ovs_rundir = {self.ovs.get(ns, '')}\n"
            f"underlay_ip = {ip}\nphysical_interface_mappings = public:ext0\n"
            f"state_dir = {self.tmp / name}\nnetwork_state_url = {self.tmp / name}.json\n"
            f"metadata_url = http://127.0.0.1:{self.upstream.port}\n"
            f"metadata_shared_secret = {SECRET}\nhost_netns = {ns}\n"
            f"netns_prefix = {ns}-\nnft_prefix = stratus_test_\n"
        )
        agent, _, _ = build_agent(Config.load(str(conf)))
        return agent

    def network(self, net_id: str, vni: int | None, sub: str, cidr: str, gw: str) -> dict:
        net: dict[str, Any] = {"id": net_id, "mtu": 1450, "segmentation_type": "vxlan",
                               "segmentation_id": vni,
                               "subnets": [{"id": sub, "cidr": cidr, "gateway_ip": gw,
                                            "dns_nameservers": ["192.0.2.53"]}]}
        if vni is None:
            net.update(segmentation_type="flat", physical_network="public", mtu=1500,
                       external=True, segmentation_id=None)
        return net

    def port(self, name: str, net: str, sub: str, groups: list[str]) -> dict:
        return {"id": self.ports[name], "network_id": net, "mac_address": self.macs[name],
                "fixed_ips": [{"subnet_id": sub, "ip_address": self.ips[name]}],
                "security_groups": groups}

    def groups(self) -> list[dict]:
        members = [self.ips["vm1"], self.ips["vm2"]]
        default = {"id": self.sg_default, "name": "default", "member_ips": members, "rules": [
            {"direction": "egress"},
            {"direction": "ingress", "remote_group_id": self.sg_default}]}
        ping = {"id": self.sg_ping, "rules": [
            {"direction": "ingress", "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"}]}
        web = {"id": self.sg_web, "rules": [
            {"direction": "ingress", "protocol": "tcp", "port_range_min": 8080,
             "port_range_max": 8080, "remote_ip_prefix": "0.0.0.0/0"}] if self.web_open else []}
        return [default, ping, web]

    def dhcp(self, net: str, sub: str, port: str, ip: str, hosts: list[str],
             extra: list[dict[str, str]] | None = None) -> dict:
        return {"network_id": net, "port_id": self.ports[port], "mac_address": self.macs[port],
                "fixed_ips": [{"subnet_id": sub, "ip_address": ip}],
                "hosts": [{"mac_address": self.macs[h], "ip_address": self.ips[h]}
                          for h in hosts] + list(extra or [])}

    def states(self) -> dict[str, dict]:
        net_a = self.network(self.net_a, 101, self.sub_a, "10.10.0.0/24", "10.10.0.1")
        # Tenant B overlaps tenant A's CIDR on purpose: only the segment separates them.
        net_b = self.network(self.net_b, 102, self.sub_b, "10.10.0.0/24", "10.10.0.1")
        public = self.network(self.public, None, self.sub_pub, "203.0.113.0/24", "203.0.113.1")
        all_groups = [self.sg_default, self.sg_ping, self.sg_web]
        router = {
            "id": self.router,
            "interfaces": [{"port_id": self.ports["r_a"], "network_id": self.net_a,
                            "subnet_id": self.sub_a, "mac_address": self.macs["r_a"],
                            "ip_address": "10.10.0.1", "prefixlen": 24}],
            "gateway": {"port_id": self.ports["r_gw"], "network_id": self.public,
                        "mac_address": self.macs["r_gw"], "ip_address": "203.0.113.10",
                        "prefixlen": 24, "gateway_ip": "203.0.113.1"},
            "enable_snat": True,
            "floating_ips": [{"floating_ip_address": "203.0.113.20",
                              "fixed_ip_address": self.ips["vm1"]}],
        }
        h1 = {"host": "h1", "tunnel_peers": ["172.31.250.1", "172.31.250.2"],
              "networks": [net_a, public] + ([net_b] if self.with_b else []),
              "ports": [self.port("vm1", self.net_a, self.sub_a, all_groups),
                        *self.extra_ports],
              "dhcp_servers": [self.dhcp(self.net_a, self.sub_a, "dhcp_a", "10.10.0.2",
                                         ["vm1", "vm2"], self.extra_leases)]
              + ([self.dhcp(self.net_b, self.sub_b, "dhcp_b", "10.10.0.2", ["vm3"])]
                 if self.with_b else []),
              "routers": [router], "security_groups": self.groups()}
        h2 = {"host": "h2", "tunnel_peers": ["172.31.250.1", "172.31.250.2"],
              "networks": [net_a] + ([net_b] if self.with_b else []),
              "ports": [self.port("vm2", self.net_a, self.sub_a, [self.sg_default])]
              + ([self.port("vm3", self.net_b, self.sub_b, [self.sg_default])]
                 if self.with_b else [])
              + ([self.port("vm4", self.net_a, self.sub_a, [self.sg_default])]
                 if self.with_vm4 else []),
              "security_groups": self.groups()}
        return {"h1": h1, "h2": h2}

    def converge(self, agents: dict[str, NetworkAgent] | None = None) -> None:
        for name, state in self.states().items():
            HostState.from_dict(state)  # the document is valid
            (self.tmp / f"{name}.json").write_text(json.dumps(state))
        for name, agent in (agents or self.agents).items():
            report = agent.reconcile_once()
            assert report.ok, (name, report)

    def diagnose(self) -> str:
        """What to look at when a fake VM got no lease."""
        logs = sh("sh", "-c", f"tail -n 15 {self.tmp}/h1/dhcp/*/log", check=False)
        extra = ""
        for host, rundir in self.ovs.items():
            env = {"OVS_RUNDIR": rundir, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            for argv in (["ovs-vsctl", "show"],
                         ["ovs-ofctl", "dump-ports", NAMES.ovs_bridge("int")]):
                extra += subprocess.run(argv, env=env, capture_output=True, text=True).stdout
            extra += sh("tail", "-n", "20", f"{rundir}/ovs-vswitchd.log", check=False)
            extra += sh("ip", "-n", host, "-s", "-br", "link", check=False)
        return logs + extra

    def close(self) -> None:
        self.upstream.close()


@pytest.fixture(scope="module", params=["linuxbridge", "ovs"])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _require_tools()
    if request.param == "ovs" and not shutil.which("ovs-vswitchd"):
        pytest.skip("Open vSwitch is not installed: run scripts/install-test-deps.sh")
    lab = Lab()
    w = None
    try:
        tmp = agent_state_root(lab)
        w = World(lab, tmp, request.param)
        w.converge()
        for name in ("vm1", "vm2", "vm3"):
            got = lab.dhcp(w.vms[name])
            if got != w.ips[name]:  # a busy machine: converge once more, ask again
                w.converge()
                got = lab.dhcp(w.vms[name])
            assert got == w.ips[name], f"{name} got no DHCP lease:\n{w.diagnose()}"
        yield w
    finally:
        if w is not None:
            # an empty desired state must remove everything the agents created
            for name in ("h1", "h2"):
                (w.tmp / f"{name}.json").write_text(json.dumps({"host": name}))
                w.agents[name].reconcile_once()
            w.close()
        lab.cleanup()


def test_dhcp_gave_each_vm_its_fixed_ip_and_the_metadata_route(world: World) -> None:
    routes = nsx(world.vms["vm1"].name, "ip", "-4", "route")
    assert "169.254.169.254 via 10.10.0.2" in routes
    assert "default via 10.10.0.1" in routes
    assert "mtu 1450" in sh("ip", "-n", world.vms["vm1"].name, "link", "show", "eth0")


def test_two_vms_on_two_hosts_ping_over_the_tunnel(world: World) -> None:
    assert world.lab.ping(world.vms["vm1"].name, world.ips["vm2"])
    assert world.lab.ping(world.vms["vm2"].name, world.ips["vm1"])


def test_br_phy_took_the_underlay_address_and_its_routes_along(world: World) -> None:
    """Userspace datapath: the underlay address moved onto br-phy, and so did the routes
    through the underlay interface (a single-NIC host keeps its default route)."""
    if world.backend != "ovs":
        pytest.skip("br-phy is the ovs backend's (userspace datapath)")
    br_phy = NAMES.ovs_bridge("phy")
    assert "172.31.250.1/24" in sh("ip", "-n", world.h1, "-4", "addr", "show", "dev", br_phy)
    route = sh("ip", "-n", world.h1, "-4", "route", "show", "198.51.100.0/24")
    assert f"via 172.31.250.2 dev {br_phy}" in route, route


def test_another_tenants_network_is_isolated(world: World) -> None:
    # vm3 has an address in the same CIDR, but on network B (another VNI).
    assert not world.lab.ping(world.vms["vm3"].name, world.ips["vm1"], count=1)
    assert not world.lab.ping(world.vms["vm3"].name, world.ips["vm2"], count=1)
    assert world.lab.ping(world.vms["vm3"].name, "10.10.0.2", count=1)  # its own DHCP port


def test_snat_to_the_outside_and_in_through_the_floating_ip(world: World) -> None:
    lab = world.lab
    lab.tcp_server(world.inet, 9000)
    # vm2 (on host 2, no floating IP) goes out with the router's gateway address
    assert lab.tcp_get(world.vms["vm2"].name, "203.0.113.1", 9000) == "203.0.113.10"
    # vm1 has a floating IP: outbound is translated to it
    assert lab.tcp_get(world.vms["vm1"].name, "203.0.113.1", 9000) == "203.0.113.20"
    # and the outside reaches vm1 through it (icmp is open in sg_ping)
    assert lab.ping(world.inet, "203.0.113.20")


def test_security_group_rule_opens_and_closes_a_tcp_port(world: World) -> None:
    lab = world.lab
    lab.tcp_server(world.vms["vm1"].name, 8080)
    assert lab.tcp_get(world.inet, "203.0.113.20", 8080, timeout=1) is None
    world.web_open = True
    world.converge()
    assert lab.tcp_get(world.inet, "203.0.113.20", 8080) == "203.0.113.1"
    world.web_open = False
    world.converge()
    assert lab.tcp_get(world.inet, "203.0.113.20", 8080, timeout=1) is None
    # members of the default group still reach it (remote group rule)
    assert lab.tcp_get(world.vms["vm2"].name, world.ips["vm1"], 8080) == world.ips["vm2"]


def test_spoofed_source_ip_and_mac_are_dropped(world: World) -> None:
    lab, vm1 = world.lab, world.vms["vm1"]
    assert lab.ping(vm1.name, world.ips["vm2"], count=1)
    sh("ip", "-n", vm1.name, "addr", "add", "10.10.0.99/24", "dev", "eth0")
    try:
        assert not lab.ping(vm1.name, world.ips["vm2"], count=2, source="10.10.0.99")
    finally:
        sh("ip", "-n", vm1.name, "addr", "del", "10.10.0.99/24", "dev", "eth0")
    sh("ip", "-n", vm1.name, "link", "set", "eth0", "address", "fa:16:3e:99:99:99")
    try:
        sh("ip", "-n", vm1.name, "neigh", "flush", "all")
        assert not lab.ping(vm1.name, world.ips["vm2"], count=2)
    finally:
        sh("ip", "-n", vm1.name, "link", "set", "eth0", "address", vm1.mac)
    assert lab.ping(vm1.name, world.ips["vm2"], count=3)


def test_a_vm_cannot_answer_dhcp(world: World) -> None:
    ruleset = nsx(world.h2, "nft", "list", "table", "bridge", NAMES.table("antispoof"))
    assert "udp sport 67 drop" in ruleset
    assert world.vms["vm2"].tap in ruleset


def test_metadata_proxy_forwards_a_signed_request(world: World) -> None:
    world.upstream.requests.clear()
    out = nsx(world.vms["vm1"].name, "python3", "-c",
              "import urllib.request;print(urllib.request.urlopen("
              "'http://169.254.169.254/openstack/latest/meta_data.json', timeout=10)"
              ".read().decode())")
    assert json.loads(out) == {"uuid": "instance-for-10.10.0.11"}
    (req,) = world.upstream.requests
    assert req == {"path": "/openstack/latest/meta_data.json", "network": world.net_a,
                   "ip": "10.10.0.11", "ok": True}


def test_the_router_proxy_serves_guests_that_route_metadata_via_their_gateway(
        world: World) -> None:
    """No option-121 route (a subnet without DHCP): 169.254.169.254 goes to the default
    gateway, and the proxy in qrouter-<router> forwards with the network of the client."""
    vm1 = world.vms["vm1"].name
    world.upstream.requests.clear()
    nsx(vm1, "ip", "route", "del", "169.254.169.254/32")
    try:
        assert "via 10.10.0.1" in nsx(vm1, "ip", "route", "get", "169.254.169.254")
        out = nsx(vm1, "python3", "-c",
                  "import urllib.request;print(urllib.request.urlopen("
                  "'http://169.254.169.254/latest/meta-data/', timeout=10).read().decode())")
    finally:
        nsx(vm1, "ip", "route", "replace", "169.254.169.254/32", "via", "10.10.0.2")
    assert json.loads(out) == {"uuid": "instance-for-10.10.0.11"}
    (req,) = world.upstream.requests
    assert req == {"path": "/latest/meta-data/", "network": world.net_a, "ip": "10.10.0.11",
                   "ok": True}
    ns = world.agents["h1"].d.routers.netns(world.router)
    assert "169.254.169.254/32" in sh("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "lo")


def test_a_tap_is_plugged_filtered_and_reported_active(world: World) -> None:
    """The compute agent makes the tap ``tap_name(prefix, port)`` (no veth): the agent plugs
    it (the hybrid bridge for ovs, the network's bridge for linuxbridge), filters it,
    reports it active."""
    tap = tap_name(PREFIX, world.ports["vm4"])
    world.with_vm4 = True
    try:
        world.converge()  # the tap is not there yet: the port waits and is reported down
        report = world.agents["h2"].reconcile_once()
        assert tap in report.waiting_devices and world.ports["vm4"] in report.down
        sh("ip", "-n", world.h2, "tuntap", "add", "dev", tap, "mode", "tap")
        sh("ip", "-n", world.h2, "link", "set", tap, "mtu", "1450", "up")
        report = world.agents["h2"].reconcile_once()
        assert report.ok and world.ports["vm4"] in report.active, report
        link = json.loads(sh("ip", "-n", world.h2, "-j", "-d", "link", "show", "dev", tap))[0]
        assert link["linkinfo"]["info_kind"] == "tun"
        bridge = (NAMES.hybrid(world.ports["vm4"])[0] if world.backend == "ovs"
                  else NAMES.network_bridge(world.net_a))
        assert link["master"] == bridge
        assert tap in nsx(world.h2, "nft", "list", "table", "bridge", NAMES.table("antispoof"))
        # gone from the desired state: unplugged and reported no more
        world.with_vm4 = False
        world.converge()
        report = world.agents["h2"].reconcile_once()
        assert world.ports["vm4"] not in report.active + report.down
        link = json.loads(sh("ip", "-n", world.h2, "-j", "link", "show", "dev", tap))[0]
        assert link.get("master") is None
    finally:
        world.with_vm4 = False
        sh("ip", "-n", world.h2, "link", "delete", tap, check=False)
        world.converge()


def test_a_new_port_reloads_dnsmasq_without_dropping_leases(world: World) -> None:
    dhcp = world.agents["h1"].d.dhcp
    pid = dhcp.pid(world.net_a)  # type: ignore[attr-defined]
    leases = Path(dhcp.state_dir) / dhcp.netns(world.net_a) / "leases"  # type: ignore[attr-defined]
    assert world.macs["vm1"] in leases.read_text()
    world.extra_leases.append({"mac_address": "fa:16:3e:00:00:77", "ip_address": "10.10.0.77"})
    world.converge()
    assert dhcp.pid(world.net_a) == pid  # type: ignore[attr-defined]
    assert "fa:16:3e:00:00:77,10.10.0.77" in (leases.parent / "hosts").read_text()
    assert world.macs["vm1"] in leases.read_text()
    # and the renewed lease of a VM is still answered
    assert world.lab.dhcp(world.vms["vm2"]) == world.ips["vm2"]
    world.extra_leases.clear()
    world.converge()


def test_a_deleted_ports_lease_is_released_for_the_next_owner_of_its_address(
        world: World) -> None:
    """The API may give a deleted port's address to a new port (another MAC) at once:
    the old lease must not make dnsmasq refuse it until it expires."""
    dhcp = world.agents["h1"].d.dhcp
    leases = Path(dhcp.state_dir) / dhcp.netns(world.net_a) / "leases"  # type: ignore[attr-defined]
    ip = "10.10.0.15"

    def add_port(mac: str) -> FakeVM:
        port_id = uid()
        world.extra_ports[:] = [{"id": port_id, "network_id": world.net_a, "mac_address": mac,
                                 "fixed_ips": [{"subnet_id": world.sub_a, "ip_address": ip}],
                                 "security_groups": [world.sg_default]}]
        world.extra_leases[:] = [{"mac_address": mac, "ip_address": ip}]
        vm = world.lab.vm(f"t16n-vm{mac[-1]}", world.h1, port_id, mac, tap=NAMES.tap(port_id))
        world.converge()
        return vm

    try:
        old = add_port("fa:16:3e:00:01:05")
        assert world.lab.dhcp(old) == ip, world.diagnose()
        assert f"{old.mac} {ip}" in leases.read_text()
        # the port goes: its host entry, its device and its fake VM
        world.extra_ports.clear()
        world.extra_leases.clear()
        sh("ip", "netns", "delete", old.name)
        world.converge()
        assert old.mac not in (leases.parent / "hosts").read_text()
        assert old.mac not in leases.read_text(), leases.read_text()
        # a new port with the same address and another MAC is served at once
        new = add_port("fa:16:3e:00:01:06")
        assert world.lab.dhcp(new, tries=3) == ip, world.diagnose()
        assert f"{new.mac} {ip}" in leases.read_text()
    finally:
        world.extra_ports.clear()
        world.extra_leases.clear()
        world.converge()


def _snapshot(world: World) -> dict[str, Any]:
    agent = world.agents["h1"]
    dhcp, meta = agent.d.dhcp, agent.d.metadata
    ns = dhcp.netns(world.net_a)
    links = {link["ifname"]: link["ifindex"]
             for link in json.loads(sh("ip", "-n", ns, "-j", "link"))}
    table = json.loads(nsx(world.h1, "nft", "-j", "list", "table", "inet", NAMES.table("sg")))
    handle = [i["table"]["handle"] for i in table["nftables"] if "table" in i]
    return {"dnsmasq": dhcp.pid(world.net_a),  # type: ignore[attr-defined]
            "proxy": meta.pid(ns),  # type: ignore[attr-defined]
            "links": links, "sg_table": handle}


ECHO_SERVER = """
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4)
def serve(c):
    while data := c.recv(100):
        c.sendall(data)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""

ECHO_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
for line in sys.stdin:
    c.sendall(line.encode())
    try:
        print(c.recv(100).decode().strip(), flush=True)
    except OSError as exc:
        print("ERROR", exc, flush=True)
"""


def test_restart_converges_without_recreating_what_is_right(world: World) -> None:
    lab, vm1, vm2 = world.lab, world.vms["vm1"], world.vms["vm2"]
    server = subprocess.Popen(["ip", "netns", "exec", vm1.name, "python3", "-c", ECHO_SERVER,
                               "7000"], start_new_session=True)
    lab.pids.append(server.pid)
    sh("sleep", "0.3")
    client = subprocess.Popen(
        ["ip", "netns", "exec", vm2.name, "python3", "-c", ECHO_CLIENT, world.ips["vm1"], "7000"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    lab.pids.append(client.pid)
    assert client.stdin and client.stdout

    def echo(word: str) -> str:
        client.stdin.write(word + "\n")  # type: ignore[union-attr]
        client.stdin.flush()  # type: ignore[union-attr]
        return client.stdout.readline().strip()  # type: ignore[union-attr]

    assert echo("before") == "before"
    before = _snapshot(world)
    assert before["dnsmasq"] and before["proxy"]
    restarted = {"h1": world.make_agent("h1", world.h1, "172.31.250.1"),
                 "h2": world.make_agent("h2", world.h2, "172.31.250.2")}
    world.converge(restarted)
    assert _snapshot(world) == before
    # an established connection survives the restart and a rewrite of the rules
    assert echo("after-restart") == "after-restart"
    world.web_open = True
    world.converge(restarted)
    world.web_open = False
    world.converge(restarted)
    assert echo("after-rule-changes") == "after-rule-changes"
    client.stdin.close()
    assert lab.ping(vm1.name, world.ips["vm2"], count=1)


def test_deleting_a_network_removes_its_namespace_dnsmasq_ports_and_rules(world: World) -> None:
    agent = world.agents["h1"]
    ns_b = agent.d.dhcp.netns(world.net_b)
    pid_b = agent.d.dhcp.pid(world.net_b)  # type: ignore[attr-defined]
    assert pid_b and Path("/run/netns", ns_b).exists()
    world.with_b = False
    world.converge()
    assert not Path("/run/netns", ns_b).exists()
    assert not pid_running(pid_b)  # (a zombie at most: this container's init does not reap)
    if world.backend == "linuxbridge":
        bridge_b = NAMES.network_bridge(world.net_b)
        assert bridge_b not in sh("ip", "-n", world.h1, "link")
        links_h2 = sh("ip", "-n", world.h2, "link")
        assert bridge_b not in links_h2 and NAMES.vxlan(102) not in links_h2
    else:
        for host in (world.h1, world.h2):
            env = {"OVS_RUNDIR": world.ovs[host]}
            ids = subprocess.run(["ovs-vsctl", "br-get-external-id", NAMES.ovs_bridge("int")],
                                 env=env, capture_output=True, text=True, check=True).stdout
            assert world.net_b not in ids
            flows = subprocess.run(["ovs-ofctl", "dump-flows", NAMES.ovs_bridge("tun")], env=env,
                                   capture_output=True, text=True, check=True).stdout
            assert "0x66" not in flows and "tun_id=102" not in flows
        assert NAMES.hybrid(world.ports["vm3"])[2] not in sh("ip", "-n", world.h2, "link")
    rules = nsx(world.h2, "nft", "list", "ruleset")
    assert world.vms["vm3"].tap not in rules
    # what stays desired still works
    assert world.lab.ping(world.vms["vm1"].name, world.ips["vm2"], count=1)


def test_the_stratus_network_agent_command_converges_once(tmp_path: Path) -> None:
    """``stratus-network-agent --once`` with a JSON state file, against a fresh fake host."""
    _require_tools()
    agent_bin = Path(sys.executable).with_name("stratus-network-agent")
    if not agent_bin.exists():
        pytest.skip("stratus-network-agent is not installed (pip install -e .)")
    lab = Lab()
    try:
        host = lab.host("t16n-cli-h1")
        tmp_path = agent_state_root(lab)
        net, port = uid(), uid()
        state = {"host": "cli", "networks": [{"id": net, "segmentation_id": 300, "subnets": [
            {"id": "s", "cidr": "10.30.0.0/24", "gateway_ip": "10.30.0.1"}]}],
            "dhcp_servers": [{"network_id": net, "port_id": port,
                              "mac_address": "fa:16:3e:30:00:02", "metadata_proxy": False,
                              "fixed_ips": [{"subnet_id": "s", "ip_address": "10.30.0.2"}]}]}
        (tmp_path / "state.json").write_text(json.dumps(state))
        conf = tmp_path / "stratus.conf"
        conf.write_text(
            f"[DEFAULT]\ndeploy_prefix = {PREFIX}\n"
            "[agent]\nl2_backend = linuxbridge\nunderlay_ip = 172.31.252.1\n"
            f"state_dir = {tmp_path / 'state'}\nnetwork_state_url = {tmp_path / 'state.json'}\n"
            f"host_netns = {host}\nnetns_prefix = {host}-\nnft_prefix = stratus_test_\n")
        run = [str(agent_bin), "--config-file", str(conf), "--once"]
        proc = subprocess.run(run, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert Path("/run/netns", f"{host}-{PREFIX}-qdhcp-{net}").exists()
        # --cleanup removes it all without reading the state (the teardown's way)
        proc = subprocess.run([*run[:-1], "--cleanup"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert not Path("/run/netns", f"{host}-{PREFIX}-qdhcp-{net}").exists()
        assert NAMES.network_bridge(net) not in sh("ip", "-n", host, "link")
    finally:
        lab.cleanup()


def test_cleanup_legacy_removes_what_an_earlier_release_made_and_nothing_prefixed() -> None:
    """Upgrade: ``--cleanup-legacy`` removes the unprefixed objects of a release before
    deploy prefixes (here inside a fake host, its namespaces behind ``netns_prefix``)
    and leaves the prefixed deploy's; the new agent then gets the VNI the old
    ``vxlan-<vni>`` held."""
    _require_tools()
    agent_bin = Path(sys.executable).with_name("stratus-network-agent")
    if not agent_bin.exists():
        pytest.skip("stratus-network-agent is not installed (pip install -e .)")
    lab = Lab()
    try:
        host = lab.host("t16n-lg-h1")
        root = agent_state_root(lab)
        net, port, old_net = uid(), uid(), uid()
        state = {"host": "lg", "networks": [{"id": net, "segmentation_id": 310, "subnets": [
            {"id": "s", "cidr": "10.31.0.0/24", "gateway_ip": "10.31.0.1"}]}],
            "dhcp_servers": [{"network_id": net, "port_id": port,
                              "mac_address": "fa:16:3e:31:00:02", "metadata_proxy": False,
                              "fixed_ips": [{"subnet_id": "s", "ip_address": "10.31.0.2"}]}]}
        (root / "state.json").write_text(json.dumps(state))
        conf = root / "stratus.conf"
        conf.write_text(
            f"[DEFAULT]\ndeploy_prefix = {PREFIX}\n"
            "[agent]\nl2_backend = linuxbridge\nunderlay_ip = 172.31.253.1\n"
            f"state_dir = {root / 'state'}\nnetwork_state_url = {root / 'state.json'}\n"
            f"host_netns = {host}\nnetns_prefix = {host}-\nnft_prefix = stratus_test_\n")
        # what the earlier release left: its bridge with VXLAN 310 and an instance tap,
        # a DHCP namespace with a process in it and its state directory, its table
        old_bridge, old_tap = "brq" + old_net[:11], "tap" + port[:11]
        for argv in (["link", "add", old_bridge, "type", "bridge"],
                     ["link", "add", "vxlan-310", "type", "vxlan", "id", "310", "local",
                      "172.31.253.1", "dstport", "4789", "nolearning"],
                     ["link", "set", "vxlan-310", "master", old_bridge],
                     ["tuntap", "add", "dev", old_tap, "mode", "tap"],
                     ["link", "set", old_tap, "master", old_bridge]):
            sh("ip", "-n", host, *argv)
        old_ns = lab.netns(f"{host}-qdhcp-{old_net}")
        sleeper = subprocess.Popen(["ip", "netns", "exec", old_ns, "sleep", "600"],
                                   start_new_session=True)
        lab.pids.append(sleeper.pid)
        (root / "state" / "dhcp" / old_net).mkdir(parents=True)
        nsx(host, "nft", "add", "table", "inet", "stratus_test_sg")
        run = [str(agent_bin), "--config-file", str(conf)]
        # the new agent alone: VNI 310 is taken by the old device
        proc = subprocess.run([*run, "--once"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and "vxlan" in proc.stderr.lower(), proc.stderr
        ours_ns = f"{host}-{PREFIX}-qdhcp-{net}"
        assert Path("/run/netns", ours_ns).exists()

        proc = subprocess.run([*run, "--cleanup-legacy"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        links = sh("ip", "-n", host, "-o", "link")
        assert old_bridge not in links and "vxlan-310" not in links
        assert old_tap in links  # the compute agent's: only detached
        assert not Path("/run/netns", old_ns).exists()
        sleeper.wait(timeout=10)  # stopped by pid with its namespace
        assert not (root / "state" / "dhcp" / old_net).exists()
        tables = nsx(host, "nft", "list", "tables")
        assert "stratus_test_sg\n" not in tables + "\n"
        # the prefixed deploy's objects are all there, and it now converges
        assert Path("/run/netns", ours_ns).exists()
        assert NAMES.network_bridge(net) in links
        proc = subprocess.run([*run, "--once"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert NAMES.vxlan(310) in sh("ip", "-n", host, "-o", "link")
        proc = subprocess.run([*run, "--cleanup"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    finally:
        lab.cleanup()
