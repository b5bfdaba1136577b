"""Routers: namespace ``<prefix>-qrouter-<router>`` with a ``qr-`` device per router
port (its addresses on each of its subnets), a ``qg-`` gateway device on the external
network, and an nftables table ``stratus_<prefix>_router`` doing SNAT (to the gateway IP,
when ``enable_snat``), floating-IP DNAT and the reverse SNAT for floating IPs. A router
with interfaces also holds 169.254.169.254/32 on ``lo``, where its metadata proxy
listens for the networks behind it.

IPv6 (docs/ipv6.md): the namespace forwards IPv6 too, its ``qr-`` devices hold their
IPv6 addresses, the gateway its IPv6 address and default route when the external network
has an IPv6 subnet, and a radvd (``radvd.py``) sends the router advertisements of its
IPv6 subnets. IPv6 is routed, never translated (as Neutron: no NAT for IPv6).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

from stratus.agent.ip_lib import IpLib
from stratus.agent.network import nft
from stratus.agent.network.drivers.base import L2Driver, RouterDriver
from stratus.agent.network.drivers.radvd import Radvd
from stratus.agent.network.ipv6 import (
    ensure_addresses6,
    ensure_default_route6,
    is_v6,
    split_families,
)
from stratus.agent.network.naming import Naming
from stratus.agent.runner import CommandError, Runner
from stratus.contracts.network import Network, Router, Subnet

LOG = logging.getLogger(__name__)
METADATA_CIDR = "169.254.169.254/32"


def render_nat(router: Router, internal_cidrs: list[str], gateway_dev: str | None,
               naming: Naming | None = None) -> str:
    """The body of the router's NAT table (without the table line)."""
    naming = naming or Naming()
    pre, out, post = [], [], []
    if router.gateway and gateway_dev and not is_v6(router.gateway.ip_address):
        for fip in sorted(router.floating_ips, key=lambda f: f.floating_ip_address):
            pre.append(f"    ip daddr {fip.floating_ip_address} dnat to {fip.fixed_ip_address}")
            out.append(f"    ip daddr {fip.floating_ip_address} dnat to {fip.fixed_ip_address}")
            post.append(
                f'    oifname "{gateway_dev}" ip saddr {fip.fixed_ip_address} '
                f"snat to {fip.floating_ip_address}"
            )
        if router.enable_snat and internal_cidrs:
            post.append(
                f'    oifname "{gateway_dev}" ip saddr {{ {", ".join(sorted(internal_cidrs))} }} '
                f"snat to {router.gateway.ip_address}"
            )
    def chain(name: str, hook: str, prio: str, rules: list[str]) -> str:
        body = "\n".join(rules)
        return (f"  chain {naming.chain(name)} {{\n"
                f"    type nat hook {hook} priority {prio}; policy accept;\n"
                f"{body}{chr(10) if rules else ''}  }}\n")
    return (chain("prerouting", "prerouting", "dstnat", pre)
            + chain("output", "output", "-100", out)
            + chain("postrouting", "postrouting", "srcnat", post))


def _route_dst(entry: dict[str, Any], v6: bool = False) -> str:
    dst = str(entry.get("dst", ""))
    if dst == "default":
        return "::/0" if v6 else "0.0.0.0/0"
    return dst if "/" in dst else f"{dst}/{128 if v6 else 32}"


def ensure_extra_routes(runner: Runner, ns: str, router: Router) -> None:
    """The router's extra routes (extraroute) in its namespace, as ``proto static`` routes:
    those are ours, so stale ones are removed and no other route is touched. A default
    destination is left to the gateway (ensure_default_route). A route the kernel refuses
    (its nexthop not on a device yet) is logged and retried on the next pass."""
    wanted = {(r.destination, r.nexthop) for r in router.routes
              if r.destination not in ("0.0.0.0/0", "::/0")}
    out = runner.run(["ip", "-n", ns, "-j", "-4", "route", "show", "proto", "static"])
    have = {(_route_dst(e), str(e.get("gateway"))) for e in json.loads(out or "[]")}
    # IPv6 routes are read only for a router on IPv6 (its routes die with its devices).
    if any(is_v6(i.ip_address) for i in router.interfaces) or any(
            is_v6(dst) for dst, _ in wanted):
        out = runner.run(["ip", "-n", ns, "-j", "-6", "route", "show", "proto", "static"])
        have |= {(_route_dst(e, True), str(e.get("gateway"))) for e in json.loads(out or "[]")}
    for dst, hop in sorted(have - wanted):
        LOG.info("router %s: removing extra route %s via %s", router.id, dst, hop)
        runner.run(["ip", "-n", ns, "route", "del", dst, "via", hop, "proto", "static"],
                   check=False)
    for dst, hop in sorted(wanted - have):
        try:
            runner.run(["ip", "-n", ns, "route", "replace", dst, "via", hop, "proto", "static"])
        except CommandError as exc:
            LOG.warning("router %s: extra route %s via %s not installed: %s", router.id, dst,
                        hop, exc)


