"""``stratus-network-agent --cleanup-legacy``: remove what a release before deploy
prefixes made on this host, once, when upgrading it.

The agent itself never touches an unprefixed object (it may be another deploy's). An
upgrade in place leaves the earlier release's objects running beside the new ones:
its dnsmasq keeps answering on the old bridge, its router namespace keeps the
gateway address on the external network, and its ``vxlan-<vni>`` device holds the
VNI the new ``<prefix>-vx<vni>`` device needs. The operator (the role, on upgrade)
runs this once: it removes exactly the earlier release's fixed names:

* namespaces ``qdhcp-<id>`` and ``qrouter-<id>`` (their processes stopped by pid,
  from ``ip netns pids``), with the veths in them;
* dnsmasq and metadata proxies of the old state layout, by their pid files
  (``<state_dir>/dhcp/<network id>/pid``, ``<state_dir>/metadata/qdhcp-*.pid``,
  checked against their command lines), and those files;
* Linux bridges ``brq`` + 11 characters and ``qbr`` + 11, the ``vxlan-<vni>`` devices
  in them, the ``qvb``/``qvo`` veths, and the ``phy-``/``int-`` links of the mapped
  bridges; instance taps (``tap`` + 11, the compute agent's) are only detached;
* nftables tables ``inet stratus_sg`` and ``bridge stratus_antispoof`` (``<nft_prefix>sg``);
* OVS bridges ``br-tun`` and ``br-int`` when they carry the earlier agent's marks
  (``stratus-lvlan-<net>`` keys, or ``stratus-net`` on a port).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from stratus.agent.ip_lib import IpLib, pid_running, read_pidfile, stop_pid
from stratus.agent.network import nft

LOG = logging.getLogger(__name__)
NETNS = re.compile(r"q(dhcp|router)-[0-9a-f-]{36}")
BRIDGES = re.compile(r"^(brq|qbr)[0-9a-f-]{11}$")
VETHS = re.compile(r"^(qvb|qvo)[0-9a-f-]{11}$")
VXLAN = re.compile(r"^vxlan-[0-9]+$")
NETWORK_DIR = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def cleanup_legacy(ip: IpLib, state_dir: str, mapped: list[str], netns_prefix: str = "",
                   nft_prefix: str = "stratus_") -> list[str]:
    """Remove the earlier release's objects (module docstring); returns what went.
    ``netns_prefix`` and ``nft_prefix`` are the ``[agent]`` settings, which that release
    put before its namespace and table names as well."""
    gone: list[str] = []
    state = Path(state_dir)
    dhcp_dirs = [d for d in (state / "dhcp").glob("*") if NETWORK_DIR.match(d.name)]
    proxies = {p.with_suffix("") for p in (state / "metadata").glob(f"{netns_prefix}q*.*")
               if NETNS.fullmatch(p.with_suffix("").name.removeprefix(netns_prefix))}
    for pidfile, marker in [*((d / "pid", d / "pid") for d in dhcp_dirs),
                            *((p.with_suffix(".pid"), p.with_suffix(".json")) for p in proxies)]:
        pid = read_pidfile(pidfile)
        if pid_running(pid, str(marker)):
            assert pid is not None
            stop_pid(pid)
            gone.append(f"process {pid} ({marker})")
    for d in dhcp_dirs:
        shutil.rmtree(d, ignore_errors=True)
        gone.append(f"state {d}")
    for p in proxies:
        for suffix in (".json", ".pid", ".log"):
            p.with_suffix(suffix).unlink(missing_ok=True)
        gone.append(f"state {p}.*")
    for ns in ip.list_netns(f"{netns_prefix}q"):
        if NETNS.fullmatch(ns.removeprefix(netns_prefix)):
            ip.delete_netns(ns)
            gone.append(f"namespace {ns}")
    links = ip.links()
    for link in links:
        name = link["ifname"]
        if VXLAN.match(name) or VETHS.match(name) or name in {
                f"{end}-{iface}"[:15] for iface in mapped for end in ("phy", "int")}:
            ip.delete_link(name)
            gone.append(f"device {name}")
    for link in links:
        name = link["ifname"]
        if BRIDGES.match(name) and link.get("linkinfo", {}).get("info_kind") == "bridge":
            ip.delete_link(name)  # its taps (the compute agent's) stay, detached
            gone.append(f"bridge {name}")
    for family, table in (("inet", f"{nft_prefix}sg"), ("bridge", f"{nft_prefix}antispoof")):
        if nft.table_hash(ip.runner, family, table) is not None:
            nft.delete_table(ip.runner, family, table)
            gone.append(f"nft table {family} {table}")
    for bridge in ("br-tun", "br-int"):
        if _legacy_ovs_bridge(ip, bridge):
            ip.runner.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", bridge])
            gone.append(f"OVS bridge {bridge}")
    for what in gone:
        LOG.info("cleanup-legacy: removed %s", what)
    return gone


def _legacy_ovs_bridge(ip: IpLib, bridge: str) -> bool:
    """br-int/br-tun of the earlier agent: its keys on the bridge, or its ports."""
    try:
        if not ip.runner.ok(["ovs-vsctl", "br-exists", bridge]):
            return False
    except OSError:  # no Open vSwitch on this host
        return False
    ids = ip.runner.run(["ovs-vsctl", "--timeout=10", "br-get-external-id", bridge])
    if any(line.startswith(("stratus-lvlan-", "stratus-flows-")) for line in ids.splitlines()):
        return True
    out = ip.runner.run(["ovs-vsctl", "--timeout=10", "--format=json",
                         "--columns=name,external_ids", "find", "Port"], check=False)
    ports = set(ip.runner.run(["ovs-vsctl", "--timeout=10", "list-ports", bridge]).split())
    for name, ext in json.loads(out or "{}").get("data", []):
        keys = {k for k, _ in ext[1]} if isinstance(ext, list) and ext[:1] == ["map"] else set()
        if name in ports and "stratus-net" in keys and "stratus-deploy" not in keys:
            return True
    return False
