"""Runs one metadata proxy process (``stratus.agent.network.metadata_proxy``) per namespace.

State: ``<state_dir>/metadata/<netns>.json`` (settings, mode 0600: it holds
the shared secret, which never appears on a command line) and
``<netns>.pid``. A proxy whose settings changed is restarted; one that runs
with the right settings is left alone.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from stratus.agent.ip_lib import IpLib, pid_running, read_pidfile, stop_pid
from stratus.agent.network.drivers.base import DriverError, MetadataProxyDriver
from stratus.contracts.network import MetadataSettings

LOG = logging.getLogger(__name__)


class ProcessMetadataProxy(MetadataProxyDriver):
    def __init__(self, ip: IpLib, state_dir: str, python: str = sys.executable,
                 listen_port: int = 80):
        self.ip = ip
        self.dir = Path(state_dir) / "metadata"
        self.python = python
        self.listen_port = listen_port

    def _paths(self, netns: str) -> tuple[Path, Path]:
        return self.dir / f"{netns}.json", self.dir / f"{netns}.pid"

    def pid(self, netns: str) -> int | None:
        conf, pidfile = self._paths(netns)
        pid = read_pidfile(pidfile)
        return pid if pid_running(pid, str(conf)) else None

    def ensure_proxy(self, netns: str, network_id: str, settings: MetadataSettings,
                     subnets: dict[str, str] | None = None) -> None:
        if not settings.shared_secret:
            raise DriverError(
                "metadata shared secret is empty: refusing to start the metadata proxy "
                "(set [agent] metadata_shared_secret)"
            )
        if not settings.upstream_url:
            raise DriverError("metadata upstream URL is empty (set [agent] metadata_url)")
        self.dir.mkdir(parents=True, exist_ok=True)
        conf, pidfile = self._paths(netns)
        content = json.dumps({
            "netns": netns, "netns_path": f"/run/netns/{netns}", "network_id": network_id,
            "subnets": dict(sorted((subnets or {}).items())),
            "upstream_url": settings.upstream_url, "shared_secret": settings.shared_secret,
            "listen_host": "169.254.169.254", "listen_port": self.listen_port,
            "pid_file": str(pidfile),
        }, sort_keys=True)
        try:
            same = conf.read_text() == content
        except OSError:
            same = False
        pid = self.pid(netns)
        if same and pid:
            return
        if pid:
            LOG.info("metadata proxy in %s: settings changed, restarting", netns)
            stop_pid(pid)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        pidfile.unlink(missing_ok=True)
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
        return {p.stem for p in self.dir.glob("*.json")}

    def remove_proxy(self, netns: str) -> None:
        pid = self.pid(netns)
        if pid:
            stop_pid(pid)
        for path in (*self._paths(netns), self.dir / f"{netns}.log"):
            path.unlink(missing_ok=True)
