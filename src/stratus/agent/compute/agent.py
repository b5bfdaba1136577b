"""``stratus-compute-agent``: the compute agent's console script and its wiring.

:func:`build_agent` turns ``[compute_agent]`` into a
:class:`~stratus.agent.compute.reconcile.ComputeAgent` with the libvirt driver
and the HTTP clients of :mod:`stratus.agent.compute.apis`; :func:`main` runs it
(or one pass with ``--once``). A bad or missing configuration is a one-line
message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from stratus.agent.compute import naming
from stratus.agent.compute.apis import HttpComputeApi, HttpImageApi, HttpNetworkApi
from stratus.agent.compute.hostcheck import HostCheck
from stratus.agent.compute.reconcile import ComputeAgent
from stratus.agent.compute.state import AgentSettings
from stratus.common.clients import Auth, PasswordAuth
from stratus.common.config import Config, ConfigError
from stratus.common.crashpoints import arm
from stratus.common.logs import setup_agent_logging
from stratus.contracts.network import ModelError, check_deploy_prefix

LOG = logging.getLogger("stratus.agent.compute")
PROG = "stratus-compute-agent"
DESCRIPTION = """The compute agent: converges one host's servers.

It reads the host's assignments from the compute API
(GET /v2.1/stratus/compute-hosts/{host}/servers, long-polled), converges every
server through libvirt (image cache, disks, config drive, taps, port status
wait, domain, power state, reboots, snapshots, deletion), reports each server's
real state and heartbeats the host's resources. See docs/compute-agent.md.
"""


def _check_kvm_device(path: str = "/dev/kvm") -> None:
    """libvirt re-probes qemu's capabilities on every call (tens of seconds per define)
    while /dev/kvm exists but its qemu user cannot open it: say so (the compute role
    makes it root:kvm 0660)."""
    with contextlib.suppress(OSError):
        st = os.stat(path)
        if st.st_mode & 0o060 != 0o060 or st.st_gid == 0:
            LOG.warning("%s is not group-kvm read-write (mode %o): libvirt will re-probe "
                        "qemu on every domain change; run: chgrp kvm %s; chmod 0660 %s",
                        path, st.st_mode & 0o777, path, path)


def _route_ip(url: str) -> str:
    """The local address the host uses to reach ``url`` (its host_ip)."""
    parts = urlsplit(url)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((parts.hostname or "127.0.0.1", parts.port or 80))
            return str(s.getsockname()[0])
    except OSError:
        return ""


def _vnc_listen(config: Config, host_ip: str) -> str | None:
    """The guests' VNC address: ``vnc_listen``, else the management address (host_ip),
    never a wildcard unless set; None when ``vnc_enabled`` is off."""
    if not config.get_bool("compute_agent", "vnc_enabled"):
        return None
    return config.get("compute_agent", "vnc_listen") or host_ip or "127.0.0.1"


def build_agent(config: Config) -> ComputeAgent:
    """The agent ``[compute_agent]`` describes (creates the instances directory)."""
    from stratus.agent.compute.virt.libvirt import (
        LibvirtDriver,
        detect_virt_type,
        kvm_can_boot_probe,
    )
    from stratus.agent.ip_lib import IpLib
    from stratus.agent.runner import Runner

    s = "compute_agent"
    host = config.get(s, "host") or socket.gethostname()
    compute_url = config.get(s, "compute_url")
    try:
        deploy_prefix = check_deploy_prefix(config.get("DEFAULT", "deploy_prefix"))
    except ModelError as exc:
        raise ConfigError(f"[DEFAULT] deploy_prefix: {exc}") from exc
    settings = AgentSettings(
        host=host,
        instances_path=config.get(s, "instances_path"),
        deploy_prefix=deploy_prefix,
        resync_interval=float(config.get_int(s, "resync_interval", minimum=1)),
        heartbeat_interval=float(config.get_int(s, "heartbeat_interval", minimum=1)),
        retry_interval=float(config.get_int(s, "retry_interval", minimum=1)),
        vif_plug_wait=config.get_bool(s, "vif_plug_wait"),
        vif_plug_timeout=float(config.get_int(s, "vif_plug_timeout", minimum=1)),
        shutdown_timeout=float(config.get_int(s, "shutdown_timeout", minimum=0)),
        image_cache_max_age=float(config.get_int(s, "image_cache_max_age", minimum=0)),
        console_interval=float(config.get_int(s, "console_interval", minimum=1)),
        workers=config.get_int(s, "workers", minimum=1),
        vcpus=config.get_int(s, "vcpus", minimum=0),
        memory_mb=config.get_int(s, "memory_mb", minimum=0),
        disk_gb=config.get_int(s, "disk_gb", minimum=0),
        availability_zone=config.get(s, "availability_zone"),
        host_ip=config.get(s, "host_ip") or _route_ip(compute_url),
        resume_guests_state_on_host_boot=config.get_bool(s, "resume_guests_state_on_host_boot"),
    )
    Path(settings.instances_path).mkdir(parents=True, exist_ok=True)
    os.chmod(settings.instances_path, 0o755)
    _check_kvm_device()
    runner = Runner(timeout=float(config.get_int(s, "command_timeout", minimum=10)))
    uri = config.get(s, "libvirt_uri")
    virt_type = detect_virt_type(config.get(s, "virt_type"),
                                 probe=kvm_can_boot_probe(runner, uri))
    driver = LibvirtDriver(runner, IpLib(runner), settings.instances_path, uri=uri,
                           domain_prefix=naming.domain_prefix(config.get(s, "domain_prefix"),
                                                              deploy_prefix),
                           virt_type=virt_type, lifecycle_events=True,
                           vnc_listen=_vnc_listen(config, settings.host_ip))
    auth: Auth | None = None
    if config.get(s, "username"):
        # [compute_agent] identity_url (the role writes it) or else [DEFAULT] identity_url
        auth = PasswordAuth(config.get(s, "identity_url"), config.get(s, "username"),
                            config.get(s, "password"), config.get(s, "project_name"))
    network = HttpNetworkApi(config.get(s, "network_url"), auth) \
        if settings.vif_plug_wait else None
    LOG.info("compute agent for host %s: virt_type %s, instances in %s", host, virt_type,
             settings.instances_path)
    return ComputeAgent(settings, driver, HttpComputeApi(compute_url, host, auth),
                        HttpImageApi(config.get(s, "image_url"), auth), network,
                        hostcheck=HostCheck())  # /dev/kvm, QEMU re-probes, slow calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file",
                        help="default: $STRATUS_CONFIG_FILE or /etc/stratus/stratus.conf")
    parser.add_argument("--once", action="store_true",
                        help="heartbeat, converge once and exit (status 1 if anything failed)")
    args = parser.parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    try:
        config = Config.load()
        setup_agent_logging(config.get_bool("DEFAULT", "debug"))  # HTTP traffic at DEBUG
        arm(config)  # [debug] crash_at: inert unless a fault-injection test sets it
        agent = build_agent(config)
    except ConfigError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    if args.once:
        result = agent.reconcile_once()
        beat = agent.heartbeat()
        agent.pool.shutdown(wait=True)
        return 0 if result.ok and beat else 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
