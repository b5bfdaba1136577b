"""L2 backend ``linuxbridge``: a Linux bridge per network plus a kernel VXLAN device.

* tenant network (vxlan): bridge ``<prefix>-br<net>`` with device ``<prefix>-vx<vni>``
  (unicast, head-end replication: one all-zero FDB entry per peer host);
* provider network (flat): the bridge enslaves the interface that
  ``physical_interface_mappings`` gives for its physical network (a Linux bridge
  there is joined through the veth ``<prefix>-ph<iface>``/``<prefix>-in<iface>``).

Only bridges, VXLAN devices and taps named with the deploy's prefix are listed,
changed or removed (:mod:`stratus.agent.network.naming`).

GRE is not available here (Linux bridges have no GRE-in-bridge without
gretap); a ``gre`` network is carried as VXLAN with the same id, which is
fine as long as every host uses the same backend.
"""

from __future__ import annotations

import logging

from stratus.agent.ip_lib import IpLib
from stratus.agent.network import naming as kinds
from stratus.agent.network.drivers.base import DriverError, L2Driver
from stratus.agent.network.naming import Naming
from stratus.contracts.network import Network

LOG = logging.getLogger(__name__)


class LinuxBridgeDriver(L2Driver):
    def __init__(
        self,
        ip: IpLib,
        local_ip: str,
        underlay_interface: str | None = None,
        physical_interface_mappings: dict[str, str] | None = None,
        vxlan_port: int = 4789,
        naming: Naming | None = None,
    ):
        self.naming = naming or Naming()
        self.ip = ip
        self.local_ip = local_ip
        self.underlay_interface = underlay_interface
        self.mappings = physical_interface_mappings or {}
        self.vxlan_port = vxlan_port

    def begin_pass(self) -> None:
        self.ip.begin_pass()

    def ensure_ready(self) -> None:
        # Bridged IPv4 must traverse the inet hooks for the stateful security groups.
        self.ip.sysctl("net.bridge.bridge-nf-call-iptables", "1")
        self.ip.sysctl("net.bridge.bridge-nf-call-ip6tables", "1")  # IPv6 groups

    def teardown(self) -> None:
        for iface in self.mappings.values():
            self.ip.remove_bridge_uplink(*self.naming.uplink(iface))

    def network_key(self, network: Network) -> str:
        return self.naming.network_bridge(network.id)

    def ensure_network(self, network: Network, tunnel_peers: list[str]) -> None:
        bridge = self.network_key(network)
        self.ip.ensure_bridge(bridge, mtu=None)
        if network.segmentation_type == "flat":
            iface = self.mappings.get(network.physical_network or "")
            if not iface:
                raise DriverError(
                    f"network {network.id}: physical network {network.physical_network!r} "
                    f"has no entry in physical_interface_mappings"
                )
            if self.ip.link(iface) is None:
                raise DriverError(f"physical interface {iface} does not exist", temporary=True)
            self.ip.ensure_link_settings(
                self.ip.bridge_uplink(iface, *self.naming.uplink(iface)), master=bridge)
            return
        assert network.segmentation_id is not None
        vxlan = self.naming.vxlan(network.segmentation_id)
        info = self.ip.link(vxlan)
        data = (info or {}).get("linkinfo", {}).get("info_data", {})
        if info is not None and (
            data.get("id") != network.segmentation_id or data.get("local") != self.local_ip
        ):
            self.ip.delete_link(vxlan)
            info = None
        if info is None:
            argv = ["ip", "link", "add", vxlan, "type", "vxlan", "id",
                    str(network.segmentation_id), "local", self.local_ip,
                    "dstport", str(self.vxlan_port), "nolearning"]
            if self.underlay_interface:
                argv += ["dev", self.underlay_interface]
            self.ip.change(argv, [vxlan])
        self.ip.ensure_link_settings(vxlan, mtu=network.mtu, master=bridge, info=info)
        self.ip.ensure_fdb_flood_peers(vxlan, set(tunnel_peers) - {self.local_ip})
        # learning off on the VXLAN device: unicast to remote MACs still works
        # through the flood entries, and the bridge learns the remote MACs.

    def list_networks(self) -> set[str]:
        # A mapped bridge is never a segment, though the default external bridge's name
        # (``st-br-ex``) starts as this deploy's network bridges do: listed, it was removed
        # as a stale segment on the agent's first pass.
        mapped = set(self.mappings.values())
        return {
            link["ifname"] for link in self.ip.links()
            if self.naming.owns(link["ifname"], kinds.BRIDGE)
            and link.get("linkinfo", {}).get("info_kind") == "bridge"
            and link["ifname"] not in mapped
        }

    def remove_network(self, key: str) -> None:
        if not self.naming.owns(key, kinds.BRIDGE):
            raise DriverError(f"refusing to remove {key}: not a bridge of deploy "
                              f"{self.naming.deploy_prefix!r}")
        for link in self.ip.links():
            if link.get("master") != key:
                continue
            name = link["ifname"]
            if self.naming.owns(name, kinds.VXLAN):
                self.ip.delete_link(name)
            else:
                self.ip.change(["ip", "link", "set", "dev", name, "nomaster"], [name],
                               check=False)
        self.ip.delete_link(key)

    def remove_stale_vxlan(self, wanted_vnis: set[int]) -> None:
        for link in self.ip.links():
            vni = self.naming.vxlan_vni(link["ifname"])
            if vni is not None and vni not in wanted_vnis:
                self.ip.delete_link(link["ifname"])

    def device_exists(self, device: str) -> bool:
        return self.ip.link(device) is not None

    def plug(self, network: Network, device: str, port_id: str, mac: str,
             instance: bool = True) -> None:
        info = self.ip.link(device)
        if info is None:
            raise DriverError(f"device {device} does not exist", temporary=True)
        self.ip.ensure_link_settings(
            device, mtu=network.mtu, master=self.network_key(network), info=info
        )

    def list_plugged(self) -> dict[str, str]:
        return {
            link["ifname"]: link["master"] for link in self.ip.links()
            if self.naming.owns(str(link.get("master", "")), kinds.BRIDGE)
            and self.naming.owns(link["ifname"], kinds.TAP)
        }

    def unplug(self, device: str) -> None:
        if self.naming.owns(device, kinds.TAP) and self.ip.link(device) is not None:
            self.ip.change(["ip", "link", "set", "dev", device, "nomaster"], [device],
                           check=False)
