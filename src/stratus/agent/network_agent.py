"""The network agent: a level-triggered reconcile loop over the network drivers.

On start and every ``resync_interval`` seconds the agent reads the desired
state of its host (:mod:`stratus.agent.network_model`) from a
:class:`StateSource` and converges the host both ways: it creates what is
missing, fixes what differs and removes what is ours but no longer desired.
Every driver call is idempotent, so a restart re-reads and converges without
recreating what is already right. Per object, a temporary error is retried
after ``retry_interval``; a permanent one is logged once (until it changes or
goes away).

Edges only make it faster: between passes a watcher thread long-polls the network
API (``since`` the generation of the state last read, ``long_poll_wait`` seconds at a
time) and wakes the loop as soon as the host's state changed; while a port's device is
missing the loop also looks for it every ``DEVICE_POLL`` seconds. A woken pass whose
state equals the last one converged without any problem changes nothing on the host and
is skipped (the periodic passes never are).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from stratus.agent.netdrivers.base import (
    DhcpDriver,
    DriverError,
    FirewallDriver,
    L2Driver,
    MetadataProxyDriver,
    RouterDriver,
)
from stratus.agent.network_model import HostState, MetadataSettings, ModelError
from stratus.agent.runner import CommandError
from stratus.common.clients import PasswordAuth, ServiceError
from stratus.common.config import Config

LOG = logging.getLogger(__name__)
MAX_LONG_POLL = 30.0  # the API's cap
DEVICE_POLL = 0.5  # seconds between looks for a missing device


class StateSource(Protocol):
    """Where the desired state comes from (a JSON file now, the network API later)."""

    def get(self) -> HostState: ...


class WatchableSource(Protocol):
    """A source that can tell when the desired state changed (the network API)."""

    generation: int | None  # of the state last returned by ``get``

    def get(self) -> HostState: ...

    def watch(self, since: int, timeout: float) -> int | None:
        """Block until the generation differs from ``since`` (then return it) or
        ``timeout`` seconds passed (then return ``since``); None: no generations here."""
        ...


class JsonFileSource:
    """Reads the desired state from a JSON file (tests, or a state dropped by hand)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def get(self) -> HostState:
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise DriverError(f"cannot read desired state {self.path}: {exc}",
                              temporary=True) from None
        return HostState.from_json(text)


class HttpSource:
    """GETs the desired state from the network API (``network_state_url`` with
    ``{host}`` substituted), authenticated with a token from ``auth`` when given.
    The body is the :class:`HostState` document, bare or as ``{"host_state": {...}}``.

    It is also the agent's :class:`HostReporter`: the same API (the part of the URL
    before ``/v2.0/``) takes the host's registration and its port statuses."""

    def __init__(self, url: str, host: str, auth: PasswordAuth | None = None,
                 timeout: float = 10.0, underlay_ip: str | None = None,
                 network_node: bool = False):
        self.url = url.replace("{host}", host)
        self.host = host
        self.auth = auth
        self.timeout = timeout
        self.underlay_ip = underlay_ip or None
        self.network_node = network_node
        base = self.url.split("/v2.0/", 1)[0] if "/v2.0/" in self.url else self.url
        self.host_url = f"{base.rstrip('/')}/v2.0/stratus-agent/hosts/{quote(host, safe='')}"
        self.generation: int | None = None
        self._lock = threading.Lock()
        self._prefetched: dict[str, Any] | None = None  # a changed state a watch brought

    def _call(self, method: str, url: str, body: object = None,
              params: dict[str, str] | None = None,
              timeout: float | None = None) -> httpx.Response:
        resp: httpx.Response | None = None
        for attempt in range(2):
            try:
                headers = {"X-Auth-Token": self.auth.token(renew=attempt > 0)} \
                    if self.auth else {}
            except ServiceError as exc:
                raise DriverError(str(exc), temporary=exc.temporary) from None
            try:
                target = httpx.URL(url).copy_merge_params(params) if params else url
                resp = httpx.request(method, target, headers=headers, json=body,
                                     timeout=timeout or self.timeout)
            except httpx.HTTPError as exc:
                raise DriverError(f"network API unreachable: {exc}", temporary=True) from None
            if resp.status_code == 401 and self.auth and attempt == 0:
                continue
            break
        assert resp is not None
        if resp.status_code >= 500:
            raise DriverError(f"network API answered {resp.status_code}", temporary=True)
        if not resp.is_success:
            raise DriverError(f"network API answered {resp.status_code} to {method} {url}: "
                              f"{resp.text[:200]}")
        return resp

    @staticmethod
    def _document(resp: httpx.Response) -> Any:
        try:
            data = resp.json()
        except ValueError:
            raise DriverError("the network API answered a state that is not JSON") from None
        if isinstance(data, dict) and isinstance(data.get("host_state"), dict):
            data = data["host_state"]
        return data

    @staticmethod
    def _generation(data: Any) -> int | None:
        gen = data.get("generation") if isinstance(data, dict) else None
        return gen if isinstance(gen, int) and not isinstance(gen, bool) else None

    def get(self) -> HostState:
        with self._lock:
            data, self._prefetched = self._prefetched, None
        if data is None:
            data = self._document(self._call("GET", self.url))
        state = HostState.from_dict(data)
        self.generation = self._generation(data)
        return state

    def watch(self, since: int, timeout: float) -> int | None:
        """Long-poll the state URL with ``since``/``wait``; a changed state is kept for the
        next ``get``. None when the API sends no generation (it cannot long-poll)."""
        wait = max(0.0, min(timeout, MAX_LONG_POLL))
        resp = self._call("GET", self.url, params={"since": str(since), "wait": f"{wait:g}"},
                          timeout=wait + self.timeout)
        data = self._document(resp)
        gen = self._generation(data)
        if gen is not None and gen != since:
            with self._lock:
                self._prefetched = data
        return gen

    def register(self) -> None:
        self._call("PUT", self.host_url, {"host": {"underlay_ip": self.underlay_ip,
                                                   "network_node": self.network_node}})

    def report_ports(self, active: list[str], down: list[str]) -> None:
        self._call("PUT", self.host_url + "/ports",
                   {"ports": {"active": sorted(active), "down": sorted(down)}})


