"""The driver interfaces of the network agent.

Each interface is small and level-based: ``ensure_*`` makes one object look
like its desired state (creating or fixing it, doing nothing when it is
already right), ``list_*`` returns the keys of what is ours on the host, and
``remove_*`` deletes one of them. The agent computes the two-way difference.
Real implementations live beside this file; ``fake.py`` has complete fakes.
"""

from __future__ import annotations

import abc

from stratus.agent.network.metadata_v6 import LinkLocalMetadata
from stratus.contracts.network import (
    DhcpServer,
    MetadataSettings,
    Network,
    Port,
    Router,
    SecurityGroup,
)


class DriverError(Exception):
    """A driver cannot do what was asked. ``temporary`` errors are retried."""

    def __init__(self, message: str, temporary: bool = False):
        super().__init__(message)
        self.temporary = temporary


class L2Driver(abc.ABC):
    """Layer 2: one segment per network, tunnels to the other hosts, plugging devices."""

    @abc.abstractmethod
    def network_key(self, network: Network) -> str:
        """The name under which ``list_networks`` reports this network."""

    @abc.abstractmethod
    def ensure_network(self, network: Network, tunnel_peers: list[str]) -> None:
        """The network's segment exists, with a tunnel/flood entry per peer."""

    @abc.abstractmethod
    def list_networks(self) -> set[str]:
        """Keys of the network segments that are ours on this host."""

    @abc.abstractmethod
    def remove_network(self, key: str) -> None:
        """Delete one segment (and its tunnel devices/flows)."""

    @abc.abstractmethod
    def device_exists(self, device: str) -> bool:
        """Whether a host device (e.g. the instance's tap) is present."""

    @abc.abstractmethod
    def plug(self, network: Network, device: str, port_id: str, mac: str,
             instance: bool = True) -> None:
        """Attach an existing host device to the network's segment.

        ``instance`` ports are filtered by the firewall driver (the ``ovs``
        backend then plugs them through a per-port Linux bridge, the
        "hybrid" plug, so nftables sees their traffic); DHCP and router
        ports pass ``instance=False``."""

    @abc.abstractmethod
    def list_plugged(self) -> dict[str, str]:
        """device -> network key, for the devices we attached."""

    @abc.abstractmethod
    def unplug(self, device: str) -> None:
        """Detach a device (the device itself is not deleted)."""

    def begin_pass(self) -> None:  # noqa: B027 - optional hook
        """Start of a reconcile pass: drop whatever the driver cached of the host."""

    def ensure_ready(self) -> None:  # noqa: B027 - optional hook
        """Host-wide setup (integration bridges, sysctls) before the first network."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Remove the host-wide objects of ``ensure_ready`` (``stratus-network-agent --cleanup``),
        after every network was removed."""


class DhcpDriver(abc.ABC):
    """A DHCP server per network in namespace ``qdhcp-<network>``."""

    @abc.abstractmethod
    def ensure_dhcp(self, server: DhcpServer, network: Network, l2: L2Driver) -> None:
        """Namespace, port and dnsmasq exist and serve exactly ``server.hosts``."""

    @abc.abstractmethod
    def list_dhcp(self) -> set[str]:
        """Network ids with a DHCP namespace of ours."""

    @abc.abstractmethod
    def remove_dhcp(self, network_id: str) -> None:
        """Stop dnsmasq (by pid) and delete the namespace."""

    @abc.abstractmethod
    def netns(self, network_id: str) -> str:
        """The namespace name of a network's DHCP server."""


class RouterDriver(abc.ABC):
    """Routers in namespaces ``qrouter-<router>`` with SNAT and floating IPs."""

    @abc.abstractmethod
    def ensure_router(self, router: Router, networks: dict[str, Network], l2: L2Driver) -> None:
        """Namespace, interfaces, gateway, routes and NAT rules match ``router``."""

    @abc.abstractmethod
    def list_routers(self) -> set[str]:
        """Router ids with a namespace of ours."""

    @abc.abstractmethod
    def remove_router(self, router_id: str) -> None:
        """Delete the router's namespace (its devices and NAT rules go with it)."""

    def netns(self, router_id: str) -> str:
        """The namespace name of a router (where its metadata proxy listens)."""
        return f"qrouter-{router_id}"


class FirewallDriver(abc.ABC):
    """Security groups and anti-spoofing for the instance ports of this host."""

    @abc.abstractmethod
    def apply(self, ports: list[Port], groups: dict[str, SecurityGroup]) -> None:
        """Exactly these ports are filtered, by exactly these rules (atomic replace)."""

    @abc.abstractmethod
    def filtered_ports(self) -> set[str]:
        """Ids of the ports currently filtered."""


class MetadataProxyDriver(abc.ABC):
    """The metadata proxy listening on 169.254.169.254:80 inside a namespace (and on
    fe80::a9fe:a9fe in a DHCP namespace: ``metadata_v6``)."""

    @abc.abstractmethod
    def ensure_proxy(self, netns: str, network_id: str, settings: MetadataSettings,
                     subnets: dict[str, str] | None = None,
                     link_local: LinkLocalMetadata | None = None) -> None:
        """A proxy runs in ``netns`` for ``network_id`` with these settings. A router's
        proxy serves several networks: ``subnets`` maps each CIDR behind it to its
        network id (the client's address chooses), and ``network_id`` is empty. With
        ``link_local`` it also serves ``fe80::a9fe:a9fe`` on that device, mapping
        link-local clients to their port's fixed IP."""

    @abc.abstractmethod
    def list_proxies(self) -> set[str]:
        """Namespaces with a proxy of ours."""

    @abc.abstractmethod
    def remove_proxy(self, netns: str) -> None:
        """Stop that proxy (by pid)."""
