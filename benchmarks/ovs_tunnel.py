"""OVS userspace GRE: where the time goes, and what the tunnel gives with each remedy.

Two fake hosts (network namespaces, each its own ovs-vswitchd with ``datapath_type=netdev``,
driven by the real network agent as in benchmarks/network_agent.py), one fake VM each,
iperf3 (one TCP stream) from VM to VM over the GRE tunnel, in the variants of
``VARIANTS`` (``--variants`` picks some by key):

* ``default``: underlay MTU 1500, tenant MTU 1458 (1500 - [agent] gre_overhead);
* ``jumbo``: a jumbo underlay (``[network] physical_mtu = 9000``, tenant MTU 8958): the
  userspace datapath's cost is per packet (an AF_PACKET/tap read and write, a flow lookup,
  the GRE push/pop per packet, no segmentation offload), so fewer, larger packets;
* ``txoff``: the VMs compute their own checksums; ``tso``:
  ``other_config:userspace-tso-enable=true`` on both vswitchds;
* ``sockbuf`` (``sockbuf-1m``, ``jumbo-sockbuf``): every packet socket of both vswitchds
  (the userspace datapath reads each 'system' port through one) given a 4 MiB (1 MiB)
  receive and send buffer once the ports exist, by :func:`raise_socket_buffers`, instead
  of the kernel's default 212992 bytes;

next to kernel linuxbridge VXLAN (``lb``, the anchor). For each run it prints Gbit/s, TCP
retransmits and, per host, ovs-vswitchd's CPU share, the drops the kernel counted at each of
its packet sockets (``ss -0 -m``: a full receive buffer; OVS's port statistics never show
these) and its log lines about failed sends; then the median ratio to the default.

Figures, not pass/fail; two shared cores, so the iperf3 ends compete with vswitchd. Root,
OVS and iperf3 (``make test-deps``). Host objects: namespaces ``<prefix>-ovs-*`` (the
deploy prefix ``--prefix``, default ``zbn``, also names the bridges, taps and nft tables),
a private ovsdb-server/ovs-vswitchd per fake host (stopped by pid; another Open vSwitch on
the machine is not touched), all removed at the end of each run. From the repository root:

    .venv/bin/python benchmarks/ovs_tunnel.py [--seconds 5] [--variants default,sockbuf]
        [--rounds 3] [--prefix zbn]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from network_agent import port, state_for

from netlab import Lab, nsx, sh
from stratus.agent.network.agent import build_agent
from stratus.agent.network.reconcile import NetworkAgent
from stratus.common.config import Config
from stratus.contracts.network import tap_name


def make_agent(tmp: Path, name: str, ns: str, ip: str, backend: str, rundir: str,
               state: dict[str, Any], prefix: str) -> NetworkAgent:
    """The network agent of one fake host (as benchmarks/network_agent.py makes it); the
    tenant MTU comes with the network in its state (the API derives it from physical_mtu)."""
    (tmp / f"{name}.json").write_text(json.dumps(state))
    conf = tmp / f"{name}.conf"
    conf.write_text(
        "[agent]\n"
        f"host = {name}\nl2_backend = {backend}\nunderlay_interface = ul0\n"
        f"underlay_ip = {ip}\ntunnel_type = gre\ndatapath_type = netdev\n"
        f"ovs_rundir = {rundir}\nstate_dir = {tmp / name}\n"
        f"network_state_url = {tmp / name}.json\nmetadata_shared_secret = bench\n"
        f"host_netns = {ns}\nnetns_prefix = {ns}-\nnft_prefix = {prefix}_test_\n"
        f"[DEFAULT]\ndeploy_prefix = {prefix}\n")
    agent, _, _ = build_agent(Config.load(str(conf)))
    return agent


def iperf(lab: Lab, server_ns: str, client_ns: str, ip: str, seconds: int
          ) -> tuple[float, int]:
    """(Gbit/s received, TCP retransmits) of one iperf3 stream."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    lab.pids.append(server.pid)
    time.sleep(0.5)
    try:
        out = nsx(client_ns, "iperf3", "-c", ip, "-t", str(seconds), "-J",
                  timeout=seconds + 30, check=False)
        data = json.loads(out)
        if "error" in data:
            raise RuntimeError(f"iperf3: {data['error']}")
        end = data["end"]
        return (float(end["sum_received"]["bits_per_second"]) / 1e9,
                int(end["sum_sent"].get("retransmits", 0)))
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Variant:
    """One configuration of the two fake hosts and their VMs."""

    key: str                # its name for --variants
    label: str
    backend: str = "ovs"
    mtu: int = 1500         # the underlay's; the tenant MTU leaves room for the tunnel
    tso: bool = False       # other_config:userspace-tso-enable=true on both vswitchds
    csum_off: bool = False  # the fake VMs compute their own checksums (ethtool -K eth0 tx off)
    sockbuf: int = 0        # receive/send buffer of every packet socket of both vswitchds
    #                         (raise_socket_buffers; 0: the kernel's default, 212992)