class HostReporter(Protocol):
    """Where the agent registers its host and reports its ports' status (the network API)."""

    def register(self) -> None: ...

    def report_ports(self, active: list[str], down: list[str]) -> None: ...


class StaticSource:
    """A fixed in-memory desired state (unit tests, benchmarks)."""

    def __init__(self, state: HostState):
        self.state = state

    def get(self) -> HostState:
        return self.state


@dataclass
class NetworkDrivers:
    l2: L2Driver
    dhcp: DhcpDriver
    routers: RouterDriver
    firewall: FirewallDriver
    metadata: MetadataProxyDriver


@dataclass
class ReconcileReport:
    """The outcome of one pass: what failed (temporarily or not) and what waits."""

    temporary: dict[str, str] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)
    waiting_devices: list[str] = field(default_factory=list)
    # port ids plugged and filtered (instance ports) or up in their namespace
    # (DHCP and router ports), and those of the desired state that are not
    active: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.temporary and not self.permanent


class NetworkAgent:
    def __init__(self, drivers: NetworkDrivers, source: StateSource,
                 metadata_defaults: MetadataSettings | None = None,
                 reporter: HostReporter | None = None):
        self.d = drivers
        self.source = source
        self.reporter = reporter
        self.metadata_defaults = metadata_defaults or MetadataSettings()
        self._reported: dict[str, str] = {}
        self._ready = False
        self._clean_state: HostState | None = None  # last state converged with no problem
        self.wake = threading.Event()  # set: the next pass starts now
        self.passes = 0
        self.skipped = 0

    # --- one pass -----------------------------------------------------------------------
    def _attempt(self, report: ReconcileReport, what: str, fn: Callable[..., object],
                 *args: object) -> bool:
        try:
            fn(*args)
        except (DriverError, CommandError) as exc:
            if exc.temporary:
                report.temporary[what] = str(exc)
                LOG.warning("%s: %s (will retry)", what, exc)
            else:
                report.permanent[what] = str(exc)
                if self._reported.get(what) != str(exc):
                    LOG.error("%s: %s", what, exc)
            return False
        except (ModelError, KeyError, ValueError) as exc:
            report.permanent[what] = str(exc)
            if self._reported.get(what) != str(exc):
                LOG.error("%s: %s", what, exc)
            return False
        return True

    def reconcile_once(self, woken: bool = False) -> ReconcileReport:
        """One pass. ``woken`` (by a change of the state): a state equal to the last one
        converged without any problem is not converged again."""
        report = ReconcileReport()
        if self.reporter is not None:
            # Level-triggered registration: a lost or wiped registration comes back.
            self._attempt(report, "host registration", self.reporter.register)
        try:
            state = self.source.get()
        except (DriverError, ModelError) as exc:
            temporary = isinstance(exc, DriverError) and exc.temporary
            (report.temporary if temporary else report.permanent)["desired state"] = str(exc)
            if temporary or self._reported.get("desired state") != str(exc):
                LOG.error("desired state: %s", exc)
            self._reported = dict(report.permanent)
            return report
        if woken and report.ok and state == self._clean_state:
            self.skipped += 1
            LOG.debug("woken, but the state is the one already converged")
            return report
        self.passes += 1
        self.reconcile(state, report)
        if self.reporter is not None:
            self._attempt(report, "port status report", self.reporter.report_ports,
                          report.active, report.down)
        self._reported = dict(report.permanent)
        self._clean_state = state if report.ok and not report.waiting_devices else None
        return report

    def reconcile(self, state: HostState, report: ReconcileReport | None = None
                  ) -> ReconcileReport:
        report = report or ReconcileReport()
        d = self.d
        d.l2.begin_pass()
        if not self._ready:
            self._ready = self._attempt(report, "host setup", d.l2.ensure_ready)
        networks = {n.id: n for n in state.networks}
        metadata = MetadataSettings(
            upstream_url=state.metadata.upstream_url or self.metadata_defaults.upstream_url,
            shared_secret=state.metadata.shared_secret or self.metadata_defaults.shared_secret,
        )

        # 1. layer 2 segments
        for net in state.networks:
            self._attempt(report, f"network {net.id}", d.l2.ensure_network, net,
                          state.tunnel_peers)
        # 2. DHCP servers and their metadata proxies
        wanted_proxies: set[str] = set()
        for server in state.dhcp_servers:
            net = networks[server.network_id]
            up = self._attempt(report, f"dhcp {server.network_id}", d.dhcp.ensure_dhcp, server,
                               net, d.l2)
            (report.active if up else report.down).append(server.port_id)
            if up and server.metadata_proxy:
                ns = d.dhcp.netns(server.network_id)
                wanted_proxies.add(ns)
                self._attempt(report, f"metadata proxy {ns}", d.metadata.ensure_proxy, ns,
                              server.network_id, metadata)
            elif server.metadata_proxy:
                wanted_proxies.add(d.dhcp.netns(server.network_id))
        # 3. routers, each with a metadata proxy for the networks behind it
        for router in state.routers:
            up = self._attempt(report, f"router {router.id}", d.routers.ensure_router, router,
                               networks, d.l2)
            ids = [i.port_id for i in router.interfaces]
            ids += [router.gateway.port_id] if router.gateway else []
            (report.active if up else report.down).extend(dict.fromkeys(ids))
            if not router.interfaces:
                continue
            ns = d.routers.netns(router.id)
            wanted_proxies.add(ns)
            if up:
                subnets = {str(ipaddress.ip_interface(f"{i.ip_address}/{i.prefixlen}").network):
                           i.network_id for i in router.interfaces}
                self._attempt(report, f"metadata proxy {ns}", d.metadata.ensure_proxy, ns, "",
                              metadata, subnets)
        # 4. instance ports: plug the devices that exist, then filter them
        present = []
        for port in state.ports:
            if not d.l2.device_exists(port.device):
                report.waiting_devices.append(port.device)
                report.down.append(port.id)
                continue
            if self._attempt(report, f"port {port.id}", d.l2.plug, networks[port.network_id],
                             port.device, port.id, port.mac_address):
                present.append(port)
            else:
                report.down.append(port.id)
        groups = {g.id: g for g in state.security_groups}
        filtered = self._attempt(report, "security groups", d.firewall.apply, present, groups)
        # A port is ACTIVE once plugged and filtered (docs/compute.md, port status).
        for port in present:
            secured = filtered or not port.port_security_enabled
            (report.active if secured else report.down).append(port.id)

        # 5. remove what is ours and no longer desired (proxies before their namespaces)
        for ns in sorted(d.metadata.list_proxies() - wanted_proxies):
            LOG.info("removing metadata proxy in %s", ns)
            self._attempt(report, f"remove metadata proxy {ns}", d.metadata.remove_proxy, ns)
        for net_id in sorted(d.dhcp.list_dhcp() - {s.network_id for s in state.dhcp_servers}):
            LOG.info("removing dhcp for network %s", net_id)
            self._attempt(report, f"remove dhcp {net_id}", d.dhcp.remove_dhcp, net_id)
        for router_id in sorted(d.routers.list_routers() - {r.id for r in state.routers}):
            LOG.info("removing router %s", router_id)
            self._attempt(report, f"remove router {router_id}", d.routers.remove_router,
                          router_id)
        wanted_keys = {d.l2.network_key(n): n for n in state.networks}
        known_devices = {p.device for p in present}
        for dev, key in sorted(d.l2.list_plugged().items()):
            owner = wanted_keys.get(key)
            if owner is None:
                continue  # goes with its segment below
            if dev in known_devices or not _is_instance_device(dev, state):
                continue
            LOG.info("unplugging %s (no longer desired)", dev)
            self._attempt(report, f"unplug {dev}", d.l2.unplug, dev)
        for key in sorted(d.l2.list_networks() - set(wanted_keys)):
            LOG.info("removing network segment %s", key)
            self._attempt(report, f"remove network {key}", d.l2.remove_network, key)
        cleanup = getattr(d.l2, "remove_stale_vxlan", None)
        if cleanup:
            vnis = {n.segmentation_id for n in state.networks
                    if n.segmentation_type != "flat" and n.segmentation_id}
            self._attempt(report, "remove stale tunnels", cleanup, vnis)
        return report

    def cleanup(self, host: str) -> bool:
        """Converge to an empty state, then remove the host-wide objects (teardown)."""
        self._ready = True  # build nothing first
        report = self.reconcile(HostState(host=host))
        self._attempt(report, "host teardown", self.d.l2.teardown)
        for what, error in {**report.temporary, **report.permanent}.items():
            LOG.error("cleanup: %s: %s", what, error)
        return report.ok

    # --- the loop ---------------------------------------------------------------------
    def run(self, resync_interval: float, retry_interval: float,
            stop: threading.Event | None = None, long_poll_wait: float = MAX_LONG_POLL
            ) -> None:
        """Passes until ``stop``: every ``resync_interval`` (``retry_interval`` after a
        temporary error or while a device is missing), and as soon as the source reports
        a change (a watcher thread long-polls it) or a missing device appears."""
        stop = stop or threading.Event()
        resume = threading.Event()  # set: the watcher may watch (again)
        watcher: threading.Thread | None = None
        woken = False
        while not stop.is_set():
            self.wake.clear()
            started = time.monotonic()
            report = self.reconcile_once(woken=woken)
            took = time.monotonic() - started
            if report.ok and not report.waiting_devices:
                LOG.debug("converged in %.2fs", took)
            if long_poll_wait > 0 and watcher is None and callable(
                    getattr(self.source, "watch", None)):
                watcher = threading.Thread(
                    target=self._watch, name="state-watch", daemon=True,
                    args=(self.source, long_poll_wait, retry_interval, stop, resume))
                watcher.start()
            resume.set()
            delay = retry_interval if (report.temporary or report.waiting_devices) \
                else resync_interval
            woken = self._sleep(delay, stop, report.waiting_devices)
        self.wake.set()
        resume.set()

    def _sleep(self, delay: float, stop: threading.Event, waiting: list[str]) -> bool:
        """Wait ``delay`` seconds, less when woken (True) or a missing device appeared."""
        deadline = time.monotonic() + delay
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.wake.wait(min(left, DEVICE_POLL if waiting else 1.0)):
                return not stop.is_set()
            if waiting and any(self.d.l2.device_exists(dev) for dev in waiting):
                LOG.debug("a missing device appeared")
                return False
        return False

    def _watch(self, source: WatchableSource, wait: float, retry: float,
               stop: threading.Event, resume: threading.Event) -> None:
        """Long-poll the source; wake the loop when the state moved past the one its
        last pass read, then wait for that pass (``resume``) before watching again."""
        while not stop.is_set():
            resume.wait()
            since = source.generation
            if stop.is_set():
                return
            if since is None:  # the last read failed, or an API without generations
                stop.wait(retry)
                continue
            try:
                gen = source.watch(since, wait)
            except (DriverError, ModelError) as exc:
                LOG.debug("long-poll: %s", exc)
                stop.wait(retry)
                continue
            except Exception:  # never let the watcher die silently
                LOG.exception("long-poll failed")
                stop.wait(retry)
                continue
            if gen is None:
                LOG.info("the network API sends no state generation: no long-poll, "
                         "passes every resync/retry interval only")
                return
            if gen != since:
                resume.clear()
                self.wake.set()


