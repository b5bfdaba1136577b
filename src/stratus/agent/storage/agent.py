"""``stratus-storage-agent``: the storage agent's loop, its HTTP clients and its console script.

The loop (:class:`StorageAgent`): a poller thread long-polls the host's desired
state on the volume API (``GET /v3/storage/hosts/{host}/state?since=N&wait=S``)
and wakes the main loop on every new generation; the main loop registers the
host (``POST /v3/storage/hosts``, also the heartbeat, every ``report_interval``),
runs a reconcile pass (:class:`~stratus.agent.storage.reconcile.StorageReconciler`)
whenever it is woken (a new state, a finished job) or at least every
``resync_interval``, and posts the actual inventory after each pass
(``POST /v3/storage/hosts/{host}/report``). See docs/storage-agent.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from stratus.agent.images import HttpImageApi
from stratus.agent.runner import Runner
from stratus.agent.storage.pool import Pool
from stratus.agent.storage.rawview import RawViews
from stratus.agent.storage.reconcile import StorageReconciler
from stratus.agent.storage.tgt import AccountJournal, Tgt
from stratus.common.clients import ApiClient, Auth, PasswordAuth, ServiceError
from stratus.common.config import Config, ConfigError
from stratus.common.logs import setup_agent_logging
from stratus.contracts.volume import (
    ContractError,
    HostRegistration,
    StorageHostState,
    StorageReport,
    host_path,
    report_path,
    state_path,
)

LOG = logging.getLogger("stratus.agent.storage")
PROG = "stratus-storage-agent"
DESCRIPTION = """The storage agent: converges one storage host's volume pool and iSCSI targets.

It registers the host with the volume API, long-polls the host's desired state
(volumes, snapshots, exports, uploads), makes the pool's files with qemu-img and
the tgt targets with tgtadm, removes whatever is no longer wanted, and reports the
host's actual inventory after each pass. See docs/storage-agent.md.
"""


@dataclass
class AgentSettings:
    """``[storage_agent]`` as the loop uses it (docs/storage-agent.md)."""

    host: str
    portal: str
    iqn_prefix: str
    formats: list[str]
    report_interval: float = 10.0
    resync_interval: float = 30.0
    retry_interval: float = 5.0
    poll_wait: float = 30.0


class StorageApi(Protocol):
    """The volume API's storage endpoints for one host (:class:`HttpStorageApi`; a fake
    in the unit tests)."""

    def register(self, reg: HostRegistration) -> None: ...

    def state(self, since: int | None = None, wait: float = 0.0) -> StorageHostState: ...

    def report(self, report: StorageReport) -> None: ...


class HttpStorageApi:
    """The storage endpoints of the volume API for one host (contracts/volume.py)."""

    def __init__(self, url: str, host: str, auth: Auth | None):
        self.client = ApiClient(url, auth, timeout=30.0, service="volume")
        self.host = host

    def register(self, reg: HostRegistration) -> None:
        self.client.post(host_path("").rstrip("/"), json=reg.to_dict())

    def state(self, since: int | None = None, wait: float = 0.0) -> StorageHostState:
        doc = self.client.long_poll(state_path(self.host), since, wait).json()
        try:
            return StorageHostState.from_dict(doc)
        except ContractError as exc:
            raise ServiceError(f"volume answered the state of host {self.host} with a "
                               f"document the agent cannot read: {exc}", status=502,
                               temporary=True) from None

    def report(self, report: StorageReport) -> None:
        self.client.post(report_path(self.host), json=report.to_dict())


class StorageAgent:
    """The loop around one :class:`StorageReconciler`."""

    def __init__(self, settings: AgentSettings, api: StorageApi,
                 reconciler: StorageReconciler):
        self.s = settings
        self.api = api
        self.reconciler = reconciler
        reconciler.on_job_done = self.wake_up
        self.wake = threading.Event()
        self.desired: StorageHostState | None = None
        self.last_report: StorageReport | None = None

    def wake_up(self) -> None:
        self.wake.set()

    def registration(self) -> HostRegistration:
        cap, free = self.reconciler.pool.capacity()
        return HostRegistration(host=self.s.host, portal=self.s.portal,
                                iqn_prefix=self.s.iqn_prefix, capacity_gb=cap, free_gb=free,
                                formats=list(self.s.formats))

    def heartbeat(self) -> bool:
        try:
            self.api.register(self.registration())
            return True
        except (ServiceError, OSError) as exc:
            LOG.warning("registration: %s", exc)
            return False

    def pass_once(self, state: StorageHostState) -> StorageReport:
        """One reconcile pass over ``state`` and its report sent."""
        report = self.reconciler.reconcile(state)
        self.api.report(report)
        self.last_report = report
        return report

    def once(self) -> bool:
        """Register, fetch, converge (waiting for the jobs), report: ``--once``."""
        if not self.heartbeat():
            return False
        try:
            state = self.api.state()
            self.pass_once(state)
            self.reconciler.wait_jobs()
            self.pass_once(state)
        except ServiceError as exc:
            LOG.error("%s", exc)
            return False
        return not self.reconciler.faults

    def _poll(self, stop: threading.Event) -> None:
        generation: int | None = None
        while not stop.is_set():
            try:
                state = self.api.state(generation, self.s.poll_wait if generation is not None
                                       else 0.0)
            except ServiceError as exc:
                LOG.warning("state: %s", exc)
                stop.wait(self.s.retry_interval)
                continue
            if state.generation != generation or self.desired is None:
                generation = state.generation
                self.desired = state
                self.wake.set()

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: heartbeat, long-poll, converge and report."""
        while not stop.is_set() and not self.heartbeat():
            stop.wait(self.s.retry_interval)
        poller = threading.Thread(target=self._poll, args=(stop,), name="state-poll",
                                  daemon=True)
        poller.start()
        next_beat = time.monotonic() + self.s.report_interval
        while not stop.is_set():
            timeout = min(self.s.resync_interval, max(0.0, next_beat - time.monotonic()))
            self.wake.wait(timeout)
            self.wake.clear()
            if stop.is_set():
                break
            if time.monotonic() >= next_beat:
                self.heartbeat()
                next_beat = time.monotonic() + self.s.report_interval
            state = self.desired
            if state is None:
                continue
            try:
                self.pass_once(state)
            except ServiceError as exc:
                LOG.warning("report: %s", exc)
            except Exception:  # a pass never kills the agent
                LOG.exception("reconcile pass")
                stop.wait(self.s.retry_interval)
        self.reconciler.shutdown()


