"""Network agent benchmark: convergence time for N ports, and tunnel throughput.

Prints figures; asserts nothing. Everything runs in ``st-bench-*`` network
namespaces (fake hosts and fake VMs, see tests/netlab) and is removed at the
end.

* convergence: one fake host with N instance ports (veth devices named like
  Nova's taps) on one network plus its DHCP server, per backend: the first
  pass (everything created), a second pass (nothing to do: the resync cost),
  and a restart (a new agent instance converging the same host);
* throughput: iperf3 (TCP, one stream) between two fake VMs on two fake hosts
  over the tunnel (linuxbridge: kernel VXLAN; ovs: userspace GRE), next to a
  plain veth pair between two namespaces.

Root; OVS, dnsmasq and iperf3 from ``make test-deps``.
Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/network_agent.py [--ports 100] [--seconds 3] \
        [--backends linuxbridge,ovs]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from netlab import Lab, nsx, sh
from stratus.agent.network.agent import build_agent
from stratus.agent.network.reconcile import NetworkAgent
from stratus.common.config import Config
from stratus.contracts.network import tap_name

SUBNET = "sub-bench"

# The deploy prefix of the benchmark's agents: their taps are named as the compute agent
# names a deploy's (contracts.network.tap_name), or the agent never plugs them.
DEPLOY_PREFIX = "zbb"


def make_agent(tmp: Path, name: str, ns: str, ip: str, backend: str, rundir: str,
               state: dict[str, Any]) -> NetworkAgent:
    (tmp / f"{name}.json").write_text(json.dumps(state))
    conf = tmp / f"{name}.conf"
    conf.write_text(
        "[agent]\n"
        f"host = {name}\nl2_backend = {backend}\nunderlay_interface = ul0\n"
        f"underlay_ip = {ip}\ntunnel_type = gre\ndatapath_type = netdev\n"
        f"ovs_rundir = {rundir}\nstate_dir = {tmp / name}\n"
        f"network_state_url = {tmp / name}.json\nmetadata_shared_secret = bench\n"
        f"host_netns = {ns}\nnetns_prefix = {ns}-\nnft_prefix = stratus_test_\n"
        f"[DEFAULT]\ndeploy_prefix = {DEPLOY_PREFIX}\n")
    agent, _, _ = build_agent(Config.load(str(conf)))
    return agent


def network(net_id: str) -> dict[str, Any]:
    return {"id": net_id, "segmentation_id": 4242, "mtu": 1450,
            "subnets": [{"id": SUBNET, "cidr": "10.50.0.0/16", "gateway_ip": "10.50.0.1"}]}


def port(port_id: str, net_id: str, i: int) -> dict[str, Any]:
    mac = f"fa:16:3e:50:{i >> 8:02x}:{i & 255:02x}"
    return {"id": port_id, "network_id": net_id, "mac_address": mac,
            "fixed_ips": [{"subnet_id": SUBNET, "ip_address": f"10.50.{i >> 8}.{(i & 255) + 10}"}],
            "security_groups": ["sg"]}


def state_for(host: str, net_id: str, ports: list[dict[str, Any]], peers: list[str],
              dhcp: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "host": host, "tunnel_peers": peers, "networks": [network(net_id)], "ports": ports,
        "security_groups": [{"id": "sg", "member_ips": [p["fixed_ips"][0]["ip_address"]
                                                         for p in ports],
                             "rules": [{"direction": "egress"},
                                       {"direction": "ingress", "remote_group_id": "sg"}]}],
        "metadata": {"upstream_url": "http://127.0.0.1:9", "shared_secret": "bench"}}
    if dhcp:
        doc["dhcp_servers"] = [{
            "network_id": net_id, "port_id": "dhcp-" + net_id[:8],
            "mac_address": "fa:16:3e:50:ff:01",
            "fixed_ips": [{"subnet_id": SUBNET, "ip_address": "10.50.0.2"}],
            "hosts": [{"mac_address": p["mac_address"],
                       "ip_address": p["fixed_ips"][0]["ip_address"]} for p in ports]}]
    return doc


def timed(agent: NetworkAgent) -> float:
    start = time.perf_counter()
    report = agent.reconcile_once()
    took = time.perf_counter() - start
    if not report.ok or report.waiting_devices:
        print(f"    (not converged: {report})")
    return took


def bench_convergence(backend: str, n: int) -> None:
    lab = Lab()
    tmp = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
    tmp.chmod(0o755)
    agent = None
    try:
        host = lab.host("st-bench-h1")
        lab.link_hosts(host, "ul0", "172.31.251.1/24", lab.netns("st-bench-ul"), "ul0", None)
        rundir = lab.ovs(host) if backend == "ovs" else ""
        net_id = str(uuid.uuid4())
        ports = []
        for i in range(n):
            port_id = str(uuid.uuid4())
            tap = tap_name(DEPLOY_PREFIX, port_id)  # as the compute agent names it
            sh("ip", "-n", host, "link", "add", tap, "type", "veth", "peer", "name", f"stbv{i}")
            sh("ip", "-n", host, "link", "set", tap, "up")
            ports.append(port(port_id, net_id, i))
        doc = state_for("h1", net_id, ports, ["172.31.251.1", "172.31.251.2"], dhcp=True)
        agent = make_agent(tmp, "h1", host, "172.31.251.1", backend, rundir, doc)
        first = timed(agent)
        second = timed(agent)
        restarted = make_agent(tmp, "h1", host, "172.31.251.1", backend, rundir, doc)
        restart = timed(restarted)
        print(f"  {backend:<12} {n} ports + DHCP: first pass {first:6.2f} s, "
              f"no-op resync {second:5.2f} s, restart {restart:5.2f} s")
    finally:
        if agent is not None:
            (tmp / "h1.json").write_text(json.dumps({"host": "h1"}))
            agent.reconcile_once()
        lab.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def iperf(lab: Lab, server_ns: str, client_ns: str, ip: str, seconds: int) -> float:
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    lab.pids.append(server.pid)
    time.sleep(0.5)
    try:
        out = nsx(client_ns, "iperf3", "-c", ip, "-t", str(seconds), "-J",
                  timeout=seconds + 30)
        data = json.loads(out)
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.wait(timeout=10)


def bench_throughput(backends: list[str], seconds: int) -> None:
    if not shutil.which("iperf3"):
        print("  iperf3 is not installed: skipped (scripts/install-test-deps.sh installs it)")
        return
    lab = Lab()
    try:
        a, b = lab.netns("st-bench-va"), lab.netns("st-bench-vb")
        lab.link_hosts(a, "eth0", "10.77.0.1/24", b, "eth0", "10.77.0.2/24")
        print(f"  {'plain veth pair':<28} {iperf(lab, b, a, '10.77.0.2', seconds):6.2f} Gbit/s")
    finally:
        lab.cleanup()
    for backend in backends:
        lab = Lab()
        tmp = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
        tmp.chmod(0o755)
        agents: list[NetworkAgent] = []
        try:
            h1, h2 = lab.host("st-bench-h1"), lab.host("st-bench-h2")
            lab.link_hosts(h1, "ul0", "172.31.251.1/24", h2, "ul0", "172.31.251.2/24")
            net_id = str(uuid.uuid4())
            p1, p2 = port(str(uuid.uuid4()), net_id, 1), port(str(uuid.uuid4()), net_id, 2)
            vm1 = lab.vm("st-bench-vm1", h1, p1["id"], p1["mac_address"],
                         tap=tap_name(DEPLOY_PREFIX, p1["id"]))
            vm2 = lab.vm("st-bench-vm2", h2, p2["id"], p2["mac_address"],
                         tap=tap_name(DEPLOY_PREFIX, p2["id"]))
            peers = ["172.31.251.1", "172.31.251.2"]
            for name, ns, ip, ports in (("h1", h1, peers[0], [p1]), ("h2", h2, peers[1], [p2])):
                rundir = lab.ovs(ns) if backend == "ovs" else ""
                doc = state_for(name, net_id, ports, peers, dhcp=False)
                doc["security_groups"][0]["member_ips"] = ["10.50.0.11", "10.50.0.12"]
                agent = make_agent(tmp, name, ns, ip, backend, rundir, doc)
                agent.reconcile_once()
                agents.append(agent)
            for vm, ip in ((vm1, "10.50.0.11"), (vm2, "10.50.0.12")):
                sh("ip", "-n", vm.name, "addr", "add", f"{ip}/16", "dev", "eth0")
                sh("ip", "-n", vm.name, "link", "set", "eth0", "mtu", "1450")
            lab.ping(vm1.name, "10.50.0.12", count=3)
            label = "linuxbridge (kernel VXLAN)" if backend == "linuxbridge" else \
                "ovs netdev (userspace GRE)"
            print(f"  {label:<28} {iperf(lab, vm2.name, vm1.name, '10.50.0.12', seconds):6.2f}"
                  " Gbit/s  (two fake VMs on two hosts, security groups on)")
        finally:
            for i, agent in enumerate(agents, 1):
                (tmp / f"h{i}.json").write_text(json.dumps({"host": f"h{i}"}))
                agent.reconcile_once()
            lab.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--backends", default="linuxbridge,ovs")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    print(f"agent convergence ({args.ports} ports on one host):")
    for backend in backends:
        bench_convergence(backend, args.ports)
    print(f"throughput (iperf3, {args.seconds} s, one TCP stream):")
    bench_throughput(backends, args.seconds)


if __name__ == "__main__":
    main()