def _is_instance_device(dev: str, state: HostState) -> bool:
    """A tap on one of our segments that is not a DHCP/router port of this state."""
    infra = {"tap" + s.port_id[:11] for s in state.dhcp_servers}
    for router in state.routers:
        infra |= {"tap" + i.port_id[:11] for i in router.interfaces}
        if router.gateway:
            infra.add("tap" + router.gateway.port_id[:11])
    return dev not in infra


# --- wiring from the configuration -------------------------------------------------------
def _mappings(raw: str) -> dict[str, str]:
    result = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        physnet, _, iface = item.partition(":")
        if not iface:
            raise ValueError(f"physical_interface_mappings entry {item!r} is not physnet:iface")
        result[physnet.strip()] = iface.strip()
    return result


def build_agent(config: Config) -> tuple[NetworkAgent, float, float]:
    """The agent and its intervals from ``[agent]`` settings."""
    from stratus.agent.ip_lib import IpLib
    from stratus.agent.naming import Naming
    from stratus.agent.netdrivers.dnsmasq import DnsmasqDriver
    from stratus.agent.netdrivers.metadata import ProcessMetadataProxy
    from stratus.agent.netdrivers.nft_firewall import NftFirewall
    from stratus.agent.netdrivers.router import NamespaceRouterDriver
    from stratus.agent.runner import Runner

    s = "agent"
    ovs_rundir = config.get(s, "ovs_rundir")
    runner = Runner(netns=config.get(s, "host_netns") or None,
                    env={"OVS_RUNDIR": ovs_rundir} if ovs_rundir else None)
    ip = IpLib(runner)
    naming = Naming(netns_prefix=config.get(s, "netns_prefix"),
                    nft_prefix=config.get(s, "nft_prefix"))
    state_dir = config.get(s, "state_dir")
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    backend = config.get(s, "l2_backend")
    mappings = _mappings(config.get(s, "physical_interface_mappings"))
    local_ip = config.get(s, "underlay_ip")
    l2: L2Driver
    if backend == "linuxbridge":
        from stratus.agent.netdrivers.linuxbridge import LinuxBridgeDriver
        l2 = LinuxBridgeDriver(ip, local_ip, config.get(s, "underlay_interface") or None,
                               mappings)
    elif backend == "ovs":
        from stratus.agent.netdrivers.ovs import OvsDriver
        l2 = OvsDriver(ip, local_ip, tunnel_type=config.get(s, "tunnel_type"),
                       datapath_type=config.get(s, "datapath_type"),
                       underlay_interface=config.get(s, "underlay_interface") or None,
                       physical_bridge_mappings=mappings)
    else:
        raise ValueError(f"[agent] l2_backend={backend!r} is not ovs or linuxbridge")
    drivers = NetworkDrivers(
        l2=l2,
        dhcp=DnsmasqDriver(ip, naming, state_dir),
        routers=NamespaceRouterDriver(ip, naming),
        firewall=NftFirewall(runner, naming),
        metadata=ProcessMetadataProxy(ip, state_dir,
                                      listen_port=config.get_int(s, "metadata_proxy_port")),
    )
    url = config.get(s, "network_state_url")
    source: StateSource
    reporter: HostReporter | None = None
    if url.startswith(("http://", "https://")):
        auth = None
        if config.get(s, "username"):
            auth = PasswordAuth(config.get("DEFAULT", "identity_url"), config.get(s, "username"),
                                config.get(s, "password"), config.get(s, "project_name"))
        http = HttpSource(url, config.get(s, "host") or socket.gethostname(), auth,
                          underlay_ip=local_ip or None,
                          network_node=config.get_bool(s, "network_node"))
        source, reporter = http, http
    else:
        source = JsonFileSource(url.removeprefix("file://"))
    metadata = MetadataSettings(upstream_url=config.get(s, "metadata_url"),
                                shared_secret=config.get(s, "metadata_shared_secret"))
    agent = NetworkAgent(drivers, source, metadata, reporter)
    return (agent, float(config.get_int(s, "resync_interval", minimum=1)),
            float(config.get_int(s, "retry_interval", minimum=1)))


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="stratus-agent", description=__doc__)
    parser.add_argument("--config-file",
                        help="default: $STRATUS_CONFIG_FILE or /etc/stratus/stratus.conf")
    parser.add_argument("--once", action="store_true", help="converge once and exit")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove everything of ours from this host (namespaces, dnsmasq, "
                             "proxies, nftables tables, segments, bridges) and exit; needs no API")
    args = parser.parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    config = Config.load()
    logging.basicConfig(
        level=logging.DEBUG if config.get_bool("DEFAULT", "debug") else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    agent, resync, retry = build_agent(config)
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
    LOG.info("stratus-agent (network) starting for host %s", config.get("agent", "host"))
    wait = min(float(config.get_int("agent", "long_poll_wait", minimum=0)), MAX_LONG_POLL)
    agent.run(resync, retry, stop, long_poll_wait=wait)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