class NamespaceRouterDriver(RouterDriver):
    """``state_dir``: where radvd keeps its files (without one, no router advertisements)."""

    def __init__(self, ip: IpLib, naming: Naming, state_dir: str | None = None):
        self.ip = ip
        self.naming = naming
        self.radvd = Radvd(ip, state_dir) if state_dir else None

    def ensure_router(self, router: Router, networks: dict[str, Network], l2: L2Driver) -> None:
        ns = self.naming.router_netns(router.id)
        if self.ip.ensure_netns(ns):
            LOG.info("router %s: created namespace %s", router.id, ns)
        self.ip.sysctl("net.ipv4.ip_forward", "1", netns=ns)
        self.ip.sysctl("net.ipv6.conf.all.forwarding", "1", netns=ns)
        wanted_devs: set[str] = set()
        internal: list[str] = []
        # One device per router port, with its address on each of the port's subnets.
        addrs: dict[str, set[str]] = {}
        ra: dict[str, tuple[int, list[Subnet]]] = {}
        for itf in router.interfaces:
            net = networks[itf.network_id]
            dev = self.naming.router_dev(itf.port_id)
            if dev not in addrs:
                host_dev = self.naming.tap(itf.port_id)
                self.ip.ensure_veth(host_dev, dev, ns, itf.mac_address, net.mtu, None)
                l2.plug(net, host_dev, itf.port_id, itf.mac_address, instance=False)
            cidr = f"{itf.ip_address}/{itf.prefixlen}"
            addrs.setdefault(dev, set()).add(cidr)
            wanted_devs.add(dev)
            if is_v6(itf.ip_address):
                subnet = next((s for s in net.subnets if s.id == itf.subnet_id), None)
                entry = ra.setdefault(dev, (net.mtu, []))
                if subnet is not None:
                    entry[1].append(subnet)
            else:
                internal.append(str(ipaddress.ip_interface(cidr).network))
        for dev, cidrs in addrs.items():
            v4, v6 = split_families(cidrs)
            self.ip.ensure_addresses(dev, v4, ns)
            ensure_addresses6(self.ip, dev, v6, ns)
        gw_dev = None
        if router.gateway:
            g = router.gateway
            net = networks[g.network_id]
            gw_dev = self.naming.gateway_dev(g.port_id)
            self.ip.ensure_veth(self.naming.tap(g.port_id), gw_dev, ns, g.mac_address, net.mtu,
                                None)
            l2.plug(net, self.naming.tap(g.port_id), g.port_id, g.mac_address, instance=False)
            gw_addrs = {f"{g.ip_address}/{g.prefixlen}"}
            if g.ipv6_address:
                gw_addrs.add(f"{g.ipv6_address}/{g.ipv6_prefixlen}")
            gw_addrs |= {f"{f.floating_ip_address}/32" for f in router.floating_ips}
            v4, v6 = split_families(gw_addrs)
            self.ip.ensure_addresses(gw_dev, v4, ns)
            ensure_addresses6(self.ip, gw_dev, v6, ns)
            gw4 = None if is_v6(g.ip_address) else g.gateway_ip
            gw6 = g.gateway_ip if is_v6(g.ip_address) else g.ipv6_gateway_ip
            self.ip.ensure_default_route(gw4, gw_dev, ns)
            ensure_default_route6(self.ip, gw6, gw_dev, ns)
            wanted_devs.add(gw_dev)
        # The metadata proxy of the router listens on 169.254.169.254: guests whose
        # route to it is their default gateway (no DHCP, or no option 121) reach it here.
        lo = {"127.0.0.1/8"} | ({METADATA_CIDR} if router.interfaces else set())
        self.ip.ensure_addresses("lo", lo, ns)
        ensure_extra_routes(self.ip.runner, ns, router)
        for link in self.ip.links(ns):
            name = link["ifname"]
            if name.startswith(("qr-", "qg-")) and name not in wanted_devs:
                LOG.info("router %s: removing stale device %s", router.id, name)
                self.ip.delete_link(name, ns)
        nft.ensure_table(self.ip.runner, "ip", self.naming.table("router"),
                         render_nat(router, internal, gw_dev, self.naming), netns=ns)
        if self.radvd is not None:
            self.radvd.ensure(ns, [(dev, mtu, subnets) for dev, (mtu, subnets) in ra.items()])

    def netns(self, router_id: str) -> str:
        return self.naming.router_netns(router_id)

    def list_routers(self) -> set[str]:
        """Routers with a namespace of ours, or only a radvd directory of ours (its
        namespace deleted under us: that radvd is stopped too, as dnsmasq's are)."""
        prefix = self.naming.router_netns_prefix
        found = {ns[len(prefix):] for ns in self.ip.list_netns(prefix)}
        if self.radvd is not None:
            found |= {ns[len(prefix):] for ns in self.radvd.namespaces()
                      if ns.startswith(prefix)}
        return found

    def remove_router(self, router_id: str) -> None:
        ns = self.naming.router_netns(router_id)
        self.ip.delete_netns(ns)  # stops every process in it, radvd too
        if self.radvd is not None:
            self.radvd.remove(ns)