def _route_ip(url: str) -> str:
    """The local address the host uses to reach ``url``."""
    parts = urlsplit(url)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((parts.hostname or "127.0.0.1", parts.port or 80))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def iqn_prefix(iqn_base: str, prefix: str, host: str) -> str:
    """``<iqn_base>:<prefix>-<host>`` in the characters an IQN allows."""
    safe = re.sub(r"[^a-z0-9.-]", "-", host.lower()).strip("-.") or "host"
    return f"{iqn_base}:{prefix}-{safe}"


def build_agent(config: Config) -> StorageAgent:
    """The agent ``[storage_agent]`` describes (creates the pool directory)."""
    s = "storage_agent"
    host = config.get(s, "host") or socket.gethostname()
    volume_url = config.get(s, "volume_url")
    prefix = config.get(s, "deploy_prefix")
    fmt = config.get(s, "volume_format")
    if fmt not in ("raw", "qcow2"):
        raise ConfigError(f"setting [{s}] volume_format={fmt!r} is not raw or qcow2")
    portal_ip = config.get(s, "portal_ip") or _route_ip(volume_url)
    portal_port = config.get_int(s, "portal_port", minimum=1)
    control = config.get_int(s, "tgt_control_port", minimum=0)
    settings = AgentSettings(
        host=host, portal=f"{portal_ip}:{portal_port}",
        iqn_prefix=iqn_prefix(config.get(s, "iqn_base"), prefix, host), formats=[fmt],
        report_interval=float(config.get_int(s, "report_interval", minimum=1)),
        resync_interval=float(config.get_int(s, "resync_interval", minimum=1)),
        retry_interval=float(config.get_int(s, "retry_interval", minimum=1)),
        poll_wait=float(config.get_int(s, "poll_wait", minimum=1)),
    )
    pool_path = Path(config.get(s, "pool_path"))
    pool_path.mkdir(parents=True, exist_ok=True)
    try:
        pool = Pool(pool_path, prefix,
                    Runner(timeout=float(config.get_int(s, "command_timeout", minimum=10))),
                    views=RawViews(pool_path, prefix, Runner(timeout=60.0)))
    except ValueError as exc:
        raise ConfigError(f"setting [{s}] deploy_prefix: {exc}") from None
    tgt = Tgt(Runner(timeout=30.0), settings.iqn_prefix,
              AccountJournal(pool_path / f"{prefix}-tgt-accounts.json"),
              control_port=control or None)
    auth: Auth | None = None
    if config.get(s, "username"):
        auth = PasswordAuth(config.get(s, "identity_url"), config.get(s, "username"),
                            config.get(s, "password"), config.get(s, "project_name"))
    reconciler = StorageReconciler(pool, tgt, HttpImageApi(config.get(s, "image_url"), auth),
                                   workers=config.get_int(s, "workers", minimum=1),
                                   retry_interval=settings.retry_interval)
    LOG.info("storage agent for host %s: pool %s (%s), portal %s, targets %s:*", host,
             pool_path, fmt, settings.portal, settings.iqn_prefix)
    return StorageAgent(settings, HttpStorageApi(volume_url, host, auth), reconciler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file",
                        help="default: $STRATUS_CONFIG_FILE or /etc/stratus/stratus.conf")
    parser.add_argument("--once", action="store_true",
                        help="register, converge once (waiting for the jobs), report and exit "
                             "(status 1 if anything failed)")
    args = parser.parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    try:
        config = Config.load()
        setup_agent_logging(config.get_bool("DEFAULT", "debug"))  # HTTP traffic at DEBUG
        agent = build_agent(config)
    except ConfigError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    if args.once:
        ok = agent.once()
        agent.reconciler.shutdown()
        return 0 if ok else 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
