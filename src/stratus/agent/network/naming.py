"""Names of everything the network agent creates on a host.

Every host object carries a recognisable prefix so that reconciliation can
tell what is ours (and remove it when it is no longer desired) without
touching anything else. Linux limits device names to 15 characters, hence the
11-character id prefixes (as Neutron does).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Naming:
    """``netns_prefix`` and ``nft_prefix`` let tests run beside a real agent."""

    netns_prefix: str = ""
    nft_prefix: str = "stratus_"

    def dhcp_netns(self, network_id: str) -> str:
        return f"{self.netns_prefix}qdhcp-{network_id}"

    def router_netns(self, router_id: str) -> str:
        return f"{self.netns_prefix}qrouter-{router_id}"

    @property
    def dhcp_netns_prefix(self) -> str:
        return f"{self.netns_prefix}qdhcp-"

    @property
    def router_netns_prefix(self) -> str:
        return f"{self.netns_prefix}qrouter-"

    @staticmethod
    def tap(port_id: str) -> str:
        """Host side of any port (instance tap, or the veth of a DHCP/router port)."""
        return "tap" + port_id[:11]

    @staticmethod
    def dhcp_dev(port_id: str) -> str:
        return "ns-" + port_id[:11]

    @staticmethod
    def router_dev(port_id: str) -> str:
        return "qr-" + port_id[:11]

    @staticmethod
    def gateway_dev(port_id: str) -> str:
        return "qg-" + port_id[:11]

    @staticmethod
    def chain_id(port_id: str) -> str:
        return port_id[:11].replace("-", "_")

    def table(self, what: str) -> str:
        return f"{self.nft_prefix}{what}"
