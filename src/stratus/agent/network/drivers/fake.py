"""Complete in-memory fakes of the network drivers, for unit tests.

They keep the "host" as dictionaries and count creations, so tests can check
both the converged state and that a restart recreated nothing. A fake host
(:class:`FakeHost`) can be shared by several agent instances to simulate a
restart, and ``fail_next`` injects errors.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

from stratus.agent.network.drivers.base import (
    DhcpDriver,
    DriverError,
    FirewallDriver,
    L2Driver,
    MetadataProxyDriver,
    RouterDriver,
)
from stratus.agent.network.metadata_v6 import LinkLocalMetadata
from stratus.agent.network.naming import Naming
from stratus.contracts.network import (
    DhcpServer,
    MetadataSettings,
    Network,
    Port,
    Router,
    SecurityGroup,
)


@dataclass
class FakeHost:
    """What a fake host has on it."""

    segments: dict[str, tuple[int | None, tuple[str, ...]]] = field(default_factory=dict)
    devices: set[str] = field(default_factory=set)
    plugged: dict[str, str] = field(default_factory=dict)
    dhcp: dict[str, DhcpServer] = field(default_factory=dict)
    routers: dict[str, Router] = field(default_factory=dict)
    firewall: dict[str, Port] = field(default_factory=dict)
    proxies: dict[str, tuple[str, MetadataSettings]] = field(default_factory=dict)
    proxy_subnets: dict[str, dict[str, str]] = field(default_factory=dict)
    proxy_link_local: dict[str, LinkLocalMetadata] = field(default_factory=dict)
    created: Counter[str] = field(default_factory=Counter)
    reloads: Counter[str] = field(default_factory=Counter)
    fail_next: list[DriverError] = field(default_factory=list)
    broken: dict[str, DriverError] = field(default_factory=dict)  # object id -> error

    def maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)


class FakeL2(L2Driver):
    def __init__(self, host: FakeHost, naming: Naming | None = None):
        self.host = host
        self.naming = naming or Naming()

    def network_key(self, network: Network) -> str:
        return self.naming.network_bridge(network.id)

    def ensure_network(self, network: Network, tunnel_peers: list[str]) -> None:
        self.host.maybe_fail()
        if network.id in self.host.broken:
            raise self.host.broken[network.id]
        key = self.network_key(network)
        wanted = (network.segmentation_id, tuple(sorted(tunnel_peers)))
        if key not in self.host.segments:
            self.host.created[key] += 1
        self.host.segments[key] = wanted

    def list_networks(self) -> set[str]:
        return set(self.host.segments)

    def remove_network(self, key: str) -> None:
        self.host.segments.pop(key, None)
        for dev, net in list(self.host.plugged.items()):
            if net == key:
                del self.host.plugged[dev]

    def device_exists(self, device: str) -> bool:
        return device in self.host.devices

    def plug(self, network: Network, device: str, port_id: str, mac: str,
             instance: bool = True) -> None:
        if device not in self.host.devices:
            raise DriverError(f"device {device} does not exist", temporary=True)
        key = self.network_key(network)
        if self.host.plugged.get(device) != key:
            self.host.created[f"plug:{device}"] += 1
        self.host.plugged[device] = key

    def list_plugged(self) -> dict[str, str]:
        return dict(self.host.plugged)

    def unplug(self, device: str) -> None:
        self.host.plugged.pop(device, None)


class FakeDhcp(DhcpDriver):
    def __init__(self, host: FakeHost, naming: Naming | None = None):
        self.host = host
        self.naming = naming or Naming()

    def netns(self, network_id: str) -> str:
        return self.naming.dhcp_netns(network_id)

    def ensure_dhcp(self, server: DhcpServer, network: Network, l2: L2Driver) -> None:
        self.host.maybe_fail()
        have = self.host.dhcp.get(server.network_id)
        if have is None:
            self.host.created[f"dhcp:{server.network_id}"] += 1
            dev = self.naming.tap(server.port_id)
            self.host.devices.add(dev)
            l2.plug(network, dev, server.port_id, server.mac_address, instance=False)
        elif have != server:
            self.host.reloads[server.network_id] += 1
        self.host.dhcp[server.network_id] = copy.deepcopy(server)

    def list_dhcp(self) -> set[str]:
        return set(self.host.dhcp)

    def remove_dhcp(self, network_id: str) -> None:
        server = self.host.dhcp.pop(network_id, None)
        if server:
            dev = self.naming.tap(server.port_id)
            self.host.devices.discard(dev)
            self.host.plugged.pop(dev, None)


class FakeRouters(RouterDriver):
    def __init__(self, host: FakeHost, naming: Naming | None = None):
        self.host = host
        self.naming = naming or Naming()

    def netns(self, router_id: str) -> str:
        return self.naming.router_netns(router_id)

    def ensure_router(self, router: Router, networks: dict[str, Network], l2: L2Driver) -> None:
        self.host.maybe_fail()
        if router.id not in self.host.routers:
            self.host.created[f"router:{router.id}"] += 1
        ports = [(i.port_id, i.network_id, i.mac_address) for i in router.interfaces]
        if router.gateway:
            g = router.gateway
            ports.append((g.port_id, g.network_id, g.mac_address))
        for port_id, net_id, mac in ports:
            dev = self.naming.tap(port_id)
            self.host.devices.add(dev)
            l2.plug(networks[net_id], dev, port_id, mac, instance=False)
        self.host.routers[router.id] = copy.deepcopy(router)

    def list_routers(self) -> set[str]:
        return set(self.host.routers)

    def remove_router(self, router_id: str) -> None:
        router = self.host.routers.pop(router_id, None)
        if router:
            ids = [i.port_id for i in router.interfaces]
            if router.gateway:
                ids.append(router.gateway.port_id)
            for port_id in ids:
                dev = self.naming.tap(port_id)
                self.host.devices.discard(dev)
                self.host.plugged.pop(dev, None)


class FakeFirewall(FirewallDriver):
    def __init__(self, host: FakeHost):
        self.host = host

    def apply(self, ports: list[Port], groups: dict[str, SecurityGroup]) -> None:
        self.host.maybe_fail()
        if "firewall" in self.host.broken:
            raise self.host.broken["firewall"]
        wanted = {p.id: copy.deepcopy(p) for p in ports if p.port_security_enabled}
        if wanted != self.host.firewall:
            self.host.created["firewall"] += 1
        self.host.firewall = wanted

    def filtered_ports(self) -> set[str]:
        return set(self.host.firewall)


class FakeMetadata(MetadataProxyDriver):
    def __init__(self, host: FakeHost):
        self.host = host

    def ensure_proxy(self, netns: str, network_id: str, settings: MetadataSettings,
                     subnets: dict[str, str] | None = None,
                     link_local: LinkLocalMetadata | None = None) -> None:
        if not settings.shared_secret:
            raise DriverError("metadata shared secret is empty: refusing to start the proxy")
        listen = (link_local.interface, link_local.slaac_prefixes) if link_local else None
        old = self.host.proxy_link_local.get(netns)
        had = (old.interface, old.slaac_prefixes) if old else None
        if self.host.proxies.get(netns) != (network_id, settings) or \
                self.host.proxy_subnets.get(netns) != (subnets or {}) or had != listen:
            self.host.created[f"proxy:{netns}"] += 1  # the real proxy restarts
        self.host.proxies[netns] = (network_id, copy.deepcopy(settings))
        self.host.proxy_subnets[netns] = dict(subnets or {})
        if link_local is None:
            self.host.proxy_link_local.pop(netns, None)
        else:  # the host entries alone: a file the real proxy re-reads, no restart
            self.host.proxy_link_local[netns] = copy.deepcopy(link_local)

    def list_proxies(self) -> set[str]:
        return set(self.host.proxies)

    def remove_proxy(self, netns: str) -> None:
        self.host.proxies.pop(netns, None)
        self.host.proxy_subnets.pop(netns, None)
        self.host.proxy_link_local.pop(netns, None)
