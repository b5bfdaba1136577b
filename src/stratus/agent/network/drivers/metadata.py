"""Runs one metadata proxy process (``stratus.agent.network.metadata_proxy``) per namespace.

State: ``<state_dir>/metadata/<netns>.json`` (settings, mode 0600: it holds
the shared secret, which never appears on a command line), ``<netns>.pid``,
``<netns>.netns`` (the namespace its socket was bound in, written by the proxy) and, for a
proxy that serves ``fe80::a9fe:a9fe`` too, ``<netns>.hosts`` (MAC -> fixed IPs, which the
proxy re-reads: a port added to the network restarts nothing; ``metadata_v6``). The
device's ifindex is part of the settings: a device recreated under a running proxy
leaves its link-local socket scoped to the old one, so it is restarted.
The namespace name carries the deploy's prefix, so only our own proxies are listed.

Level-triggered on what matters, every pass: the proxy is alive, its socket is in the
namespace that has the name now (a namespace deleted and recreated under it leaves
it listening in the dead one) and its settings are the wanted ones; otherwise it is
restarted. One that runs as wanted is left alone.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from stratus.agent.ip_lib import (
    IpLib,
    named_netns_identity,
    pid_running,
    read_pidfile,
    stop_pid,
)
from stratus.agent.network.drivers.base import DriverError, MetadataProxyDriver
from stratus.agent.network.metadata_v6 import METADATA_V6_IP, LinkLocalMetadata, write_hosts
from stratus.agent.network.naming import Naming
from stratus.contracts.network import MetadataSettings

LOG = logging.getLogger(__name__)


class ProcessMetadataProxy(MetadataProxyDriver):
    def __init__(self, ip: IpLib, state_dir: str, python: str = sys.executable,
                 listen_port: int = 80, naming: Naming | None = None):
        self.ip = ip
        self.naming = naming or Naming()
        self.dir = Path(state_dir) / "metadata"
        self.python = python
        self.listen_port = listen_port

    def _paths(self, netns: str) -> tuple[Path, Path]:
        return self.dir / f"{netns}.json", self.dir / f"{netns}.pid"

    def _id_file(self, netns: str) -> Path:
        return self.dir / f"{netns}.netns"

    def _hosts_file(self, netns: str) -> Path:
        return self.dir / f"{netns}.hosts"

    def _listen_v6(self, netns: str, link_local: LinkLocalMetadata | None) -> dict[str, object]:
        """The settings of the link-local listener (none without ``link_local``)."""
        if link_local is None:
            return {}
        ifindex = next((link.get("ifindex") for link in self.ip.links(netns)
                        if link.get("ifname") == link_local.interface), None)
        if ifindex is None:
            raise DriverError(f"metadata proxy in {netns}: no device {link_local.interface} "
                              "to listen on fe80::a9fe:a9fe", temporary=True)
        hosts = self._hosts_file(netns)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_hosts(str(hosts), link_local.hosts)
        return {"listen_v6": {"address": METADATA_V6_IP, "interface": link_local.interface,
                              "ifindex": ifindex},
                "slaac_prefixes": list(link_local.slaac_prefixes), "hosts_file": str(hosts)}

    def bound_in_current_netns(self, netns: str) -> bool:
        """Whether the proxy's socket is in the namespace that has the name now."""
        try:
            bound = self._id_file(netns).read_text()
        except OSError:
            return False
        return bound == named_netns_identity(netns)

    def pid(self, netns: str) -> int | None:
        conf, pidfile = self._paths(netns)
        pid = read_pidfile(pidfile)
        return pid if pid_running(pid, str(conf)) else None

    def ensure_proxy(self, netns: str, network_id: str, settings: MetadataSettings,
                     subnets: dict[str, str] | None = None,
                     link_local: LinkLocalMetadata | None = None) -> None:
        if not settings.shared_secret:
            raise DriverError(
                "metadata shared secret is empty: refusing to start the metadata proxy "
                "(set [agent] metadata_shared_secret)"
            )
        if not settings.upstream_url:
            raise DriverError("metadata upstream URL is empty (set [agent] metadata_url)")
        self.dir.mkdir(parents=True, exist_ok=True)
        conf, pidfile = self._paths(netns)
        v6 = self._listen_v6(netns, link_local)
        if not v6:
            self._hosts_file(netns).unlink(missing_ok=True)
        content = json.dumps({**v6,
            "netns": netns, "netns_path": f"/run/netns/{netns}", "network_id": network_id,
            "subnets": dict(sorted((subnets or {}).items())),
            "upstream_url": settings.upstream_url, "shared_secret": settings.shared_secret,
            "listen_host": "169.254.169.254", "listen_port": self.listen_port,
            "pid_file": str(pidfile), "netns_id_file": str(self._id_file(netns)),
        }, sort_keys=True)
        try:
            same = conf.read_text() == content
        except OSError:
            same = False
        pid = self.pid(netns)
        here = self.bound_in_current_netns(netns)
        if same and pid and here:
            return
        if pid:
            why = "settings changed" if not same else (
                "its socket is in a namespace deleted since (not the current one)")
            LOG.info("metadata proxy in %s: %s, restarting (pid %s)", netns, why, pid)
            stop_pid(pid)
        elif same and conf.exists():
            LOG.info("metadata proxy in %s is not running, starting it", netns)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        pidfile.unlink(missing_ok=True)
        self._id_file(netns).unlink(missing_ok=True)
        log = self.dir / f"{netns}.log"
        self.ip.runner.run(
            ["setsid", "-f", "sh", "-c",
             'exec "$0" -m stratus.agent.network.metadata_proxy --config "$1" >>"$2" 2>&1',
             self.python, str(conf), str(log)]
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.pid(netns):
                LOG.info("metadata proxy in %s started", netns)
                return
            time.sleep(0.05)
        raise DriverError(f"metadata proxy in {netns} did not start (see {log})", temporary=True)

    def list_proxies(self) -> set[str]:
        if not self.dir.is_dir():
            return set()
        # a hosts file alone: the agent stopped between writing it and the settings
        found = {p.stem for p in (*self.dir.glob("*.json"), *self.dir.glob("*.hosts"))}
        return {ns for ns in found if self.naming.owns_netns(ns)}

    def remove_proxy(self, netns: str) -> None:
        pid = self.pid(netns)
        if pid:
            stop_pid(pid)
        for path in (*self._paths(netns), self._id_file(netns), self._hosts_file(netns),
                     self.dir / f"{netns}.log"):
            path.unlink(missing_ok=True)
