"""IPv6 helpers of the network agent: addresses, default routes and link-local addresses.

``IpLib`` (shared with the compute agent) manages IPv4 addresses; these do the same for
the global IPv6 addresses of a namespace's device, level-triggered: read with ``ip -6``,
then only the difference is changed. Link-local addresses are the kernel's (from the
MAC) and never touched, but for the metadata one (``ensure_link_address6``). Addresses
are added ``nodad``: a DHCP or router port owns its address by the API's allocation,
and duplicate address detection would only leave it "tentative" (unusable) for a second
after every (re)creation.
"""

from __future__ import annotations

import ipaddress
import json
import os

from stratus.agent.ip_lib import IpLib


def is_v6(address: str) -> bool:
    """Whether an address or CIDR is IPv6."""
    return ":" in address


def split_families(items: set[str] | list[str]) -> tuple[set[str], set[str]]:
    """(IPv4, IPv6) of addresses or CIDRs."""
    v6 = {i for i in items if is_v6(i)}
    return set(items) - v6, v6


def link_local(mac: str) -> str:
    """The link-local address a host forms from ``mac`` (modified EUI-64, RFC 4291)."""
    octets = [int(b, 16) for b in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    iid = int.from_bytes(bytes(eui), "big")
    return str(ipaddress.IPv6Address((0xFE80 << 112) | iid))


def addresses6(ip: IpLib, dev: str, netns: str | None = None) -> set[str]:
    """The global IPv6 addresses (``addr/prefixlen``) of ``dev``."""
    ns = ["-n", netns] if netns else []
    out = ip.runner.run(["ip", *ns, "-j", "-6", "addr", "show", "dev", dev, "scope", "global"])
    return {f"{a['local']}/{a['prefixlen']}" for entry in json.loads(out or "[]")
            for a in entry.get("addr_info", []) if "local" in a}  # ip -j lists {} when none


def ensure_addresses6(ip: IpLib, dev: str, wanted: set[str], netns: str | None = None) -> None:
    """Exactly ``wanted`` (IPv6 ``addr/prefixlen``) as the global addresses of ``dev``."""
    ns = ["-n", netns] if netns else []
    wanted = {str(ipaddress.ip_interface(w)) for w in wanted}
    have = addresses6(ip, dev, netns)
    for cidr in sorted(have - wanted):
        ip.runner.run(["ip", *ns, "-6", "addr", "del", cidr, "dev", dev])
    for cidr in sorted(wanted - have):
        ip.runner.run(["ip", *ns, "-6", "addr", "add", cidr, "dev", dev, "nodad"])


def ipv6_available() -> bool:
    """Whether this host's kernel has IPv6 at all (``ipv6.disable=1`` removes it)."""
    return os.path.isdir("/proc/sys/net/ipv6")


def ensure_link_address6(ip: IpLib, dev: str, cidr: str, present: bool,
                         netns: str | None = None) -> None:
    """The extra link-local address ``cidr`` (``addr/prefixlen``) is on ``dev`` when
    ``present``, and not otherwise (added ``nodad``); nothing on a host without IPv6."""
    if not ipv6_available():
        return
    ns = ["-n", netns] if netns else []
    out = ip.runner.run(["ip", *ns, "-j", "-6", "addr", "show", "dev", dev, "scope", "link"])
    have = {f"{a['local']}/{a['prefixlen']}" for entry in json.loads(out or "[]")
            for a in entry.get("addr_info", []) if "local" in a}
    if present and cidr not in have:
        ip.runner.run(["ip", *ns, "-6", "addr", "add", cidr, "dev", dev, "nodad"])
    elif not present and cidr in have:
        ip.runner.run(["ip", *ns, "-6", "addr", "del", cidr, "dev", dev])


def no_autoconf(ip: IpLib, dev: str, netns: str) -> None:
    """``dev`` takes no address nor route from router advertisements (its addresses are
    the API's): the DHCP port hears its own router's RAs."""
    ip.sysctl(f"net.ipv6.conf.{dev}.accept_ra", "0", netns=netns)
    ip.sysctl(f"net.ipv6.conf.{dev}.autoconf", "0", netns=netns)


def ensure_default_route6(ip: IpLib, gateway: str | None, dev: str, netns: str) -> None:
    """The namespace's IPv6 default route goes via ``gateway`` on ``dev`` (none if None)."""
    out = ip.runner.run(["ip", "-n", netns, "-j", "-6", "route", "show", "default"])
    routes = json.loads(out or "[]")
    have = routes[0].get("gateway") if routes else None
    if have == gateway and (not routes or routes[0].get("dev") == dev):
        return
    if gateway:
        ip.runner.run(["ip", "-n", netns, "-6", "route", "replace", "default", "via", gateway,
                       "dev", dev])
    else:
        ip.runner.run(["ip", "-n", netns, "-6", "route", "del", "default"], check=False)
