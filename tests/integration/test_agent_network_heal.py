"""Issue 19: the network agent heals what is done to a network's namespaces and processes
under it, within one pass, with nothing re-run.

The agent (linuxbridge backend, commands run inside the fake host namespace
``t16n-hh1``) reads its desired state from a real ``stratus-network`` (with a real
``stratus-identity``); a fake VM on a port bound to that host gets its lease from the
agent's dnsmasq and reaches 169.254.169.254 through the agent's metadata proxies (the
DHCP namespace's, by the option 121 route, and the router's, via the default gateway)
to a stand-in upstream that checks the signature. Then:

* the network's ``qdhcp-``/``qrouter-`` namespaces are deleted (``ip netns delete``, as
  an operator or a fighting deploy would): dnsmasq and the proxies live on in the
  deleted namespaces, so a check that their pids are alive is not enough;
* in another case dnsmasq and both proxies are killed (SIGKILL);
* in a third the network's bridge and the DHCP port's veth are deleted.

After ONE agent pass (``reconcile_once``, the pass the loop runs every resync) DHCP and
metadata answer again. Every host object is named ``t16n-...`` (the agent's deploy
prefix is ``t16n``); processes are stopped by pid and everything is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import ADMIN_PASSWORD, IdentityServer
from netlab import FakeVM, Lab, nsx, sh
from network_api import NetworkServer
from stratus.agent.ip_lib import named_netns_identity, pid_running, process_netns_identity
from stratus.agent.network.agent import build_agent
from stratus.agent.network.metadata_proxy import bind_in_netns
from stratus.agent.network.reconcile import NetworkAgent
from stratus.common.config import Config
from stratus.contracts.network import tap_name

pytestmark = [pytest.mark.integration]

PREFIX = "t16n"
HOST = "t16n-hh1"
SECRET = "t16n-heal-secret"
NEEDED = ("ip", "dnsmasq", "nft", "busybox", "setsid", "bridge", "ethtool")

METADATA_GET = (
    "import sys, urllib.request\n"
    "try:\n"
    "    print(urllib.request.urlopen('http://169.254.169.254/openstack/latest/"
    "meta_data.json', timeout=5).read().decode())\n"
    "except OSError as exc:\n"
    "    print('ERROR', exc); sys.exit(1)\n")


class Upstream:
    """A stand-in for stratus-metadata inside the fake host: it answers a request whose
    signature is right with the network and address it was signed for."""

    def __init__(self, host_ns: str):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                net = self.headers.get("X-Stratus-Network-ID", "")
                ip = self.headers.get("X-Forwarded-For", "")
                good = hmac.new(SECRET.encode(), f"{net}\n{ip}".encode(),
                                hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(self.headers.get("X-Stratus-Signature", ""), good)
                body = json.dumps({"network": net, "ip": ip}).encode() if ok else b"bad"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = bind_in_netns(f"/run/netns/{host_ns}",
                                    lambda: ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Cloud:
    lab: Lab
    agent: NetworkAgent
    network_id: str
    router_id: str
    vm: FakeVM
    vm_ip: str
    gateway_ip: str

    @property
    def qdhcp(self) -> str:
        return f"{PREFIX}-qdhcp-{self.network_id}"

    @property
    def qrouter(self) -> str:
        return f"{PREFIX}-qrouter-{self.router_id}"

    def one_pass(self) -> None:
        report = self.agent.reconcile_once()
        assert report.ok and not report.waiting_devices, report

    def dnsmasq_pid(self) -> int | None:
        return self.agent.d.dhcp.pid(self.network_id)  # type: ignore[attr-defined, no-any-return]

    def proxy_pids(self) -> dict[str, int | None]:
        meta = self.agent.d.metadata
        return {ns: meta.pid(ns) for ns in (self.qdhcp, self.qrouter)}  # type: ignore[attr-defined]

    def lease(self) -> str | None:
        sh("ip", "-n", self.vm.name, "-4", "addr", "flush", "dev", "eth0")
        return self.lab.dhcp(self.vm, tries=5)

    def metadata(self, via_router: bool) -> dict[str, str] | str:
        """What the fake VM gets from 169.254.169.254 through the DHCP namespace's proxy
        (its option 121 route) or through the router's (its default gateway)."""
        vm = self.vm.name
        routes = nsx(vm, "ip", "-4", "route")
        if via_router:
            nsx(vm, "ip", "route", "del", "169.254.169.254/32", check=False)
            nsx(vm, "ip", "route", "replace", "default", "via", self.gateway_ip)
        try:
            out = nsx(vm, "python3", "-c", METADATA_GET, check=False, timeout=30).strip()
        finally:
            if via_router:
                self.lease()  # the lease's routes again
        try:
            return dict(json.loads(out))
        except ValueError:
            return f"{out} (routes: {routes})"


