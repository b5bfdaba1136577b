"""Metadata over IPv6 with real parts (docs/metadata.md, "Over IPv6"): one fake host (a
network namespace) running the network agent (``linuxbridge``, and ``ovs`` with a
private userspace Open vSwitch), real dnsmasq and nftables, a real ``stratus-metadata``
in the host in front of a small fake compute API, and fake guests (namespaces behind
veths with their ports' MACs) that have nothing but their link-local IPv6 address
(``accept_ra`` off):

* a guest on an IPv6-only SLAAC network and one on an IPv4-only network each get their
  own instance's ``meta_data.json`` from ``http://[fe80::a9fe:a9fe%eth0]/`` (curl, the
  URL as cloud-init writes it);
* a guest added to a network afterwards is answered without the proxy restarting;
* an agent restart (a new agent on the same host) restarts nothing and duplicates
  nothing; a network removed takes its proxy, its hosts file and its namespace along.

Every host object carries ``zm6-<random>`` (namespaces, state directory; the agent's
deploy prefix ``zm6`` and its nftables tables live inside the fake host) and is removed,
the agent's own objects by converging it to an empty state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_agent_network_ipv6 import eui64
from test_metadata_server import FakeCompute, MetadataProcess, instance_doc

from helpers import BIN
from netlab import Lab, nsx, sh
from stratus.agent.ip_lib import pid_running, read_pidfile
from stratus.agent.network.agent import build_agent
from stratus.agent.network.metadata_proxy import bind_in_netns
from stratus.agent.network.naming import Naming
from stratus.agent.network.reconcile import NetworkAgent
from stratus.common.config import Config

pytestmark = [pytest.mark.integration]

NEEDED = ("ip", "dnsmasq", "nft", "curl", "setsid", "bridge")
PREFIX = "zm6"
NAMES = Naming(deploy_prefix=PREFIX, nft_prefix="zm6_test_")
SECRET = "zm6-shared-secret"
URL = "http://[fe80::a9fe:a9fe%25eth0]/openstack/latest/meta_data.json"


class World:
    """One host, an IPv6-only and an IPv4-only network, guests, stratus-metadata."""

    def __init__(self, lab: Lab, backend: str, service: Service):
        self.lab = lab
        self.tag = tag = f"{PREFIX}-{uuid.uuid4().hex[:4]}"
        self.h1 = lab.host(f"{tag}-h1")
        ovs_rundir = lab.ovs(self.h1) if backend == "ovs" else ""
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))
        self.state_dir.chmod(0o755)  # dnsmasq (user nobody) reads its hosts file there
        lab.dirs.append(self.state_dir)
        sh("ip", "-n", self.h1, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
        sh("ip", "-n", self.h1, "addr", "add", "172.31.252.1/24", "dev", "ul0")
        for dev in ("ul0", "ul1"):
            sh("ip", "-n", self.h1, "link", "set", dev, "up")
        # the chain behind the proxy: the module's stratus-metadata, over a veth
        self.service = service
        lab.link_hosts(self.h1, "md0", "172.31.253.2/30", service.ns, f"{tag[-4:]}md",
                       "172.31.253.1/30")
        self.compute = service.compute
        self.id = {k: str(uuid.uuid4()) for k in ("net6", "net4", "s6", "s4", "sg")}
        self.ports = {k: str(uuid.uuid4()) for k in ("g6", "g4", "g4b", "dhcp6", "dhcp4")}
        self.macs = {k: f"fa:16:3e:6a:00:{i:02x}" for i, k in enumerate(self.ports, 1)}
        self.fixed = {"g6": eui64("2001:db8:6a::", self.macs["g6"]), "g4": "10.64.0.11",
                      "g4b": "10.64.0.12"}
        self.guests = {g: lab.vm(f"{tag}-{g}", self.h1, self.ports[g], self.macs[g],
                                 tap=NAMES.tap(self.ports[g])) for g in ("g6", "g4")}
        for g in self.guests.values():
            nsx(g.name, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=0")
        for n, g in enumerate(("g6", "g4", "g4b")):
            net = self.id["net6" if g == "g6" else "net4"]
            self.compute.docs[(net, self.fixed[g])] = instance_doc(self.fixed[g], 60 + n)
        self.with_g4b = False
        self.with_net6 = True
        self.conf = self.state_dir / "agent.conf"
        self.conf.write_text(
            f"[DEFAULT]\ndeploy_prefix = {PREFIX}\n[agent]\n"
            f"host = h1\nl2_backend = {backend}\nunderlay_interface = ul0\n"
            f"tunnel_type = gre\ndatapath_type = netdev\novs_rundir = {ovs_rundir}\n"
            f"underlay_ip = 172.31.252.1\nstate_dir = {self.state_dir / 'agent'}\n"
            f"network_state_url = {self.state_dir / 'state.json'}\n"
            f"metadata_url = {service.url}\nmetadata_shared_secret = {SECRET}\n"
            f"host_netns = {self.h1}\nnetns_prefix = {self.h1}-\nnft_prefix = zm6_test_\n")
        self.write_state()
        self.agent = self.new_agent()

    def new_agent(self) -> NetworkAgent:
        return build_agent(Config.load(str(self.conf)))[0]

    def uuid_of(self, guest: str) -> str:
        n = ("g6", "g4", "g4b").index(guest)
        return str(instance_doc("", 60 + n)["uuid"])

    # --- the desired state --------------------------------------------------------------
    def write_state(self) -> None:
        i, p, m = self.id, self.ports, self.macs
        net6 = {"id": i["net6"], "segmentation_id": 641, "mtu": 1450, "subnets": [
            {"id": i["s6"], "cidr": "2001:db8:6a::/64", "gateway_ip": "2001:db8:6a::1",
             "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}]}
        net4 = {"id": i["net4"], "segmentation_id": 642, "mtu": 1450, "subnets": [
            {"id": i["s4"], "cidr": "10.64.0.0/24", "gateway_ip": "10.64.0.1"}]}
        v4 = ["g4", "g4b"] if self.with_g4b else ["g4"]
        ports: list[dict[str, Any]] = [
            {"id": p[g], "network_id": i["net4"], "mac_address": m[g],
             "fixed_ips": [{"subnet_id": i["s4"], "ip_address": self.fixed[g]}],
             "security_groups": [i["sg"]]} for g in v4]
        dhcp: list[dict[str, Any]] = [
            {"network_id": i["net4"], "port_id": p["dhcp4"], "mac_address": m["dhcp4"],
             "fixed_ips": [{"subnet_id": i["s4"], "ip_address": "10.64.0.2"}],
             "hosts": [{"mac_address": m[g], "ip_address": self.fixed[g]} for g in v4]}]
        networks = [net4]
        if self.with_net6:
            networks.append(net6)
            ports.append({"id": p["g6"], "network_id": i["net6"], "mac_address": m["g6"],
                          "fixed_ips": [{"subnet_id": i["s6"], "ip_address": self.fixed["g6"]}],
                          "security_groups": [i["sg"]]})
            dhcp.append({"network_id": i["net6"], "port_id": p["dhcp6"],
                         "mac_address": m["dhcp6"],
                         "fixed_ips": [{"subnet_id": i["s6"],
                                        "ip_address": eui64("2001:db8:6a::", m["dhcp6"])}]})
        group = {"id": i["sg"], "member_ips": [], "rules": [
            {"direction": "egress", "ethertype": "IPv4"},
            {"direction": "egress", "ethertype": "IPv6"}]}
        doc = {"host": "h1", "networks": networks, "ports": ports, "dhcp_servers": dhcp,
               "security_groups": [group]}
        path = self.state_dir / "state.json"
        path.with_suffix(".tmp").write_text(json.dumps(doc))
        path.with_suffix(".tmp").replace(path)

    # --- what the host has ----------------------------------------------------------------
    def proxy_pid(self, net: str) -> int | None:
        pidfile = self.state_dir / "agent" / "metadata" / f"{host_names(self).dhcp_netns(net)}.pid"
        pid = read_pidfile(pidfile)
        return pid if pid_running(pid) else None

    def metadata_addresses(self, net: str, port: str) -> list[str]:
        out = sh("ip", "-n", host_names(self).dhcp_netns(net), "-j", "-6", "addr", "show", "dev",
                 NAMES.dhcp_dev(port), "scope", "link")
        return [a["local"] for e in json.loads(out or "[]") for a in e.get("addr_info", [])
                if a.get("local") == "fe80::a9fe:a9fe"]

    def fetch(self, guest: str) -> dict[str, Any]:
        out = nsx(f"{self.guests[guest].name}", "curl", "-gsSf", "--max-time", "10",
                  "--retry", "3", "--retry-connrefused", "--retry-delay", "1", URL, timeout=60)
        return dict(json.loads(out))

    def wait_link_local(self, guest: str) -> None:
        """The guest's own link-local address is usable (DAD done)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = sh("ip", "-n", self.guests[guest].name, "-6", "addr", "show", "dev", "eth0",
                     "scope", "link")
            if "inet6" in out and "tentative" not in out:
                return
            time.sleep(0.1)
        raise AssertionError(f"{guest} has no usable link-local address: {out}")

    def close(self) -> None:
        self.new_agent().cleanup("h1")


