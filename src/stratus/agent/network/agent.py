"""``stratus-network-agent``: builds the network agent from the ``[agent]`` settings and
runs it (the loop, ``--once`` or ``--cleanup``).

``build_agent`` picks the L2 driver (``l2_backend``: ``linuxbridge`` or ``ovs``), the
DHCP, router, firewall and metadata proxy drivers, and the state source: the network
API (``network_state_url`` over http(s), with the ``[agent]`` service user) or a JSON
file. A bad setting or a missing/unknown config file is one line on stderr and exit
status 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from stratus.agent.ip_lib import IpLib
from stratus.agent.network.devwatch import DeviceWatch
from stratus.agent.network.drivers.base import L2Driver
from stratus.agent.network.drivers.dnsmasq import DnsmasqDriver
from stratus.agent.network.drivers.metadata import ProcessMetadataProxy
from stratus.agent.network.drivers.nft_firewall import NftFirewall
from stratus.agent.network.drivers.router import NamespaceRouterDriver
from stratus.agent.network.external import ExternalBridge
from stratus.agent.network.legacy import cleanup_legacy
from stratus.agent.network.naming import Naming
from stratus.agent.network.reconcile import NetworkAgent, NetworkDrivers
from stratus.agent.network.sources import (
    MAX_LONG_POLL,
    HostReporter,
    HttpSource,
    JsonFileSource,
    StateSource,
)
from stratus.agent.runner import CommandError, Runner
from stratus.common.clients import PasswordAuth
from stratus.common.config import Config, ConfigError
from stratus.common.logs import setup_agent_logging
from stratus.contracts.network import MetadataSettings, ModelError

LOG = logging.getLogger(__name__)
PROG = "stratus-network-agent"


def _mappings(raw: str) -> dict[str, str]:
    result = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        physnet, _, iface = item.partition(":")
        if not iface:
            raise ValueError(f"physical_interface_mappings entry {item!r} is not physnet:iface")
        result[physnet.strip()] = iface.strip()
    return result


def _runner(config: Config) -> Runner:
    ovs_rundir = config.get("agent", "ovs_rundir")
    return Runner(netns=config.get("agent", "host_netns") or None,
                  env={"OVS_RUNDIR": ovs_rundir} if ovs_rundir else None)


def build_agent(config: Config) -> tuple[NetworkAgent, float, float]:
    """The agent and its intervals from ``[agent]`` settings."""
    s = "agent"
    runner = _runner(config)
    ip = IpLib(runner)
    host = config.get(s, "host") or socket.gethostname()
    try:
        naming = Naming(deploy_prefix=config.get("DEFAULT", "deploy_prefix"),
                        netns_prefix=config.get(s, "netns_prefix"),
                        nft_prefix=config.get(s, "nft_prefix"), host=host)
    except ModelError as exc:
        raise ValueError(f"[DEFAULT] {exc}") from None
    state_dir = config.get(s, "state_dir")
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    backend = config.get(s, "l2_backend")
    mappings = _mappings(config.get(s, "physical_interface_mappings"))
    local_ip = config.get(s, "underlay_ip")
    l2: L2Driver
    if backend == "linuxbridge":
        from stratus.agent.network.drivers.linuxbridge import LinuxBridgeDriver
        l2 = LinuxBridgeDriver(ip, local_ip, config.get(s, "underlay_interface") or None,
                               mappings, naming=naming)
    elif backend == "ovs":
        from stratus.agent.network.drivers.ovs import OvsDriver
        l2 = OvsDriver(ip, local_ip, tunnel_type=config.get(s, "tunnel_type"),
                       datapath_type=config.get(s, "datapath_type"),
                       underlay_interface=config.get(s, "underlay_interface") or None,
                       physical_bridge_mappings=mappings, naming=naming)
    else:
        raise ValueError(f"[agent] l2_backend={backend!r} is not ovs or linuxbridge")
    drivers = NetworkDrivers(
        l2=l2,
        dhcp=DnsmasqDriver(ip, naming, state_dir),
        routers=NamespaceRouterDriver(ip, naming, state_dir),
        firewall=NftFirewall(runner, naming),
        metadata=ProcessMetadataProxy(ip, state_dir,
                                      listen_port=config.get_int(s, "metadata_proxy_port"),
                                      naming=naming),
    )
    url = config.get(s, "network_state_url")
    source: StateSource
    reporter: HostReporter | None = None
    if url.startswith(("http://", "https://")):
        auth = None
        if config.get(s, "username"):
            auth = PasswordAuth(config.get("DEFAULT", "identity_url"), config.get(s, "username"),
                                config.get(s, "password"), config.get(s, "project_name"))
        http = HttpSource(url, host, auth,
                          underlay_ip=local_ip or None,
                          network_node=config.get_bool(s, "network_node"), l2_backend=backend)
        source, reporter = http, http
    else:
        source = JsonFileSource(url.removeprefix("file://"))
    metadata = MetadataSettings(upstream_url=config.get(s, "metadata_url"),
                                shared_secret=config.get(s, "metadata_shared_secret"))
    external = None
    if config.get(s, "external_bridge"):
        external = ExternalBridge(ip, config.get(s, "external_bridge"),
                                  config.get(s, "external_bridge_cidr"), naming.deploy_prefix)
    agent = NetworkAgent(drivers, source, metadata, reporter, naming=naming, external=external)
    return (agent, float(config.get_int(s, "resync_interval", minimum=1)),
            float(config.get_int(s, "retry_interval", minimum=1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--config-file",
                        help="default: $STRATUS_CONFIG_FILE or /etc/stratus/stratus.conf")
    parser.add_argument("--once", action="store_true", help="converge once and exit")
    parser.add_argument("--cleanup-legacy", action="store_true",
                        help="once, when upgrading from a release without deploy prefixes: "
                             "remove that release's unprefixed objects from this host "
                             "(qdhcp-/qrouter- namespaces, their dnsmasq and proxies, brq/qbr "
                             "bridges, vxlan- devices, stratus_sg/stratus_antispoof tables, "
                             "its br-int/br-tun) and exit; needs no API")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove everything of this deploy (its [DEFAULT] deploy_prefix) "
                             "from this host (namespaces, dnsmasq, proxies, nftables tables, "
                             "segments, bridges) and exit; needs no API; with Open vSwitch "
                             "stopped or not installed it removes the rest and names what it "
                             "left (exit 1 if OVS bridges remain)")
    args = parser.parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    try:
        config = Config.load()
        setup_agent_logging(config.get_bool("DEFAULT", "debug"))  # HTTP traffic at DEBUG
        agent, resync, retry = build_agent(config)
        wait = min(float(config.get_int("agent", "long_poll_wait", minimum=0)), MAX_LONG_POLL)
    except (ConfigError, ValueError) as exc:  # a bad setting: one line, not a traceback
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    if args.cleanup_legacy:
        try:
            s = "agent"
            cleanup_legacy(IpLib(_runner(config)), config.get(s, "state_dir"),
                           list(_mappings(config.get(s, "physical_interface_mappings")).values()),
                           netns_prefix=config.get(s, "netns_prefix"),
                           nft_prefix=config.get(s, "nft_prefix"))
        except CommandError as exc:
            LOG.error("cleanup-legacy: %s", exc)
            return 1
        return 0
    if args.cleanup:
        return 0 if agent.cleanup(config.get("agent", "host") or socket.gethostname()) else 1
    if args.once:
        report = agent.reconcile_once()
        return 0 if report.ok else 1
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()
        agent.wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    LOG.info("%s starting for host %s", PROG, config.get("agent", "host"))
    # netlink link events wake the loop when a tap it waits for appears (devwatch.py)
    agent.devwatch = DeviceWatch(agent.wake, _runner(config).wrap(["ip", "-o", "monitor",
                                                                   "link"]))
    agent.devwatch.start()
    try:
        agent.run(resync, retry, stop, long_poll_wait=wait)
    finally:
        agent.devwatch.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