VARIANTS = (
    Variant("lb", "linuxbridge VXLAN, mtu 1500", backend="linuxbridge"),
    Variant("default", "ovs GRE, mtu 1500 (default)"),
    Variant("txoff", "ovs GRE, VMs checksum (tx off)", csum_off=True),
    Variant("jumbo", "ovs GRE, mtu 9000 underlay", mtu=9000),
    Variant("jumbo-txoff", "ovs GRE, mtu 9000, tx off", mtu=9000, csum_off=True),
    Variant("tso", "ovs GRE, mtu 1500, userspace TSO", tso=True),
    Variant("sockbuf", "ovs GRE, mtu 1500, 4 MiB socket buffers", sockbuf=4 << 20),
    Variant("sockbuf-1m", "ovs GRE, mtu 1500, 1 MiB socket buffers", sockbuf=1 << 20),
    Variant("jumbo-sockbuf", "ovs GRE, mtu 9000, 4 MiB socket buffers", mtu=9000,
            sockbuf=4 << 20),
)


@dataclass
class Result:
    gbit: float
    retransmits: int
    cpu: dict[str, float] = field(default_factory=dict)  # host -> vswitchd's share of a core
    # host -> {interface: packets the kernel dropped at that vswitchd's AF_PACKET socket
    # because its receive buffer was full (ss's skmem "d"); "*" is the unbound send socket}
    socket_drops: dict[str, dict[str, int]] = field(default_factory=dict)
    send_errors: dict[str, int] = field(default_factory=dict)  # host -> vswitchd log lines


def packet_socket_drops(ns: str, pid: int) -> dict[str, int]:
    """Drops counted on each AF_PACKET socket of ``pid`` in ``ns``, by bound interface.

    OVS's userspace datapath reads a 'system' port through a packet socket; when it does
    not read fast enough the kernel drops at the socket (sk_drops), after the interface
    counted the packet as received, and OVS's port statistics (the interface's) never
    show it."""
    out = nsx(ns, "ss", "-0", "-a", "-m", "-n", "-p", check=False)
    drops: dict[str, int] = {}
    for entry in re.split(r"\n(?=\S)", out):
        if f"pid={pid}," not in entry:
            continue
        fields = entry.split()
        iface = fields[4].rpartition(":")[2] if len(fields) > 4 else "?"
        found = re.search(r"skmem:\([^)]*\bd(\d+)", entry)
        if found:
            drops[iface] = drops.get(iface, 0) + int(found.group(1))
    return drops


def raise_socket_buffers(pid: int, size: int) -> int:
    """Give every AF_PACKET socket of ``pid`` a receive and send buffer of ``size`` bytes;
    the number of sockets changed.

    OVS sets no buffer size on them, so they get ``net.core.rmem_default`` (212992), and
    that sysctl cannot be written in a child network namespace here (EINVAL), nor is the
    host's ours to change. So: a duplicate of each socket through pidfd_getfd(2) (Linux
    5.6+, root) and SO_RCVBUFFORCE/SO_SNDBUFFORCE on it, which is the same socket."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd_getfd = 438  # x86_64 and the generic table
    packet_inodes = set()
    for line in Path(f"/proc/{pid}/net/packet").read_text().splitlines()[1:]:
        packet_inodes.add(line.split()[-1])
    pidfd = os.pidfd_open(pid)
    changed = 0
    try:
        for fd_path in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd_path)
            except OSError:
                continue
            if not (target.startswith("socket:[") and target[8:-1] in packet_inodes):
                continue
            dup = libc.syscall(pidfd_getfd, pidfd, int(fd_path.name), 0)
            if dup < 0:
                raise OSError(ctypes.get_errno(), f"pidfd_getfd({pid}, {fd_path.name})")
            try:
                sock = socket.socket(fileno=dup)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, 33, size)  # SO_RCVBUFFORCE
                    sock.setsockopt(socket.SOL_SOCKET, 32, size)  # SO_SNDBUFFORCE
                finally:
                    sock.detach()
            finally:
                os.close(dup)
            changed += 1
    finally:
        os.close(pidfd)
    return changed


def log_send_errors(rundir: str) -> int:
    """Lines of the vswitchd's log about packets it failed to send or dropped on receive."""
    log = Path(rundir) / "ovs-vswitchd.log"
    if not log.exists():
        return 0
    return sum(("error sending" in line or "Dropped packet" in line)
               for line in log.read_text(errors="replace").splitlines())


