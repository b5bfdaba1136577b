"""Metadata over IPv6: ``http://[fe80::a9fe:a9fe%<iface>]/`` in the DHCP namespace.

cloud-init's OpenStack datasource (and any guest on an IPv6-only network) asks the
link-local address ``fe80::a9fe:a9fe``. As Neutron's DHCP agent does, the agent puts that
address (``nodad``) on the DHCP port's device of every network whose DHCP server runs a
metadata proxy, IPv4-only networks included (a guest there has a link-local address too,
and a client that tries the IPv6 URL first is answered instead of waiting for a timeout),
and the namespace's proxy listens on it as well (scope: that device). Router namespaces
do not: every network with a DHCP server has its proxy there, and a second holder would
make the address a duplicate on the link.

A guest asking a link-local address answers from its own link-local address (RFC 6724
chooses the source of the destination's scope), which names no fixed IP. As Neutron's
metadata agent does, the MAC is read back from its modified EUI-64 interface identifier
(the firewall lets a port send only from its own MAC's link-local address) and the proxy
signs, as ``X-Forwarded-For``, a fixed IP of the port with that MAC on the network: from
the DHCP server's host entries (IPv4, DHCPv6-stateful), else the SLAAC/dhcpv6-stateless
address the network API gave it (the subnet's prefix + the same identifier). So
``stratus-metadata`` finds the instance by network + fixed IP exactly as over IPv4. A guest
using stable-privacy (random) link-local addresses cannot be told apart: 404, as in
Neutron.

The host entries change with every port of the network, so they are not part of the
proxy's settings (a change would restart it): the driver writes them to
``<netns>.hosts`` (JSON, MAC -> fixed IPs, replaced atomically) and the proxy re-reads it
when it changed. Standard library only: the proxy process imports this module.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field

from stratus.contracts.network import DhcpServer, Network

METADATA_V6_IP = "fe80::a9fe:a9fe"
METADATA_V6_CIDR = f"{METADATA_V6_IP}/128"  # no second fe80::/64 route
LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")


@dataclass(frozen=True)
class LinkLocalMetadata:
    """What a DHCP namespace's proxy needs to serve ``fe80::a9fe:a9fe``: the device it
    listens on, the prefixes whose addresses are EUI-64 ones, and MAC -> fixed IPs."""

    interface: str
    slaac_prefixes: tuple[str, ...] = ()
    hosts: dict[str, list[str]] = field(default_factory=dict, hash=False)


def link_local_metadata(server: DhcpServer, network: Network, interface: str
                        ) -> LinkLocalMetadata:
    """The desired link-local metadata of a DHCP server on ``network``: its device, the
    network's SLAAC and dhcpv6-stateless prefixes (in the network's order) and its hosts
    by MAC."""
    prefixes = tuple(
        s.cidr for s in network.subnets
        if s.ip_version == 6 and s.ipv6_mode in ("slaac", "dhcpv6-stateless"))
    hosts: dict[str, list[str]] = {}
    for h in server.hosts:
        ips = hosts.setdefault(h.mac_address.lower(), [])
        if h.ip_address not in ips:
            ips.append(h.ip_address)
    return LinkLocalMetadata(interface, prefixes, hosts)


def mac_of_link_local(address: ipaddress.IPv6Address) -> str | None:
    """The MAC a modified EUI-64 link-local address was formed from (RFC 4291 appendix A),
    or None when it is not one (not link-local, or no ``ff:fe`` in the middle)."""
    if address not in LINK_LOCAL:
        return None
    iid = address.packed[8:]
    if iid[3:5] != b"\xff\xfe":
        return None
    octets = [iid[0] ^ 0x02, *iid[1:3], *iid[5:8]]
    return ":".join(f"{b:02x}" for b in octets)


def fixed_ip_for(address: ipaddress.IPv6Address, hosts: dict[str, list[str]],
                 slaac_prefixes: tuple[str, ...] | list[str]) -> str | None:
    """A fixed IP of the port that sends from link-local ``address``: its host entry's
    (IPv6 first), else its EUI-64 address on the first SLAAC/stateless prefix; None when
    the address carries no MAC or the network has neither."""
    mac = mac_of_link_local(address)
    if mac is None:
        return None
    ips = hosts.get(mac) or []
    for ip in sorted(ips, key=lambda i: ":" not in i):
        return ip
    iid = int(address) & (2**64 - 1)
    for cidr in slaac_prefixes:
        net = ipaddress.IPv6Network(cidr, strict=False)
        if net.prefixlen == 64:
            return str(ipaddress.IPv6Address(int(net.network_address) | iid))
    return None


def client_address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client of a request as an address: the zone (``%eth0``) dropped, an
    IPv4-mapped IPv6 address as IPv4; None when it is not an address."""
    try:
        addr = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def write_hosts(path: str, hosts: dict[str, list[str]]) -> bool:
    """Replace the hosts file atomically when its content differs; True when written."""
    content = json.dumps({k: hosts[k] for k in sorted(hosts)}, sort_keys=True)
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == content:
                return False
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(content)
    os.replace(tmp, path)
    return True


class HostsFile:
    """The proxy's view of ``<netns>.hosts``: read again whenever the file changed."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self.hosts: dict[str, list[str]] = {}

    def current(self) -> dict[str, list[str]]:
        if not self.path:
            return {}
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp, self.hosts = None, {}
            return self.hosts
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                return self.hosts  # mid-replace or broken: keep the last good one
            self.hosts = {str(k).lower(): [str(i) for i in v] for k, v in data.items()
                          if isinstance(v, list)} if isinstance(data, dict) else {}
            self._stamp = stamp
        return self.hosts
