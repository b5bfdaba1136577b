"""Idempotent host helpers: namespaces, links, addresses, bridges, processes.

Every ``ensure_*`` looks at the host first and only acts on a difference, so
calling it on every reconcile cycle is cheap and never disturbs what is
already right (os-vif's ``linux_net`` is the model).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from stratus.agent.runner import CommandError, Runner

LOG = logging.getLogger(__name__)


class IpLib:
    """Wrappers around ``ip``/``bridge``/``sysctl`` for the agent's host."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self._links: dict[str, dict[str, Any]] | None = None
        self._stale: set[str] = set()

    # --- a per-pass view of the host's links ------------------------------------------
    def begin_pass(self) -> None:
        """Forget the cached link table: the next lookup reads the host again."""
        self._links = None
        self._stale.clear()

    def change(self, argv: list[str], devices: list[str], check: bool = True) -> str:
        """Run a command that changes the host links ``devices`` (re-read on next lookup)."""
        self._stale.update(devices)
        return self.runner.run(argv, check=check)

    # --- namespaces -------------------------------------------------------------------
    def list_netns(self, prefix: str) -> list[str]:
        out = self.runner.run(["ip", "netns", "list"], check=False)
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        return sorted(n for n in names if n.startswith(prefix))

    def netns_exists(self, name: str) -> bool:
        return Path("/run/netns", name).exists()

    def ensure_netns(self, name: str) -> bool:
        """Create the namespace (with lo up); returns True if it was created."""
        if self.netns_exists(name):
            return False
        self.runner.run(["ip", "netns", "add", name], wrap=False)
        self.runner.run(["ip", "-n", name, "link", "set", "lo", "up"])
        return True

    def delete_netns(self, name: str) -> None:
        if self.netns_exists(name):
            for pid in self.netns_pids(name):
                stop_pid(pid)
            self.runner.run(["ip", "netns", "delete", name], check=False, wrap=False)

    def netns_pids(self, name: str) -> list[int]:
        out = self.runner.run(["ip", "netns", "pids", name], check=False)
        return [int(p) for p in out.split() if p.isdigit()]

    def sysctl(self, key: str, value: str, netns: str | None = None) -> None:
        """Set a sysctl unless it already has that value."""
        prefix = ["ip", "netns", "exec", netns] if netns else []
        if self.runner.run([*prefix, "sysctl", "-n", key], check=False).strip() == value:
            return
        self.runner.run([*prefix, "sysctl", "-q", "-w", f"{key}={value}"])

    # --- links ------------------------------------------------------------------------
    def _ns(self, netns: str | None) -> list[str]:
        return ["-n", netns] if netns else []

    def link(self, dev: str, netns: str | None = None) -> dict[str, Any] | None:
        """``ip -j -d link show`` of one device, or None when it does not exist."""
        if netns is None:
            if self._links is None:
                self.links()
            assert self._links is not None
            if dev not in self._stale:
                return self._links.get(dev)
        try:
            out = self.runner.run(["ip", *self._ns(netns), "-j", "-d", "link", "show", "dev", dev])
        except CommandError:
            out = ""
        data = json.loads(out or "[]")
        info = data[0] if data else None
        if netns is None and self._links is not None:
            self._stale.discard(dev)
            if info is None:
                self._links.pop(dev, None)
            else:
                self._links[dev] = info
        return info

    def links(self, netns: str | None = None) -> list[dict[str, Any]]:
        """All links of the host (cached for the pass) or of a namespace."""
        if netns is None and self._links is not None and not self._stale:
            return list(self._links.values())
        out = self.runner.run(["ip", *self._ns(netns), "-j", "-d", "link", "show"])
        result = list(json.loads(out or "[]"))
        if netns is None:
            self._links = {link["ifname"]: link for link in result}
            self._stale.clear()
        return result

    def delete_link(self, dev: str, netns: str | None = None) -> None:
        if self.link(dev, netns) is not None:
            self.change(["ip", *self._ns(netns), "link", "delete", "dev", dev], [dev],
                        check=False)

    def ensure_link_settings(
        self,
        dev: str,
        netns: str | None = None,
        mac: str | None = None,
        mtu: int | None = None,
        master: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        """Set MAC, MTU, master and up state where they differ."""
        info = info or self.link(dev, netns)
        if info is None:
            raise CommandError(["ip", "link", "show", dev], 1, f"device {dev} does not exist")
        args: list[str] = []
        if mac and info.get("address", "").lower() != mac.lower():
            args += ["address", mac]
        if mtu and info.get("mtu") != mtu:
            args += ["mtu", str(mtu)]
        if master and info.get("master") != master:
            args += ["master", master]
        if "UP" not in info.get("flags", []):
            args += ["up"]
        if args:
            self.change(["ip", *self._ns(netns), "link", "set", "dev", dev, *args], [dev])

    def ensure_bridge(self, name: str, mtu: int | None = None) -> None:
        info = self.link(name)
        if info is None or info.get("linkinfo", {}).get("info_kind") != "bridge":
            if info is not None:
                self.delete_link(name)
            self.change(["ip", "link", "add", name, "type", "bridge", "forward_delay", "0"],
                        [name])
            info = None
        self.ensure_link_settings(name, mtu=mtu, info=info)

    def ensure_veth(
        self, host_dev: str, ns_dev: str, netns: str, mac: str, mtu: int, master: str | None
    ) -> None:
        """A veth pair: ``host_dev`` on the host (in ``master``), ``ns_dev`` in ``netns``."""
        inner = self.link(ns_dev, netns)
        outer = self.link(host_dev)
        if inner is None or outer is None:
            if outer is not None:
                self.delete_link(host_dev)
            if inner is not None:
                self.delete_link(ns_dev, netns)
            self.change(
                ["ip", "link", "add", host_dev, "type", "veth", "peer", "name", ns_dev,
                 "netns", netns], [host_dev]
            )
            # Checksums computed in software: a userspace OVS datapath forwards
            # frames it read from a packet socket and cannot fill them in.
            self.disable_tx_checksum(ns_dev, netns)
            inner = outer = None
        self.ensure_link_settings(ns_dev, netns, mac=mac, mtu=mtu, info=inner)
        self.ensure_link_settings(host_dev, mtu=mtu, master=master, info=outer)

    def bridge_uplink(self, iface: str, outer: str, inner: str) -> str:
        """The device to attach for a mapped physical interface.

        An ordinary interface is attached itself. A Linux bridge (the external
        bridge ``br-ex`` of an all-in-one, which holds the host's address on the
        external network) cannot be enslaved to another bridge nor read by OVS
        as a port, so it is linked with a veth pair (names given by the caller,
        with its deploy's prefix): ``outer`` sits in the bridge, ``inner`` is
        returned for the network's bridge/br-int.
        """
        info = self.link(iface)
        if info is None or info.get("linkinfo", {}).get("info_kind") != "bridge":
            return iface
        if self.link(outer) is None or self.link(inner) is None:
            self.delete_link(outer)
            self.delete_link(inner)
            self.change(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
                        [outer, inner])
            self.disable_tx_checksum(outer)
            self.disable_tx_checksum(inner)
        self.ensure_link_settings(outer, master=iface)
        self.ensure_link_settings(inner)
        return inner

    def remove_bridge_uplink(self, outer: str, inner: str) -> None:
        """Undo :meth:`bridge_uplink` (the veth pair goes with either end)."""
        self.delete_link(outer)
        self.delete_link(inner)

    def disable_tx_checksum(self, dev: str, netns: str | None = None) -> None:
        argv = ["ethtool", "-K", dev, "tx", "off"]
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        self.runner.run(argv, check=False)

    # --- addresses and routes ---------------------------------------------------------
    def addresses(self, dev: str, netns: str | None = None) -> set[str]:
        out = self.runner.run(["ip", *self._ns(netns), "-j", "-4", "addr", "show", "dev", dev])
        result = set()
        for entry in json.loads(out or "[]"):
            for addr in entry.get("addr_info", []):
                result.add(f"{addr['local']}/{addr['prefixlen']}")
        return result

    def ensure_addresses(self, dev: str, wanted: set[str], netns: str | None = None) -> None:
        have = self.addresses(dev, netns)
        for cidr in sorted(have - wanted):
            self.runner.run(["ip", *self._ns(netns), "addr", "del", cidr, "dev", dev])
        for cidr in sorted(wanted - have):
            self.runner.run(["ip", *self._ns(netns), "addr", "add", cidr, "dev", dev])

    def ensure_default_route(self, gateway: str | None, dev: str, netns: str) -> None:
        out = self.runner.run(["ip", "-n", netns, "-j", "-4", "route", "show", "default"])
        routes = json.loads(out or "[]")
        have = routes[0].get("gateway") if routes else None
        if have == gateway:
            return
        if gateway:
            self.runner.run(
                ["ip", "-n", netns, "route", "replace", "default", "via", gateway, "dev", dev]
            )
        else:
            self.runner.run(["ip", "-n", netns, "route", "del", "default"], check=False)

    # --- forwarding database (VXLAN head-end replication) ------------------------------
    def fdb_flood_peers(self, dev: str) -> set[str]:
        out = self.runner.run(["bridge", "-j", "fdb", "show", "dev", dev])
        return {
            e["dst"] for e in json.loads(out or "[]")
            if e.get("mac") == "00:00:00:00:00:00" and "dst" in e
        }

    def ensure_fdb_flood_peers(self, dev: str, peers: set[str]) -> None:
        have = self.fdb_flood_peers(dev)
        for peer in sorted(have - peers):
            self.runner.run(
                ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", dev, "dst", peer], check=False
            )
        for peer in sorted(peers - have):
            self.runner.run(
                ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", dev, "dst", peer]
            )


# --- namespaces by identity (a recreated namespace has the same name, not the same id) --
def netns_identity(path: str | Path) -> str | None:
    """``<device>:<inode>`` of a namespace file (``/run/netns/<name>``, or
    ``/proc/<pid>/ns/net`` for the namespace a process is in); None when absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def named_netns_identity(name: str) -> str | None:
    """The identity of the named namespace as it is now (None: there is none)."""
    return netns_identity(Path("/run/netns", name))


def process_netns_identity(pid: int) -> str | None:
    """The identity of the network namespace process ``pid`` is in."""
    return netns_identity(f"/proc/{pid}/ns/net")


# --- processes (always by pid, never by name) ----------------------------------------
def read_pidfile(path: str | Path) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def pid_running(pid: int | None, marker: str | None = None) -> bool:
    """True when ``pid`` is alive (not a zombie) and its command line contains ``marker``."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return marker is None or marker in cmdline


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL one process."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_running(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
