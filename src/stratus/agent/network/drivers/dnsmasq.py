"""DHCP: one dnsmasq per network in namespace ``<prefix>-qdhcp-<network>``.

Static leases only (``dhcp-range ... static`` plus a ``dhcp-hostsfile``), so
dnsmasq never pings before answering. The hosts and options files are
re-read on SIGHUP, which keeps the lease file and the process: changing the
ports of a network never drops leases. The command line only changes when the
namespace's interface or the subnets change, and only then is dnsmasq
restarted. Everything lives under ``<state_dir>/dhcp/<namespace>/`` (the namespace
name carries the deploy's prefix, and so do dnsmasq's command line and pid file).

Level-triggered on what matters, every pass: dnsmasq is alive (its pid file names a
live dnsmasq of that directory), it runs in the namespace that now has the name
(``/proc/<pid>/ns/net`` is ``/run/netns/<namespace>``: a namespace deleted and
recreated under it leaves it serving a dead one), its interface is the one it started
on (``<dir>/interface`` holds the name and ifindex: a recreated veth gets another
index, and dnsmasq bound to the old one answers nothing), and its command line is
the one wanted. Otherwise it is restarted.

IPv6 subnets (docs/ipv6.md), by the subnet's modes as Neutron's DHCP agent serves them:
DHCPv6 addresses from the static host entries (``dhcpv6-stateful``, or no mode), DHCPv6
information only (``dhcpv6-stateless``: DNS servers), nothing for ``slaac`` (the host
forms its EUI-64 address from the router's advertisements). Router advertisements come
from the router of the subnet (``radvd.py``); dnsmasq sends them only for a subnet with
an RA mode and no router of the cloud on it (``Subnet.router_ra`` false), with a router
lifetime of 0: it announces the prefix and the flags, never itself as a default router.
The DHCP port holds its IPv6 address (its EUI-64 one on a SLAAC/stateless subnet) and
takes nothing from RAs.

A lease whose host entry is gone (its port was deleted, or its address or MAC
changed) is released with ``dhcp_release`` (package ``dnsmasq-utils``) run in
the namespace once dnsmasq has the new hosts file, so the address can be
offered to its next owner at once instead of when the old lease expires.
Level-triggered: every pass releases whatever lease the hosts file no longer
backs.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
from pathlib import Path

from stratus.agent.ip_lib import (
    IpLib,
    named_netns_identity,
    pid_running,
    process_netns_identity,
    read_pidfile,
    stop_pid,
)
from stratus.agent.network.drivers.base import DhcpDriver, DriverError, L2Driver
from stratus.agent.network.ipv6 import (
    ensure_addresses6,
    ensure_link_address6,
    is_v6,
    no_autoconf,
    split_families,
)
from stratus.agent.network.metadata_v6 import METADATA_V6_CIDR
from stratus.agent.network.naming import Naming
from stratus.agent.runner import CommandError
from stratus.contracts.network import DhcpServer, Network, Subnet

LOG = logging.getLogger(__name__)
METADATA_IP = "169.254.169.254"


def _write_if_changed(path: Path, content: str) -> bool:
    try:
        if path.read_text() == content:
            return False
    except OSError:
        pass
    tmp = path.with_suffix(".tmp")
    tmp.write_text(content)
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return True


def dnsmasq_ra(subnet: Subnet) -> bool:
    """Whether dnsmasq sends the RAs of an IPv6 subnet: it has an RA mode and no router
    of the cloud on it does."""
    return subnet.ip_version == 6 and subnet.ipv6_ra_mode is not None and not subnet.router_ra


def v6_range_mode(subnet: Subnet) -> str | None:
    """dnsmasq's ``dhcp-range`` mode for an IPv6 subnet, None when dnsmasq has nothing to
    do for it (SLAAC with the router's RAs)."""
    mode = subnet.ipv6_mode
    if mode == "slaac":
        return "ra-only" if dnsmasq_ra(subnet) else None
    if mode == "dhcpv6-stateless":
        return "ra-stateless" if dnsmasq_ra(subnet) else "static"
    return "static"  # stateful, or no mode: addresses from the host entries


def host_tag(mac: str, ip: str = "") -> str:
    """The dnsmasq tag of a host with extra DHCP options (set in the hosts file): one for
    its DHCPv4 entry, another (``q``) for its DHCPv6 one."""
    return ("q" if is_v6(ip) else "p") + mac.replace(":", "").lower()


def render_host_options(server: DhcpServer) -> list[str]:
    """The ports' extra DHCP options (extra_dhcp_opt), one ``dhcp-option`` line each, for
    the tag their host entry sets: ``option:<name>`` for a name, the bare number for a
    numbered option, as dnsmasq reads them; ``option6:<name or number>`` on a DHCPv6
    entry."""
    lines: list[str] = []
    done: set[tuple[str, str]] = set()
    for host in sorted(server.hosts, key=lambda h: (h.mac_address, h.ip_address)):
        tag = host_tag(host.mac_address, host.ip_address)
        for opt in host.options:
            if (tag, opt.name) in done:
                continue
            done.add((tag, opt.name))
            if is_v6(host.ip_address):
                name = f"option6:{opt.name}"
            else:
                name = opt.name if opt.name.isdigit() else f"option:{opt.name}"
            lines.append(f"tag:{tag},{name},{opt.value}")
    return lines

class DnsmasqDriver(DhcpDriver):
    def __init__(self, ip: IpLib, naming: Naming, state_dir: str, dnsmasq: str = "dnsmasq",
                 dhcp_release: str = "dhcp_release"):
        self.ip = ip
        self.naming = naming
        self.state_dir = Path(state_dir) / "dhcp"
        self.dnsmasq = dnsmasq
        self.dhcp_release = dhcp_release

    def netns(self, network_id: str) -> str:
        return self.naming.dhcp_netns(network_id)

    def _dir(self, network_id: str) -> Path:
        return self.state_dir / self.netns(network_id)

    # --- files ------------------------------------------------------------------------
    @staticmethod
    def _served_subnets(server: DhcpServer, network: Network) -> list[tuple[str, str, str]]:
        """(tag, subnet id, our IP) for each DHCP-enabled subnet the DHCP port is on (an
        IPv6 one only when dnsmasq has something to do for it)."""
        ours = {f.subnet_id: f.ip_address for f in server.fixed_ips}
        return [
            (f"s{i}", subnet.id, ours[subnet.id])
            for i, subnet in enumerate(network.subnets)
            if subnet.enable_dhcp and subnet.id in ours
            and (subnet.ip_version == 4 or v6_range_mode(subnet) is not None)
        ]

    def render_hosts(self, server: DhcpServer) -> str:
        lines = []
        for host in sorted(server.hosts, key=lambda h: (h.mac_address, h.ip_address)):
            line = f"{host.mac_address}"
            if host.options:  # extra DHCP options: the host's tag (render_opts)
                line += f",set:{host_tag(host.mac_address, host.ip_address)}"
            line += f",[{host.ip_address}]" if is_v6(host.ip_address) else f",{host.ip_address}"
            if host.hostname:
                line += f",{host.hostname}"
            lines.append(line)
        return "\n".join(lines) + "\n"

    def render_opts(self, server: DhcpServer, network: Network) -> str:
        subnets = {s.id: s for s in network.subnets}
        lines = []
        for tag, subnet_id, our_ip in self._served_subnets(server, network):
            subnet = subnets[subnet_id]
            dns4, dns6 = split_families(subnet.dns_nameservers)
            if subnet.ip_version == 6:
                if dns6:
                    lines.append(f"tag:{tag},option6:dns-server,"
                                 + ",".join(f"[{d}]" for d in sorted(dns6)))
                continue
            lines.append(f"tag:{tag},option:mtu,{network.mtu}")
            if dns4:
                servers = [d for d in subnet.dns_nameservers if d in dns4]
                lines.append(f"tag:{tag},option:dns-server,{','.join(servers)}")
            else:
                lines.append(f"tag:{tag},option:dns-server")
            routes: list[str] = []
            if server.metadata_proxy:
                routes += [f"{METADATA_IP}/32", our_ip]
            for route in subnet.host_routes:
                routes += [route.destination, route.nexthop]
            if subnet.gateway_ip:
                lines.append(f"tag:{tag},option:router,{subnet.gateway_ip}")
                # With option 121 clients ignore option 3: repeat the default route.
                routes += ["0.0.0.0/0", subnet.gateway_ip]
            else:
                lines.append(f"tag:{tag},option:router")
            if routes:
                lines.append(f"tag:{tag},option:classless-static-route,{','.join(routes)}")
        lines += render_host_options(server)
        return "\n".join(lines) + "\n"

    def command(self, server: DhcpServer, network: Network) -> list[str]:
        d = self._dir(server.network_id)
        subnets = {s.id: s for s in network.subnets}
        argv = [
            self.dnsmasq, "--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0",
            f"--pid-file={d / 'pid'}", f"--dhcp-leasefile={d / 'leases'}",
            f"--dhcp-hostsfile={d / 'hosts'}", f"--dhcp-optsfile={d / 'opts'}",
            "--bind-interfaces", f"--interface={self.naming.dhcp_dev(server.port_id)}",
            "--except-interface=lo", "--dhcp-authoritative", "--no-ping",
            f"--dhcp-lease-max={max(256, 2 * len(server.hosts))}",
            f"--log-facility={d / 'log'}", "--log-dhcp",
        ]
        ra_devs = False
        for tag, subnet_id, _ in self._served_subnets(server, network):
            subnet = subnets[subnet_id]
            net = ipaddress.ip_network(subnet.cidr, strict=False)
            if net.version == 6:
                ra_devs |= dnsmasq_ra(subnet)
                argv.append(f"--dhcp-range=set:{tag},{net.network_address},"
                            f"{v6_range_mode(subnet)},{net.prefixlen},{server.lease_seconds}s")
                continue
            argv.append(
                f"--dhcp-range=set:{tag},{net.network_address},static,{net.netmask},"
                f"{server.lease_seconds}s"
            )
        if ra_devs:  # not a default router: an RA every 30 s, router lifetime 0
            argv += ["--enable-ra",
                     f"--ra-param={self.naming.dhcp_dev(server.port_id)},30,0"]
        return argv

    # --- interface --------------------------------------------------------------------
    def ensure_dhcp(self, server: DhcpServer, network: Network, l2: L2Driver) -> None:
        ns = self.netns(server.network_id)
        self.ip.ensure_netns(ns)
        host_dev = self.naming.tap(server.port_id)
        ns_dev = self.naming.dhcp_dev(server.port_id)
        self.ip.ensure_veth(host_dev, ns_dev, ns, server.mac_address, network.mtu, None)
        l2.plug(network, host_dev, server.port_id, server.mac_address, instance=False)
        prefixes = {s.id: s.prefixlen for s in network.subnets}
        wanted = {f"{f.ip_address}/{prefixes.get(f.subnet_id, 32)}" for f in server.fixed_ips}
        if server.metadata_proxy:
            wanted.add(f"{METADATA_IP}/32")
        v4, v6 = split_families(wanted)
        self.ip.ensure_addresses(ns_dev, v4, ns)
        if v6 or any(s.ip_version == 6 for s in network.subnets):
            no_autoconf(self.ip, ns_dev, ns)
            ensure_addresses6(self.ip, ns_dev, v6, ns)
        # metadata over IPv6 on every network with a proxy here (metadata_v6.py)
        ensure_link_address6(self.ip, ns_dev, METADATA_V6_CIDR, server.metadata_proxy, ns)
        interface = ""
        for link in self.ip.links(ns):  # stale ports of an earlier DHCP port id
            if link["ifname"] == ns_dev:
                interface = f"{ns_dev} {link.get('ifindex')}\n"
            elif link["ifname"].startswith("ns-"):
                self.ip.delete_link(link["ifname"], ns)

        d = self._dir(server.network_id)
        d.mkdir(parents=True, exist_ok=True)
        # dnsmasq drops to an unprivileged user before it reads hosts/opts on SIGHUP
        for path in (self.state_dir.parent, self.state_dir, d):
            if path.stat().st_mode & 0o005 != 0o005:
                path.chmod(path.stat().st_mode | 0o005)
        closed = [str(p) for p in self.state_dir.parent.parents if not p.stat().st_mode & 0o001]
        if closed:
            raise DriverError(
                f"dnsmasq's unprivileged user cannot reach {d}: {', '.join(closed)} is not "
                f"traversable by others; put [agent] state_dir where every parent is "
                f"(e.g. /var/lib/stratus-agent)")
        changed = _write_if_changed(d / "hosts", self.render_hosts(server))
        changed |= _write_if_changed(d / "opts", self.render_opts(server, network))
        argv = self.command(server, network)
        pid = read_pidfile(d / "pid")
        if pid_running(pid, str(d / "pid")):
            assert pid is not None
            why = self._restart_reason(pid, ns, argv, interface, d)
            if why is None:
                if changed:
                    LOG.info("dhcp %s: reloading dnsmasq (pid %s)", server.network_id, pid)
                    os.kill(pid, signal.SIGHUP)
                self.release_stale_leases(server)
                return
            LOG.info("dhcp %s: %s, restarting dnsmasq (pid %s)", server.network_id, why, pid)
            stop_pid(pid)
        if not self._served_subnets(server, network):
            return
        LOG.info("dhcp %s: starting dnsmasq in %s", server.network_id, ns)
        _write_if_changed(d / "interface", interface)
        self.ip.runner.run(["ip", "netns", "exec", ns, *argv])
        if not pid_running(read_pidfile(d / "pid"), str(d / "pid")):
            raise DriverError(f"dnsmasq for network {server.network_id} did not start",
                              temporary=True)
        self.release_stale_leases(server)

    @staticmethod
    def _restart_reason(pid: int, ns: str, argv: list[str], interface: str, d: Path
                        ) -> str | None:
        """Why the running dnsmasq ``pid`` is not the one wanted, or None when it is."""
        if process_netns_identity(pid) != named_netns_identity(ns):
            return f"it runs in another namespace than the current {ns}"
        try:
            started_on = (d / "interface").read_text()
        except OSError:
            started_on = ""
        if started_on != interface:
            return "its interface was recreated"
        try:
            actual = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            return "it is gone"
        if [a.decode() for a in actual] != argv:
            return "its command line changed"
        return None

    # --- leases -----------------------------------------------------------------------
    def leases(self, network_id: str) -> list[tuple[str, str]]:
        """(MAC, IP) of every lease in dnsmasq's lease file (empty when there is none).
        A line is ``<expiry> <mac> <ip> <hostname> <client id>``."""
        try:
            text = (self._dir(network_id) / "leases").read_text()
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0].isdigit() and fields[1].count(":") == 5:
                out.append((fields[1].lower(), fields[2]))
        return out

    def stale_leases(self, server: DhcpServer) -> list[tuple[str, str]]:
        """The leases no host entry of ``server`` backs (same MAC and same IP)."""
        wanted = {(h.mac_address.lower(), h.ip_address) for h in server.hosts}
        return [lease for lease in self.leases(server.network_id) if lease not in wanted]

    def release_stale_leases(self, server: DhcpServer) -> list[tuple[str, str]]:
        """``dhcp_release <ns-dev> <ip> <mac>`` in the namespace for every stale lease, so
        dnsmasq drops it (and rewrites its lease file). A failure is logged and retried
        next pass: DHCP keeps working meanwhile. Returns the leases released."""
        ns = self.netns(server.network_id)
        dev = self.naming.dhcp_dev(server.port_id)
        released = []
        for mac, ip in self.stale_leases(server):
            LOG.info("dhcp %s: releasing the lease of %s (%s): no longer a host entry",
                     server.network_id, ip, mac)
            try:
                self.ip.runner.run(["ip", "netns", "exec", ns, self.dhcp_release, dev, ip, mac])
            except CommandError as exc:
                LOG.warning("dhcp %s: cannot release the lease of %s: %s", server.network_id,
                            ip, exc)
                continue
            released.append((mac, ip))
        return released

    def list_dhcp(self) -> set[str]:
        """Networks with a namespace of ours, or only a state directory of ours (its
        namespace deleted under us: the dnsmasq of that directory is stopped too)."""
        prefix = self.naming.dhcp_netns_prefix
        found = {ns[len(prefix):] for ns in self.ip.list_netns(prefix)}
        if self.state_dir.is_dir():
            found |= {p.name[len(prefix):] for p in self.state_dir.iterdir()
                      if p.is_dir() and p.name.startswith(prefix)}
        return found

    def pid(self, network_id: str) -> int | None:
        pidfile = self._dir(network_id) / "pid"
        pid = read_pidfile(pidfile)
        return pid if pid_running(pid, str(pidfile)) else None

    def remove_dhcp(self, network_id: str) -> None:
        pid = self.pid(network_id)
        if pid:
            stop_pid(pid)
        self.ip.delete_netns(self.netns(network_id))
        shutil.rmtree(self._dir(network_id), ignore_errors=True)