def _require_tools() -> None:
    missing = [t for t in NEEDED if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing host tools {missing}: run scripts/install-test-deps.sh")


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    _require_tools()
    lab = Lab()
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-heal-", dir="/tmp"))
    root.chmod(0o755)  # dnsmasq (user nobody) reads its files under it
    lab.dirs.append(root)
    started: list[Any] = []
    upstream: Upstream | None = None
    agent: NetworkAgent | None = None
    try:
        identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
        network = NetworkServer(root / "network", f"sqlite:///{root}/network.sqlite", identity)
        for server in (identity, network):
            server.prepare()
            server.start()
            started.append(server)
        host = lab.host(HOST)
        upstream = Upstream(host)
        conf = root / "agent.conf"
        conf.write_text(
            f"[DEFAULT]\ndeploy_prefix = {PREFIX}\nidentity_url = {identity.url}/v3\n"
            f"[agent]\nhost = {HOST}\nl2_backend = linuxbridge\nunderlay_ip = 172.31.249.1\n"
            "network_node = true\n"
            f"network_state_url = {network.url}/v2.0/stratus/host-state?host={{host}}\n"
            f"username = admin\npassword = {ADMIN_PASSWORD}\nproject_name = admin\n"
            f"state_dir = {root / 'agent'}\nhost_netns = {host}\n"
            f"metadata_url = http://127.0.0.1:{upstream.port}\n"
            f"metadata_shared_secret = {SECRET}\n")
        agent, _, _ = build_agent(Config.load(str(conf)))

        api = httpx.Client(base_url=network.url, timeout=30,
                           headers={"X-Auth-Token": identity.token()})

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            resp = api.post(path, json=body)
            assert resp.status_code == 201, resp.text
            return dict(next(iter(resp.json().values())))

        net = post("/v2.0/networks", {"network": {"name": "t16n-heal"}})
        subnet = post("/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.77.0.0/24", "ip_version": 4,
            "gateway_ip": "10.77.0.1"}})
        router = post("/v2.0/routers", {"router": {"name": "t16n-heal"}})
        resp = api.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                       json={"subnet_id": subnet["id"]})
        assert resp.status_code == 200, resp.text
        port = post("/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": HOST, "device_owner": "compute:nova",
            "device_id": "t16n-heal-vm"}})
        api.close()
        vm = lab.vm(f"{PREFIX}-hvm1", host, port["id"], port["mac_address"],
                    tap=tap_name(PREFIX, port["id"]))
        c = Cloud(lab, agent, net["id"], router["id"], vm, port["fixed_ips"][0]["ip_address"],
                  "10.77.0.1")
        c.agent.reconcile_once()  # registers the host (a network node) and converges
        c.one_pass()
        assert c.lease() == c.vm_ip, "the fake VM got no lease before anything was done"
        yield c
    finally:
        if agent is not None:
            assert agent.cleanup(HOST)  # every namespace, dnsmasq and proxy of ours, by pid
        if upstream is not None:
            upstream.close()
        for server in reversed(started):
            server.stop()
        lab.cleanup()


def expect_dhcp_and_metadata(c: Cloud) -> None:
    assert c.lease() == c.vm_ip
    want = {"network": c.network_id, "ip": c.vm_ip}
    assert c.metadata(via_router=False) == want
    assert c.metadata(via_router=True) == want


def test_dhcp_and_metadata_answer_at_first(cloud: Cloud) -> None:
    expect_dhcp_and_metadata(cloud)
    pid = cloud.dnsmasq_pid()
    assert pid and process_netns_identity(pid) == named_netns_identity(cloud.qdhcp)


def test_deleted_namespaces_are_recreated_with_their_processes_in_one_pass(
        cloud: Cloud) -> None:
    dnsmasq, proxies = cloud.dnsmasq_pid(), cloud.proxy_pids()
    assert dnsmasq and all(proxies.values())
    for ns in (cloud.qdhcp, cloud.qrouter):
        sh("ip", "netns", "delete", ns)
    # the processes live on in the deleted namespaces (which they keep): alive, and
    # serving until the pass makes the namespaces anew; a pid check sees nothing wrong
    assert pid_running(dnsmasq) and all(pid_running(p) for p in proxies.values())

    cloud.one_pass()

    for ns in (cloud.qdhcp, cloud.qrouter):
        assert Path("/run/netns", ns).exists()
    new = cloud.dnsmasq_pid()
    assert new and new != dnsmasq and not pid_running(dnsmasq)
    assert process_netns_identity(new) == named_netns_identity(cloud.qdhcp)
    for ns, pid in cloud.proxy_pids().items():
        assert pid and pid != proxies[ns] and not pid_running(proxies[ns])
    expect_dhcp_and_metadata(cloud)


def test_killed_dnsmasq_and_proxies_are_restarted_in_one_pass(cloud: Cloud) -> None:
    dnsmasq, proxies = cloud.dnsmasq_pid(), cloud.proxy_pids()
    assert dnsmasq and all(proxies.values())
    for pid in (dnsmasq, *proxies.values()):
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    assert cloud.lease() is None

    cloud.one_pass()

    assert cloud.dnsmasq_pid() not in (None, dnsmasq)
    assert all(pid and pid != proxies[ns] for ns, pid in cloud.proxy_pids().items())
    expect_dhcp_and_metadata(cloud)


def test_deleted_devices_are_made_again_in_one_pass(cloud: Cloud) -> None:
    """The network's bridge and the DHCP port's veth deleted: the pass makes both again,
    and dnsmasq (bound to the index of an interface that is gone) is restarted."""
    dnsmasq = cloud.dnsmasq_pid()
    (ns_dev,) = [link["ifname"] for link in json.loads(sh("ip", "-n", cloud.qdhcp, "-j", "link"))
                 if link["ifname"].startswith("ns-")]
    dhcp_tap = tap_name(PREFIX, ns_dev.removeprefix("ns-"))
    bridge = f"{PREFIX}-br{cloud.network_id.replace('-', '')}"[:15]
    for dev in (dhcp_tap, bridge):
        sh("ip", "-n", HOST, "link", "delete", dev)
    assert cloud.lease() is None

    cloud.one_pass()

    links = sh("ip", "-n", HOST, "-o", "link")
    assert dhcp_tap in links and bridge in links
    new = cloud.dnsmasq_pid()
    assert new and new != dnsmasq
    expect_dhcp_and_metadata(cloud)


def test_a_second_pass_restarts_nothing(cloud: Cloud) -> None:
    """Healing is not churn: with everything right, a pass keeps every process."""
    before = (cloud.dnsmasq_pid(), cloud.proxy_pids())
    cloud.one_pass()
    assert (cloud.dnsmasq_pid(), cloud.proxy_pids()) == before