def host_names(world: World) -> Naming:
    """The agent's naming in this host (its namespaces carry the host's name first)."""
    return Naming(deploy_prefix=PREFIX, nft_prefix="zm6_test_", netns_prefix=f"{world.h1}-")


class Service:
    """A fake compute API and a real ``stratus-metadata`` in a namespace of their own,
    shared by both backends' hosts (each links to it over a veth)."""

    def __init__(self, lab: Lab) -> None:
        self.ns = lab.netns(f"{PREFIX}-{uuid.uuid4().hex[:4]}-svc")
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.ns}-", dir="/tmp"))
        lab.dirs.append(self.tmp)
        self.compute: FakeCompute = bind_in_netns(f"/run/netns/{self.ns}", FakeCompute)
        self.meta = MetadataProcess(self.compute.url, self.tmp, secret=SECRET)
        self.meta.env["STRATUS_METADATA__BIND_HOST"] = "0.0.0.0"  # its own namespace
        self.url = f"http://172.31.253.1:{self.meta.port}"
        with open(self.meta.log_path, "wb") as log:
            self.meta.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, str(BIN / "stratus-metadata")],
                env=self.meta.env, stdout=log, stderr=subprocess.STDOUT)
        lab.pids.append(self.meta.proc.pid)  # stopped by the lab whatever happens
        deadline = time.monotonic() + 60
        while subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-sf", "-o", "/dev/null",
                              f"{self.meta.url}/healthcheck"]).returncode != 0:
            assert self.meta.proc.poll() is None, self.meta.log()
            assert time.monotonic() < deadline, f"no stratus-metadata: {self.meta.log()}"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    missing = [t for t in NEEDED if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing host tools {missing}: run scripts/install-test-deps.sh")
    lab = Lab(tag=PREFIX)
    try:
        svc = Service(lab)
        yield svc
        svc.compute.close()
    finally:
        lab.cleanup()


@pytest.fixture(params=["linuxbridge", "ovs"])
def world(request: pytest.FixtureRequest, service: Service) -> Iterator[World]:
    if request.param == "ovs" and not shutil.which("ovs-vswitchd"):
        pytest.skip("missing host tool ovs-vswitchd: run scripts/install-test-deps.sh")
    lab = Lab(tag=PREFIX)
    w: World | None = None
    try:
        w = World(lab, request.param, service)
        yield w
    finally:
        try:
            if w is not None:
                w.close()
        finally:
            lab.cleanup()


def test_guests_with_only_a_link_local_address_get_their_metadata_over_ipv6(
        world: World) -> None:
    w = world
    report = w.agent.reconcile_once()
    assert report.ok, report
    for g in ("g6", "g4"):
        w.wait_link_local(g)
    # the IPv6-only network: the proxy maps the guest to its SLAAC fixed IP
    assert w.fetch("g6")["uuid"] == w.uuid_of("g6")
    # the IPv4-only network too: mapped to its IPv4 fixed IP by its host entry
    assert w.fetch("g4")["uuid"] == w.uuid_of("g4")
    pids = {n: w.proxy_pid(w.id[n]) for n in ("net6", "net4")}
    assert all(pids.values()), pids

    # a guest added to the IPv4 network: the proxy re-reads its hosts, no restart
    w.guests["g4b"] = w.lab.vm(f"{w.tag}-g4b", w.h1, w.ports["g4b"],
                               w.macs["g4b"], tap=NAMES.tap(w.ports["g4b"]))
    nsx(w.guests["g4b"].name, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=0")
    w.with_g4b = True
    w.write_state()
    assert w.agent.reconcile_once().ok
    w.wait_link_local("g4b")
    assert w.fetch("g4b")["uuid"] == w.uuid_of("g4b")
    assert w.proxy_pid(w.id["net4"]) == pids["net4"]

    # an agent restart: nothing restarted, nothing duplicated
    again = w.new_agent()
    assert again.reconcile_once().ok
    assert {n: w.proxy_pid(w.id[n]) for n in ("net6", "net4")} == pids
    assert w.metadata_addresses(w.id["net6"], w.ports["dhcp6"]) == ["fe80::a9fe:a9fe"]
    assert w.metadata_addresses(w.id["net4"], w.ports["dhcp4"]) == ["fe80::a9fe:a9fe"]
    assert w.fetch("g6")["uuid"] == w.uuid_of("g6")

    # the IPv6 network removed: its proxy, hosts file and namespace go with it
    w.with_net6 = False
    w.write_state()
    assert again.reconcile_once().ok
    assert not pid_running(pids["net6"])
    ns6 = host_names(w).dhcp_netns(w.id["net6"])
    assert not Path("/run/netns", ns6).exists()
    assert not list((w.state_dir / "agent" / "metadata").glob(f"{ns6}*"))
    assert w.fetch("g4")["uuid"] == w.uuid_of("g4")
