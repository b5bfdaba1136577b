"""L2 backend ``ovs``: Open vSwitch with ``br-int`` and ``br-tun``, as Neutron's OVS agent.

The bridges and ports carry the deploy's prefix (``st-br-int``, ``st-br-tun``,
``st-br-phy``, ``st-patch-tun``; :mod:`stratus.agent.network.naming`) and every port
and bridge we add the marks ``external_ids:stratus-deploy=<prefix>`` and
``stratus-host=<host>``: only rows with both are listed, changed or removed.

* ``br-int``: a normal learning switch; every port of a network carries the
  network's *local* VLAN tag (allocated per host, remembered in br-int's
  ``external_ids`` as ``stratus-<prefix>-lvlan-<network id>``).
* ``br-tun`` (fail mode secure): one GRE or VXLAN port per other host
  (``<prefix>-vx<peer ip in hex>``, ``options:key=flow``), joined to br-int by a
  patch pair. Per network two flows, cookie ``0x57AA0000 + local vlan``:
  from br-int with that VLAN: strip it, set the tunnel key to the
  segmentation id and flood to every tunnel; from a tunnel with that key:
  tag with the local VLAN and send to br-int.
* Flat (provider) networks: the mapped interface is an access port of br-int
  with the network's local VLAN.
* ``datapath_type``: ``system`` with the kernel module, ``netdev`` (userspace)
  without; ``auto`` picks by ``/sys/module/openvswitch``. In netdev mode the
  tunnel endpoint IP must sit on a netdev bridge (``br-phy`` pattern): with
  ``underlay_interface`` set, the driver puts that interface into ``br-phy``
  and moves the underlay IP onto ``br-phy``, with the routes through the interface
  (a host with one NIC keeps its default route); ``teardown`` moves both back and
  removes ``br-phy``.
* Instance ports use the hybrid plug (``<prefix>-qb`` Linux bridge + ``<prefix>-qv``/
  ``<prefix>-qo`` veth into br-int) so that the nftables security groups see their
  traffic.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from pathlib import Path
from typing import Any

from stratus.agent.ip_lib import IpLib
from stratus.agent.network import naming as kinds
from stratus.agent.network.drivers.base import DriverError, L2Driver
from stratus.agent.network.naming import Naming
from stratus.agent.runner import CommandError
from stratus.contracts.network import Network

LOG = logging.getLogger(__name__)
COOKIE_BASE = 0x57AA0000


def _ovs_map(value: Any) -> dict[str, str]:
    """An OVSDB map from ``--format=json`` (["map", [[k, v], ...]])."""
    if isinstance(value, list) and value and value[0] == "map":
        return {k: v for k, v in value[1]}
    return {}


class OvsDriver(L2Driver):
    def __init__(
        self,
        ip: IpLib,
        local_ip: str,
        tunnel_type: str = "vxlan",
        datapath_type: str = "auto",
        underlay_interface: str | None = None,
        physical_bridge_mappings: dict[str, str] | None = None,
        naming: Naming | None = None,
    ):
        if tunnel_type not in ("vxlan", "gre"):
            raise ValueError(f"tunnel_type {tunnel_type!r} is not vxlan or gre")
        self.naming = naming = naming or Naming()
        self.ip = ip
        self.run = ip.runner.run
        self.local_ip = local_ip
        self.tunnel_type = tunnel_type
        self.datapath = datapath_type
        if datapath_type == "auto":
            self.datapath = "system" if Path("/sys/module/openvswitch").exists() else "netdev"
        self.underlay_interface = underlay_interface
        self.mappings = physical_bridge_mappings or {}
        self.br_int, self.br_tun, self.br_phy = (
            naming.ovs_bridge(role) for role in ("int", "tun", "phy"))
        self.patch_int, self.patch_tun = naming.patch_port("int"), naming.patch_port("tun")
        self.marks = [f"external_ids:{k}={v}" for k, v in naming.ovs_marks.items()]
        self._ports: list[dict[str, Any]] | None = None  # per-pass caches
        self._vlans: dict[str, int] | None = None
        self._foreign_vlans: set[int] = set()
        self._tun_ids: dict[str, str] | None = None
        self._flow_dump: str | None = None

    def begin_pass(self) -> None:
        self.ip.begin_pass()
        self._ports = None
        self._vlans = None
        self._tun_ids = None
        self._flow_dump = None

    # --- helpers ----------------------------------------------------------------------
    def vsctl(self, *args: str) -> str:
        return self.run(["ovs-vsctl", "--timeout=10", *args]).strip()

    def ofctl(self, *args: str, input: str | None = None) -> str:
        return self.run(["ovs-ofctl", *args], input=input)

    def _ensure_ovs_bridge(self, name: str, fail_mode: str | None = None) -> None:
        exists = self.ip.runner.ok(["ovs-vsctl", "br-exists", name])
        if not exists:
            args = ["--may-exist", "add-br", name, "--", "set", "Bridge", name,
                    f"datapath_type={self.datapath}", *self.marks]
            if fail_mode:
                args += [f"fail_mode={fail_mode}"]
            self.vsctl(*args)
            return
        have = self.vsctl("get", "Bridge", name, "datapath_type").strip('"')
        if have != self.datapath:
            self.vsctl("set", "Bridge", name, f"datapath_type={self.datapath}")
        if fail_mode and self.vsctl("get", "Bridge", name, "fail_mode") != fail_mode:
            self.vsctl("set", "Bridge", name, f"fail_mode={fail_mode}")

    def _ofport(self, name: str) -> int:
        value = self.vsctl("get", "Interface", name, "ofport")
        port = int(value) if value.lstrip("-").isdigit() else -1
        if port <= 0:
            raise DriverError(f"OVS port {name} has no ofport yet", temporary=True)
        return port

    def _find_ports(self) -> list[dict[str, Any]]:
        if self._ports is not None:
            return self._ports
        try:
            out = self.vsctl("--format=json", "--columns=name,tag,external_ids", "find", "Port")
        except CommandError:
            if self.installed():
                raise
            return []  # nothing can be plugged into an Open vSwitch that is not there
        data = json.loads(out or "{}")
        rows = []
        for name, tag, ext in data.get("data", []):
            ids = _ovs_map(ext)
            if self.naming.owns_ovs(ids):  # another deploy's or host's port is not ours
                rows.append({"name": name, "tag": tag if isinstance(tag, int) else None,
                             "external_ids": ids})
        self._ports = rows
        return rows

    def _lvlans(self) -> dict[str, int]:
        if self._vlans is not None:
            return self._vlans
        try:
            out = self.vsctl("br-get-external-id", self.br_int)
        except CommandError:
            if self.installed():
                raise
            return {}
        result = {}
        prefix = self.naming.lvlan_key
        self._foreign_vlans = set()
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key.startswith(prefix) and value.isdigit():
                result[key[len(prefix):]] = int(value)
            elif "-lvlan-" in key and value.isdigit():  # another deploy's on a shared bridge
                self._foreign_vlans.add(int(value))
        self._vlans = result
        return result

    def local_vlan(self, network_id: str) -> int:
        vlans = self._lvlans()
        if network_id in vlans:
            return vlans[network_id]
        used = set(vlans.values()) | self._foreign_vlans
        vlan = next(v for v in range(1, 4095) if v not in used)
        self.vsctl("br-set-external-id", self.br_int, self.naming.lvlan_key + network_id,
                   str(vlan))
        vlans[network_id] = vlan
        return vlan

    # --- interface --------------------------------------------------------------------
    def ensure_ready(self) -> None:
        self.ip.sysctl("net.bridge.bridge-nf-call-iptables", "1")
        self.ip.sysctl("net.bridge.bridge-nf-call-ip6tables", "1")  # IPv6 groups
        self._ensure_ovs_bridge(self.br_int)
        self._ensure_ovs_bridge(self.br_tun, fail_mode="secure")
        self.vsctl("--may-exist", "add-port", self.br_int, self.patch_tun, "--", "set",
                   "Interface", self.patch_tun, "type=patch", f"options:peer={self.patch_int}")
        self.vsctl("--may-exist", "add-port", self.br_tun, self.patch_int, "--", "set",
                   "Interface", self.patch_int, "type=patch", f"options:peer={self.patch_tun}")
        self.begin_pass()  # the bridges' internal devices just appeared
        if self.datapath == "netdev" and self.underlay_interface:
            self._ensure_br_phy()
            self.begin_pass()

    def installed(self) -> bool:
        """Whether Open vSwitch is installed on this host (without it none of its objects
        exist): asked only after an ``ovs-vsctl`` failed."""
        try:
            return self.ip.runner.ok(["ovs-vsctl", "--version"])
        except OSError:
            return False

    def _unreachable(self) -> str | None:
        """Why Open vSwitch cannot be asked (not running, or not installed: then the
        reason is ``not installed``), or None when it answers."""
        try:
            self.run(["ovs-vsctl", "--timeout=10", "show"])
        except CommandError as exc:
            return (exc.stderr or str(exc)) if self.installed() else "not installed"
        return None

    def teardown(self) -> None:
        reason = self._unreachable()
        if reason is not None:  # the host side goes; OVS's own rows only if it answers
            removed = self._teardown_host_devices()
            if reason != "not installed":
                raise DriverError(
                    f"Open vSwitch does not answer ({reason}): removed the host devices "
                    f"({', '.join(removed) or 'none'}), but not this deploy's OVS bridges "
                    f"({self.br_int}, {self.br_tun}) and ports; start Open vSwitch and run "
                    "the cleanup again")
            LOG.info("Open vSwitch is not installed: no OVS bridge or port to remove; "
                     "removed the host devices %s", ", ".join(removed) or "(none)")
            return
        for iface in self.mappings.values():
            outer, inner = self.naming.uplink(iface)
            if any(p["name"] == inner for p in self._find_ports()):
                self.vsctl("--if-exists", "del-port", self.br_int, inner)
            self.ip.remove_bridge_uplink(outer, inner)
        if self.underlay_interface and self.ip.link(self.br_phy) is not None:
            self._release_br_phy()
        for bridge in (self.br_tun, self.br_int, self.br_phy):
            if self._owned_bridge(bridge):
                self.vsctl("--if-exists", "del-br", bridge)
        self.begin_pass()

    def _teardown_host_devices(self) -> list[str]:
        """Our Linux devices around OVS (the uplinks' veths, the hybrid plugs' bridges and
        veths), by their names: what a cleanup removes while OVS cannot be asked."""
        removed = []
        for iface in self.mappings.values():
            for dev in self.naming.uplink(iface):
                if self.ip.link(dev) is not None:
                    self.ip.delete_link(dev)
                    removed.append(dev)
        kinds_ = (kinds.HYBRID_OVS, kinds.HYBRID_VETH, kinds.HYBRID_BRIDGE)
        for link in self.ip.links():
            name = link["ifname"]
            if any(self.naming.owns(name, k) for k in kinds_) and self.ip.link(name):
                self.ip.delete_link(name)
                removed.append(name)
        self.begin_pass()
        return removed

    def _owned_bridge(self, name: str) -> bool:
        """An existing bridge with our marks and no port but ours (a bridge of another
        deploy or host, or one still holding others' ports, is left alone)."""
        if not self.ip.runner.ok(["ovs-vsctl", "br-exists", name]):
            return False
        out = self.vsctl("br-get-external-id", name)
        ids = dict(line.partition("=")[::2] for line in out.splitlines())
        if not self.naming.owns_ovs(ids):
            LOG.info("leaving OVS bridge %s: it is not marked as ours", name)
            return False
        self._ports = None
        mine = {p["name"] for p in self._find_ports()} | {self.patch_int, self.patch_tun}
        others = sorted(set(self.vsctl("list-ports", name).split()) - mine)
        if others:
            LOG.warning("leaving OVS bridge %s: it holds ports that are not ours: %s", name,
                        ", ".join(others))
            return False
        return True

    def _ensure_br_phy(self) -> None:
        """Userspace tunnels route through a netdev bridge holding the underlay IP."""
        assert self.underlay_interface
        self._ensure_ovs_bridge(self.br_phy)
        self.vsctl("--may-exist", "add-port", self.br_phy, self.underlay_interface)
        moved = {a for a in self.ip.addresses(self.underlay_interface)
                 if a.split("/")[0] == self.local_ip}
        have = self.ip.addresses(self.br_phy)
        if not any(a.split("/")[0] == self.local_ip for a in have):
            cidr = next(iter(moved), f"{self.local_ip}/24")
            self.ip.runner.run(["ip", "addr", "add", cidr, "dev", self.br_phy])
        self.ip.ensure_link_settings(self.br_phy)  # up: its gateways become reachable
        if moved:  # the routes through the interface follow its address (else they vanish)
            self._move_routes(self.underlay_interface, self.br_phy)
        for cidr in moved:
            self.ip.runner.run(["ip", "addr", "del", cidr, "dev", self.underlay_interface])
        self.ip.ensure_link_settings(self.underlay_interface)

    def _release_br_phy(self) -> None:
        """Teardown: the underlay address and the routes through br-phy go back to the
        underlay interface, which leaves br-phy (then removed as our bridge)."""
        assert self.underlay_interface
        iface = self.underlay_interface
        back = {a for a in self.ip.addresses(self.br_phy) if a.split("/")[0] == self.local_ip}
        have = self.ip.addresses(iface)
        for cidr in sorted(back - have):
            self.ip.runner.run(["ip", "addr", "add", cidr, "dev", iface])
        self.ip.ensure_link_settings(iface)
        if back:
            self._move_routes(self.br_phy, iface)
        self.vsctl("--if-exists", "del-port", self.br_phy, iface)
        LOG.info("moved the underlay address %s and its routes from %s back to %s",
                 ", ".join(sorted(back)) or "(none)", self.br_phy, iface)

    def _move_routes(self, src: str, dst: str) -> None:
        """Every IPv4 route of the main table through ``src`` but the kernel's own (the
        connected subnet, made with the address), re-made through ``dst``."""
        out = self.ip.runner.run(["ip", "-j", "-4", "route", "show", "dev", src])
        for route in json.loads(out or "[]"):
            if route.get("protocol") == "kernel" or "dst" not in route:
                continue
            argv = ["ip", "-4", "route", "replace", route["dst"]]
            if route.get("gateway"):
                argv += ["via", route["gateway"]]
            argv += ["dev", dst]
            for key, word in (("metric", "metric"), ("protocol", "proto"),
                              ("scope", "scope"), ("prefsrc", "src")):
                if route.get(key) not in (None, ""):
                    argv += [word, str(route[key])]
            if "onlink" in route.get("flags", []):
                argv.append("onlink")
            self.ip.runner.run(argv)
            # replace matches on destination and metric: the old one stays if dst differs
            drop = ["ip", "-4", "route", "del", route["dst"], "dev", src]
            if route.get("metric") is not None:
                drop += ["metric", str(route["metric"])]
            self.ip.runner.run(drop, check=False)
            LOG.info("route %s moved from %s to %s", route["dst"], src, dst)

    def network_key(self, network: Network) -> str:
        return network.id

    def _tunnel_port(self, peer: str) -> str:
        return self.naming.tunnel_port(self.tunnel_type, f"{int(ipaddress.ip_address(peer)):08x}")

    def _ensure_tunnels(self, peers: set[str]) -> list[int]:
        wanted = {self._tunnel_port(p): p for p in peers}
        have = [p for p in self._find_ports()
                if p["external_ids"].get("stratus-tunnel")]
        for port in have:
            if port["name"] not in wanted:
                self.vsctl("--if-exists", "del-port", self.br_tun, port["name"])
                self._ports = None
        have_names = {p["name"] for p in have}
        for name, peer in wanted.items():
            if name in have_names:
                continue
            self.vsctl("--may-exist", "add-port", self.br_tun, name, "--", "set", "Interface",
                       name, f"type={self.tunnel_type}", f"options:remote_ip={peer}",
                       f"options:local_ip={self.local_ip}", "options:key=flow", "--", "set",
                       "Port", name, f"external_ids:stratus-tunnel={peer}", *self.marks)
            self._ports = None
        return sorted(self._ofport(name) for name in wanted)

    def ensure_network(self, network: Network, tunnel_peers: list[str]) -> None:
        vlan = self.local_vlan(network.id)
        if network.segmentation_type == "flat":
            iface = self.mappings.get(network.physical_network or "")
            if not iface:
                raise DriverError(f"network {network.id}: physical network "
                                  f"{network.physical_network!r} has no mapping")
            if self.ip.link(iface) is None:
                raise DriverError(f"physical interface {iface} does not exist", temporary=True)
            uplink = self.ip.bridge_uplink(iface, *self.naming.uplink(iface))
            self._ensure_port(uplink, vlan, network.id, {})
            return
        tunnels = self._ensure_tunnels(set(tunnel_peers) - {self.local_ip})
        patch = self._ofport(self.patch_int)
        cookie = f"{COOKIE_BASE + vlan:#x}"
        # No peer (a single host): drop, alone (OVS refuses "drop" after other actions).
        outputs = (f"strip_vlan,set_tunnel:{network.segmentation_id},"
                   + ",".join(f"output:{t}" for t in tunnels)) if tunnels else "drop"
        flows = [
            f"cookie={cookie},priority=10,in_port={patch},dl_vlan={vlan},"
            f"actions={outputs}",
            f"cookie={cookie},priority=10,tun_id={network.segmentation_id},"
            f"actions=mod_vlan_vid:{vlan},output:{patch}",
        ]
        # Skip when br-tun already has these flows: the hash of what we pushed is
        # kept in br-tun's external_ids (ovsdb, cheap to read) and the flow dump
        # (one per pass) proves vswitchd still has them (it loses them on restart).
        digest = hashlib.sha256("\n".join(flows).encode()).hexdigest()[:16]
        key = self.naming.flows_key(vlan)
        if self._tun_ids is None:
            out = self.vsctl("br-get-external-id", self.br_tun)
            self._tun_ids = dict(line.partition("=")[::2] for line in out.splitlines())
        if self._flow_dump is None:
            self._flow_dump = self.ofctl("dump-flows", "--no-stats", self.br_tun)
        present = sum(f"cookie={cookie}," in line for line in self._flow_dump.splitlines())
        if self._tun_ids.get(key) == digest and present == len(flows):
            return
        if present:
            self.ofctl("del-flows", self.br_tun, f"cookie={cookie}/-1")
        self.ofctl("add-flows", self.br_tun, "-", input="\n".join(flows) + "\n")
        self.vsctl("br-set-external-id", self.br_tun, key, digest)
        self._tun_ids[key] = digest

    def list_networks(self) -> set[str]:
        return set(self._lvlans())

    def remove_network(self, key: str) -> None:
        vlan = self._lvlans().get(key)
        for port in self._find_ports():
            if port["external_ids"].get("stratus-net") == key:
                self._unplug_port(port)
        if vlan is not None:
            self.ofctl("del-flows", self.br_tun, f"cookie={COOKIE_BASE + vlan:#x}/-1")
            self.vsctl("br-set-external-id", self.br_tun, self.naming.flows_key(vlan))
            self._tun_ids = self._flow_dump = None
        self.vsctl("br-set-external-id", self.br_int, self.naming.lvlan_key + key)
        self._vlans = None

    def device_exists(self, device: str) -> bool:
        return self.ip.link(device) is not None

    def _ensure_port(self, name: str, vlan: int, network_id: str,
                     extra: dict[str, str]) -> None:
        ext = {**self.naming.ovs_marks, "stratus-net": network_id, **extra}
        current = next((p for p in self._find_ports() if p["name"] == name), None)
        if current and current["tag"] == vlan and all(
                current["external_ids"].get(k) == v for k, v in ext.items()):
            return
        # --no-wait: the database change is enough; vswitchd applies it on its own.
        args = ["--no-wait", "--may-exist", "add-port", self.br_int, name, "--", "set", "Port",
                name, f"tag={vlan}"]
        args += [f"external_ids:{k}={v}" for k, v in ext.items()]
        self.vsctl(*args)
        ports = self._find_ports()
        ports[:] = [p for p in ports if p["name"] != name]
        ports.append({"name": name, "tag": vlan, "external_ids": ext})

    def plug(self, network: Network, device: str, port_id: str, mac: str,
             instance: bool = True) -> None:
        info = self.ip.link(device)
        if info is None:
            raise DriverError(f"device {device} does not exist", temporary=True)
        vlan = self.local_vlan(network.id)
        extra = {"stratus-dev": device, "iface-id": port_id, "attached-mac": mac}
        if not instance:
            self.ip.ensure_link_settings(device, mtu=network.mtu, info=info)
            self._ensure_port(device, vlan, network.id, extra)
            return
        qbr, qvb, qvo = self.naming.hybrid(port_id)
        self.ip.ensure_bridge(qbr)
        if self.ip.link(qvb) is None or self.ip.link(qvo) is None:
            self.ip.delete_link(qvb)
            self.ip.delete_link(qvo)
            self.ip.change(["ip", "link", "add", qvb, "type", "veth", "peer", "name", qvo],
                           [qvb, qvo])
            self.ip.disable_tx_checksum(qvb)  # see IpLib.ensure_veth
        self.ip.ensure_link_settings(qvb, mtu=network.mtu, master=qbr)
        self.ip.ensure_link_settings(qvo, mtu=network.mtu)
        self.ip.ensure_link_settings(device, mtu=network.mtu, master=qbr, info=info)
        self._ensure_port(qvo, vlan, network.id, extra)

    def list_plugged(self) -> dict[str, str]:
        return {p["external_ids"]["stratus-dev"]: p["external_ids"].get("stratus-net", "")
                for p in self._find_ports() if "stratus-dev" in p["external_ids"]}

    def _unplug_port(self, port: dict[str, Any]) -> None:
        name = port["name"]
        self.vsctl("--no-wait", "--if-exists", "del-port", self.br_int, name)
        self._ports = None
        if self.naming.owns(name, kinds.HYBRID_OVS):
            suffix = name[len(self.naming.ifname(kinds.HYBRID_OVS, "")):]
            self.ip.delete_link(self.naming.ifname(kinds.HYBRID_VETH, suffix))
            self.ip.delete_link(self.naming.ifname(kinds.HYBRID_BRIDGE, suffix))

    def unplug(self, device: str) -> None:
        for port in self._find_ports():
            if port["external_ids"].get("stratus-dev") == device:
                self._unplug_port(port)
