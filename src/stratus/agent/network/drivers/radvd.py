"""Router advertisements from a router namespace: one ``radvd`` per router with IPv6
interfaces, as Neutron's L3 agent runs it.

Every ``qr-`` device on an IPv6 subnet advertises the router (it is the subnet's default
gateway); the prefix goes into the RA by the subnet's ``ipv6_ra_mode``:

* ``slaac`` and ``dhcpv6-stateless``: the prefix with the autonomous flag (hosts form
  their EUI-64 address), plus the "other configuration" flag for stateless (DNS and the
  rest from DHCPv6);
* ``dhcpv6-stateful``: the "managed" flag and the prefix without the autonomous flag
  (addresses from DHCPv6 only);
* no RA mode: the router only (an address mode alone means: the addresses come from
  elsewhere, as Neutron has it).

Level-triggered like dnsmasq (``dnsmasq.py``): its files live in
``<state_dir>/ra/<namespace>/``; a changed configuration is re-read on SIGHUP; a radvd
that died, or runs in a namespace that is no longer the one of that name, is started
again. Removing the router's namespace stops it (every process in a namespace is stopped
before the namespace goes) and :func:`remove` drops its files.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

from stratus.agent.ip_lib import (
    IpLib,
    named_netns_identity,
    pid_running,
    process_netns_identity,
    read_pidfile,
    stop_pid,
)
from stratus.agent.network.drivers.base import DriverError
from stratus.contracts.network import Subnet

LOG = logging.getLogger(__name__)
RA_INTERVALS = (30, 100)  # MinRtrAdvInterval, MaxRtrAdvInterval (seconds, Neutron's)


def render(interfaces: list[tuple[str, int, list[Subnet]]]) -> str:
    """radvd.conf for ``(device, mtu, its IPv6 subnets)`` of a router."""
    out = []
    for dev, mtu, subnets in sorted(interfaces, key=lambda i: i[0]):
        modes = {s.ipv6_ra_mode for s in subnets}
        lines = ["AdvSendAdvert on;",
                 f"MinRtrAdvInterval {RA_INTERVALS[0]};",
                 f"MaxRtrAdvInterval {RA_INTERVALS[1]};"]
        if mtu >= 1280:
            lines.append(f"AdvLinkMTU {mtu};")
        if "dhcpv6-stateless" in modes:
            lines.append("AdvOtherConfigFlag on;")
        if "dhcpv6-stateful" in modes:
            lines.append("AdvManagedFlag on;")
        dns = sorted({d for s in subnets for d in s.dns_nameservers if ":" in d})
        if dns:
            lines.append(f"RDNSS {' '.join(dns)} {{}};")
        for sub in sorted(subnets, key=lambda s: s.cidr):
            if sub.ipv6_ra_mode is None:
                continue
            auto = "on" if sub.ipv6_ra_mode in ("slaac", "dhcpv6-stateless") else "off"
            lines.append(f"prefix {sub.cidr} {{ AdvOnLink on; AdvAutonomous {auto}; }};")
        out.append(f"interface {dev} {{\n" + "".join(f"  {x}\n" for x in lines) + "};\n")
    return "".join(out)


class Radvd:
    """The radvd of each router namespace (files under ``<state_dir>/ra``)."""

    def __init__(self, ip: IpLib, state_dir: str, radvd: str = "radvd"):
        self.ip = ip
        self.root = Path(state_dir) / "ra"
        self.radvd = radvd

    def _dir(self, ns: str) -> Path:
        return self.root / ns

    def pid(self, ns: str) -> int | None:
        pidfile = self._dir(ns) / "pid"
        pid = read_pidfile(pidfile)
        return pid if pid_running(pid) else None

    def ensure(self, ns: str, interfaces: list[tuple[str, int, list[Subnet]]]) -> None:
        """radvd runs in ``ns`` advertising ``interfaces``; none when there are none."""
        if not interfaces:
            self.remove(ns)
            return
        d = self._dir(ns)
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "radvd.conf"
        text = render(interfaces)
        try:
            changed = conf.read_text() != text
        except OSError:
            changed = True
        if changed:
            tmp = conf.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            os.replace(tmp, conf)
        pid = self.pid(ns)
        if pid is not None and process_netns_identity(pid) != named_netns_identity(ns):
            LOG.info("radvd in %s runs in a deleted namespace: restarting it", ns)
            stop_pid(pid)
            pid = None
        if pid is not None:
            if changed:
                LOG.info("radvd in %s: reloading (pid %s)", ns, pid)
                os.kill(pid, signal.SIGHUP)
            return
        LOG.info("starting radvd in %s", ns)
        (d / "pid").unlink(missing_ok=True)
        self.ip.runner.run(["ip", "netns", "exec", ns, self.radvd, "-C", str(conf),
                            "-p", str(d / "pid"), "-m", "logfile", "-l", str(d / "log")])
        for _ in range(50):  # radvd writes its pid file once it runs in the background
            if self.pid(ns) is not None:
                return
            time.sleep(0.1)
        if self.pid(ns) is None:
            raise DriverError(f"radvd in {ns} did not start (see {d / 'log'})", temporary=True)

    def namespaces(self) -> set[str]:
        """The namespaces with a radvd directory."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir()}

    def remove(self, ns: str) -> None:
        """Stop the namespace's radvd (by pid) and drop its files."""
        pid = self.pid(ns)
        if pid is not None:
            stop_pid(pid)
        shutil.rmtree(self._dir(ns), ignore_errors=True)