def show_counters(ns: str, rundir: str) -> str:
    """What OVS and the kernel count on one fake host (``--show-counters``)."""
    ctl = ["ovs-appctl", "-t", f"{rundir}/ovs-vswitchd.ctl"]
    out = []
    for argv in ([*ctl, "dpctl/show", "-s"], [*ctl, "dpif-netdev/pmd-stats-show"],
                 [*ctl, "coverage/show"], ["ip", "netns", "exec", ns, "ip", "-s", "link"],
                 ["ip", "netns", "exec", ns, "ss", "-0", "-a", "-m", "-n", "-p"]):
        out.append("$ " + " ".join(argv[-4:]) + "\n" + sh(*argv, check=False))
    return "\n".join(out)


def run(v: Variant, seconds: int, prefix: str, counters: bool = False) -> Result:
    """One variant on two new fake hosts, removed again at the end; ``counters``: print
    OVS's and the kernel's counters of both hosts after the iperf3 run."""
    lab = Lab(tag=prefix)
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-ovs-"))
    tmp.chmod(0o755)
    agents: list[NetworkAgent] = []
    try:
        tag = uuid.uuid4().hex[:4]
        h1, h2 = lab.host(f"{prefix}-ovs-h1{tag}"), lab.host(f"{prefix}-ovs-h2{tag}")
        lab.link_hosts(h1, "ul0", "172.31.252.1/24", h2, "ul0", "172.31.252.2/24")
        for ns in (h1, h2):
            sh("ip", "-n", ns, "link", "set", "ul0", "mtu", str(v.mtu))
        net_id = str(uuid.uuid4())
        p1, p2 = port(str(uuid.uuid4()), net_id, 1), port(str(uuid.uuid4()), net_id, 2)
        # the tap named as the compute agent names it (deploy prefix = the benchmark's)
        vm1 = lab.vm(f"{prefix}-ovs-v1{tag}", h1, p1["id"], p1["mac_address"],
                     tap=tap_name(prefix, p1["id"]))
        vm2 = lab.vm(f"{prefix}-ovs-v2{tag}", h2, p2["id"], p2["mac_address"],
                     tap=tap_name(prefix, p2["id"]))
        peers = ["172.31.252.1", "172.31.252.2"]
        rundirs: dict[str, str] = {}
        tenant_mtu = v.mtu - 42 if v.backend == "ovs" else v.mtu - 50
        for name, ns, ip, ports in (("h1", h1, peers[0], [p1]), ("h2", h2, peers[1], [p2])):
            rundir = lab.ovs(ns) if v.backend == "ovs" else ""
            rundirs[name] = rundir
            if v.tso:
                subprocess.run(["ovs-vsctl", "set", "Open_vSwitch", ".",
                                "other_config:userspace-tso-enable=true"],
                               env={**os.environ, "OVS_RUNDIR": rundir}, check=True, timeout=30)
            doc = state_for(name, net_id, ports, peers, dhcp=False)
            doc["networks"][0]["mtu"] = tenant_mtu
            doc["security_groups"][0]["member_ips"] = ["10.50.0.11", "10.50.0.12"]
            agent = make_agent(tmp, name, ns, ip, v.backend, rundir, doc, prefix)
            agent.reconcile_once()
            agents.append(agent)
        for vm, ip in ((vm1, "10.50.0.11"), (vm2, "10.50.0.12")):
            sh("ip", "-n", vm.name, "addr", "add", f"{ip}/16", "dev", "eth0")
            sh("ip", "-n", vm.name, "link", "set", "eth0", "mtu", str(tenant_mtu))
            if v.csum_off:
                nsx(vm.name, "ethtool", "-K", "eth0", "tx", "off")
        lab.ping(vm1.name, "10.50.0.12", count=3)
        pids = {name: int((Path(d) / "ovs-vswitchd.pid").read_text())
                for name, d in rundirs.items() if d}
        if v.sockbuf:
            for pid in pids.values():
                raise_socket_buffers(pid, v.sockbuf)
        c0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        gbit, retrans = iperf(lab, vm2.name, vm1.name, "10.50.0.12", seconds)
        took = time.monotonic() - t0
        result = Result(gbit, retrans)
        hosts = {"h1": h1, "h2": h2}
        for name, pid in pids.items():
            ns = hosts[name]
            result.cpu[name] = (cpu_seconds(pid) - c0[name]) / took
            result.socket_drops[name] = packet_socket_drops(ns, pid)
            result.send_errors[name] = log_send_errors(rundirs[name])
            if counters:
                print(f"--- {name} ({ns}) ---\n{show_counters(ns, rundirs[name])}")
        return result
    finally:
        for i, agent in enumerate(agents, 1):
            (tmp / f"h{i}.json").write_text(json.dumps({"host": f"h{i}"}))
            agent.reconcile_once()
        lab.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def describe(r: Result) -> str:
    """vswitchd's CPU and the drops nobody else counts, per host (h1 sends, h2 receives)."""
    parts = []
    for name in r.cpu:
        drops = ",".join(f"{i}:{n}" for i, n in sorted(r.socket_drops[name].items()) if n)
        parts.append(f"{name}: vswitchd {r.cpu[name] * 100:.0f}% of a core, socket drops "
                     f"{drops or 0}, log send/receive errors {r.send_errors[name]}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--variants", default=",".join(v.key for v in VARIANTS),
                        help="comma-separated, of: " + ", ".join(v.key for v in VARIANTS))
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the chosen variants this many times, alternating")
    parser.add_argument("--prefix", default="zbn",
                        help="deploy prefix and start of every host object's name "
                             "(^[a-z][a-z0-9]{0,3}$)")
    parser.add_argument("--show-counters", action="store_true",
                        help="print OVS's and the kernel's counters of both hosts after "
                             "each OVS run (datapath ports, pmd-stats, coverage, links, "
                             "packet sockets)")
    args = parser.parse_args()
    if not shutil.which("iperf3"):
        print("iperf3 is not installed: nothing measured (scripts/install-test-deps.sh)")
        return
    if not re.fullmatch(r"[a-z][a-z0-9]{0,3}", args.prefix):
        parser.error(f"--prefix {args.prefix!r}: 1-4 lowercase letters or digits, "
                     "starting with a letter")
    by_key = {v.key: v for v in VARIANTS}
    chosen = [k.strip() for k in args.variants.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in by_key]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(by_key)}")
    print(f"iperf3, one TCP stream, {args.seconds} s, VM to VM across two fake hosts "
          "(h1 sends, h2 receives)")
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for key in chosen:
            v = by_key[key]
            try:
                r = run(v, args.seconds, args.prefix, args.show_counters)
            except Exception as exc:  # a variant this OVS cannot do: say so, go on
                print(f"  {v.label:<40} failed: {str(exc).strip()[:300]}")
                continue
            results.setdefault(v.label, []).append(r.gbit)
            print(f"  {v.label:<40} {r.gbit:7.2f} Gbit/s  {r.retransmits:6d} retransmits"
                  + (f"\n      {describe(r)}" if r.cpu else ""), flush=True)
    base = results.get(by_key["default"].label)
    if base:
        print("\nmedian against the default OVS GRE (the issue's target: at least 5x)")
        for label, gbits in results.items():
            print(f"  {label:<40} {statistics.median(gbits):7.2f} Gbit/s "
                  f"{statistics.median(gbits) / statistics.median(base):6.2f}x")


if __name__ == "__main__":
    main()
