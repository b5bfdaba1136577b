"""Names of everything the network agent creates on a host, and which names are its own.

Every host object carries the deploy's prefix (``[DEFAULT] deploy_prefix``, ``st`` by
default), so that two deploys (a user's cloud and the test suite's, or two test
deploys) share one host: each agent lists, changes and removes only names of its own
prefix, and never an object with another prefix or none (the unprefixed objects of a
release before the prefix included).

=========================  =====================================================
object                     name (prefix ``st``)
=========================  =====================================================
DHCP / router namespace    ``st-qdhcp-<network id>``, ``st-qrouter-<router id>``
host side of a port        ``st-tp<port id>`` (instance tap, DHCP and router veths)
network bridge (linux)     ``st-br<network id>``
VXLAN device (linux)       ``st-vx<vni>``
uplink veth to a bridge    ``st-ph<iface>`` (in the mapped bridge), ``st-in<iface>``
OVS bridges                ``st-br-int``, ``st-br-tun``, ``st-br-phy``
OVS patch ports            ``st-patch-tun``, ``st-patch-int``
OVS tunnel ports           ``st-vx<peer ip hex>`` / ``st-gr<peer ip hex>``
hybrid plug (ovs)          ``st-qb<port id>`` bridge, ``st-qv``/``st-qo`` veth ends
nftables tables            ``stratus_st_sg``, ``stratus_st_antispoof`` (host),
                           ``stratus_st_router`` (router namespace)
nftables chains            ``st_forward``, ``st_egress_<port>``, ... (in those tables)
OVS marks                  ``external_ids`` ``stratus-deploy=st``, ``stratus-host=<host>``
                           on every port and bridge; br-int keys ``stratus-st-lvlan-<net>``
dnsmasq, metadata proxies  files under ``<state_dir>/dhcp/<namespace>/`` and
                           ``<state_dir>/metadata/<namespace>.{json,pid,log}``
=========================  =====================================================

Interface names follow the one 15-character rule of
:func:`stratus.contracts.network.interface_name` (``<prefix>-<kind><id>``, the id
without dashes and cut). Devices inside our own namespaces keep Neutron's
``ns-``/``qr-``/``qg-`` + 11 characters: the namespace is already ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from stratus.contracts.network import check_deploy_prefix, interface_name, tap_name

# The kinds of interface (two letters: at least 8 characters of the id remain).
TAP = "tp"
BRIDGE = "br"
VXLAN = "vx"
GRE = "gr"
HYBRID_BRIDGE = "qb"
HYBRID_VETH = "qv"  # in the hybrid bridge
HYBRID_OVS = "qo"   # in br-int
UPLINK_OUTER = "ph"  # in the mapped (external) bridge
UPLINK_INNER = "in"  # in the network's bridge / br-int


@dataclass(frozen=True)
class Naming:
    """The names of one deploy's host objects.

    ``netns_prefix`` (tests only) goes before the namespace names, for several fake
    hosts of one deploy on one machine (namespace names are global); ``nft_prefix``
    goes before the table names; ``host`` is marked on the OVS objects."""

    deploy_prefix: str = "st"
    netns_prefix: str = ""
    nft_prefix: str = "stratus_"
    host: str = ""

    def __post_init__(self) -> None:
        check_deploy_prefix(self.deploy_prefix)

    # --- interfaces ------------------------------------------------------------------
    def ifname(self, kind: str, resource_id: str) -> str:
        return interface_name(self.deploy_prefix, kind, resource_id)

    def owns(self, name: str, kind: str) -> bool:
        """Whether ``name`` is one of our interfaces of that kind."""
        return name.startswith(f"{self.deploy_prefix}-{kind}")

    def tap(self, port_id: str) -> str:
        """Host side of any port (instance tap, or the veth of a DHCP/router port)."""
        return tap_name(self.deploy_prefix, port_id)

    def network_bridge(self, network_id: str) -> str:
        return self.ifname(BRIDGE, network_id)

    def vxlan(self, vni: int) -> str:
        return self.ifname(VXLAN, str(vni))

    def vxlan_vni(self, name: str) -> int | None:
        """The VNI of one of our VXLAN device names, else None."""
        rest = name[len(f"{self.deploy_prefix}-{VXLAN}"):]
        return int(rest) if self.owns(name, VXLAN) and rest.isdigit() else None

    def tunnel_port(self, tunnel_type: str, peer_hex: str) -> str:
        return self.ifname(GRE if tunnel_type == "gre" else VXLAN, peer_hex)

    def hybrid(self, port_id: str) -> tuple[str, str, str]:
        """(bridge, veth end in the bridge, veth end in br-int) of a hybrid plug."""
        return (self.ifname(HYBRID_BRIDGE, port_id), self.ifname(HYBRID_VETH, port_id),
                self.ifname(HYBRID_OVS, port_id))

    def uplink(self, iface: str) -> tuple[str, str]:
        """(end in the mapped bridge, end for our bridge) of a mapped bridge's veth."""
        return self.ifname(UPLINK_OUTER, iface), self.ifname(UPLINK_INNER, iface)

    def ovs_bridge(self, role: str) -> str:
        """``int``, ``tun`` or ``phy``."""
        return f"{self.deploy_prefix}-br-{role}"

    def patch_port(self, towards: str) -> str:
        return f"{self.deploy_prefix}-patch-{towards}"

    @property
    def ovs_marks(self) -> dict[str, str]:
        """external_ids every OVS port and bridge of ours carries."""
        marks = {"stratus-deploy": self.deploy_prefix}
        if self.host:
            marks["stratus-host"] = self.host
        return marks

    def owns_ovs(self, external_ids: dict[str, str]) -> bool:
        """An OVS row is ours when it carries our deploy and (when we have one) host."""
        return all(external_ids.get(k) == v for k, v in self.ovs_marks.items())

    @property
    def lvlan_key(self) -> str:
        return f"stratus-{self.deploy_prefix}-lvlan-"

    def flows_key(self, vlan: int) -> str:
        return f"stratus-{self.deploy_prefix}-flows-{vlan}"

    # --- inside our namespaces ----------------------------------------------------------
    @staticmethod
    def dhcp_dev(port_id: str) -> str:
        return "ns-" + port_id[:11]

    @staticmethod
    def router_dev(port_id: str) -> str:
        return "qr-" + port_id[:11]

    @staticmethod
    def gateway_dev(port_id: str) -> str:
        return "qg-" + port_id[:11]

    # --- namespaces -------------------------------------------------------------------
    @property
    def dhcp_netns_prefix(self) -> str:
        return f"{self.netns_prefix}{self.deploy_prefix}-qdhcp-"

    @property
    def router_netns_prefix(self) -> str:
        return f"{self.netns_prefix}{self.deploy_prefix}-qrouter-"

    def dhcp_netns(self, network_id: str) -> str:
        return self.dhcp_netns_prefix + network_id

    def router_netns(self, router_id: str) -> str:
        return self.router_netns_prefix + router_id

    def owns_netns(self, name: str) -> bool:
        return name.startswith((self.dhcp_netns_prefix, self.router_netns_prefix))

    # --- nftables ---------------------------------------------------------------------
    def table(self, what: str) -> str:
        return f"{self.nft_prefix}{self.deploy_prefix}_{what}"

    def chain(self, what: str) -> str:
        return f"{self.deploy_prefix}_{what}"

    @staticmethod
    def chain_id(port_id: str) -> str:
        return port_id[:11].replace("-", "_")
