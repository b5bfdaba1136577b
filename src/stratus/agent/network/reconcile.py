"""The network agent: a level-triggered reconcile loop over the network drivers.

On start and every ``resync_interval`` seconds the agent reads the desired
state of its host (:class:`stratus.contracts.network.HostState`) from a
:class:`~stratus.agent.network.sources.StateSource` and converges the host both
ways: it creates what is missing, fixes what differs and removes what is ours but
no longer desired.
Every driver call is idempotent, so a restart re-reads and converges without
recreating what is already right. Per object, a temporary error is retried
after ``retry_interval``; a permanent one is logged once (until it changes or
goes away).

Ownership: every host object the drivers create carries the deploy's prefix
(:mod:`stratus.agent.network.naming`) and the ``list_*`` calls return only objects of
that prefix, so the removals below never touch another deploy's objects or
unprefixed ones. An instance port without a ``device_name`` is plugged under
:func:`stratus.contracts.network.tap_name` of the prefix, the name the compute agent
gives the tap.

Edges only make it faster: between passes a watcher thread long-polls the network
API (``since`` the generation of the state last read, ``long_poll_wait`` seconds at a
time) and wakes the loop as soon as the host's state changed; while a port's device is
missing a link monitor (:mod:`stratus.agent.network.devwatch`, netlink) wakes the loop
the moment the device appears (without one, the loop looks for it every ``DEVICE_POLL``
seconds). A woken pass whose
state equals the last one converged without any problem changes nothing on the host and
is skipped (the periodic passes never are). A pass woken by an awaited device while the
state did not move (:meth:`NetworkAgent.reconcile_devices`) only plugs, filters and
reports the instance ports of the state it already has: no read of the state, no
DHCP/router/segment work between a compute agent's new tap and its port's ACTIVE.

A port becomes ACTIVE here: :meth:`NetworkAgent.reconcile` lists it in the pass's
``active`` ports once plugged and filtered, and the reporter sends that list to the
network API (``PUT /v2.0/stratus-agent/hosts/<host>/ports``). The sources are in
:mod:`stratus.agent.network.sources`, the wiring and ``main`` in
:mod:`stratus.agent.network.agent`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stratus.agent.network.devwatch import DeviceWatch
from stratus.agent.network.drivers.base import (
    DhcpDriver,
    DriverError,
    FirewallDriver,
    L2Driver,
    MetadataProxyDriver,
    RouterDriver,
)
from stratus.agent.network.external import ExternalBridge
from stratus.agent.network.metadata_v6 import link_local_metadata
from stratus.agent.network.naming import Naming
from stratus.agent.network.sources import (
    MAX_LONG_POLL,
    HostReporter,
    StateSource,
    WatchableSource,
)
from stratus.agent.runner import CommandError
from stratus.contracts.network import HostState, MetadataSettings, ModelError, Network, Port

LOG = logging.getLogger(__name__)
DEVICE_POLL = 0.5  # seconds between looks for a missing device


@dataclass
class NetworkDrivers:
    """The five drivers one agent converges with (real ones from ``build_agent``, or fakes)."""

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
    """Converges its host to the desired state, pass after pass (see the module docstring)."""

    def __init__(self, drivers: NetworkDrivers, source: StateSource,
                 metadata_defaults: MetadataSettings | None = None,
                 reporter: HostReporter | None = None, naming: Naming | None = None,
                 external: ExternalBridge | None = None):
        self.d = drivers
        self.external = external  # the deploy's external bridge, made again when missing
        self.naming = naming or Naming()
        self.source = source
        self.reporter = reporter
        self.metadata_defaults = metadata_defaults or MetadataSettings()
        self._reported: dict[str, str] = {}
        self._ready = False
        self._clean_state: HostState | None = None  # last state converged with no problem
        self._active: set[str] = set()  # instance ports the last pass had ACTIVE
        self._last_state: HostState | None = None  # the state the last full pass converged
        self._last_ok = False  # and whether that pass had no problem (devices may wait)
        # set by the long-poll watcher: the state moved (a woken pass must read it)
        self._moved = threading.Event()
        self.wake = threading.Event()  # set: the next pass starts now
        self.passes = 0
        self.skipped = 0
        # netlink link events: wakes the loop when an awaited device appears (devwatch.py)
        self.devwatch: DeviceWatch | None = None

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
        started = time.monotonic()
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
        self._last_state = state
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
        self._log_active(state, report, "woken" if woken else "periodic", started)
        self._clean_state = state if report.ok and not report.waiting_devices else None
        self._last_ok = report.ok
        return report

    def reconcile_devices(self) -> ReconcileReport:
        """A pass for devices that appeared (the link monitor woke the loop, the state did
        not move): plug and filter the instance ports of the state the last full pass
        read, and report them, without reading the state again or converging the rest
        (DHCP, routers, segments are as that pass left them). Issue 17: this is the step
        between the compute agent's tap and the guest's start. Without a state yet it is
        a full pass."""
        state = self._last_state
        if state is None:
            return self.reconcile_once()
        started = time.monotonic()
        report = ReconcileReport()
        self.passes += 1
        self.d.l2.begin_pass()  # the device is new: read the host's links afresh
        state = self._with_devices(state)
        self._converge_ports(state, {n.id: n for n in state.networks}, report)
        if self.reporter is not None:
            self._attempt(report, "port status report", self.reporter.report_ports,
                          report.active, report.down)
        self._log_active(state, report, "device", started)
        # Converged without a problem when the full pass was (but for the devices it
        # waited for) and this one is: a wake-up for the same state (the ports' status
        # change this report makes) is then skipped, not a full pass during the boot.
        clean = self._last_ok and report.ok and not report.waiting_devices
        self._clean_state = self._last_state if clean else None
        return report

    def _log_active(self, state: HostState, report: ReconcileReport, why: str,
                    started: float) -> None:
        """Log the instance ports this pass made ACTIVE and what the pass cost (issue 17:
        the boot path's steps, read from the log)."""
        instance = {p.id for p in state.ports}
        became = sorted(instance.intersection(report.active) - self._active)
        self._active = instance.intersection(report.active)
        if became:
            LOG.info("port(s) %s ACTIVE: pass %d (%s) took %.2fs", ", ".join(became),
                     self.passes, why, time.monotonic() - started)

    def _with_devices(self, state: HostState) -> HostState:
        """The state with every port's device named (the tap name of the prefix when the
        state names none)."""
        return dataclasses.replace(state, ports=[
            p if p.device_name else dataclasses.replace(p, device_name=self.naming.tap(p.id))
            for p in state.ports])

    def reconcile(self, state: HostState, report: ReconcileReport | None = None
                  ) -> ReconcileReport:
        report = report or ReconcileReport()
        d = self.d
        state = self._with_devices(state)
        d.l2.begin_pass()
        if self.external is not None:  # before the segments: the public one uses it
            self._attempt(report, "external bridge", self.external.ensure)
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
                # also fe80::a9fe:a9fe on the DHCP port's device (metadata_v6.py)
                link_local = link_local_metadata(server, net,
                                                 self.naming.dhcp_dev(server.port_id))
                self._attempt(report, f"metadata proxy {ns}", d.metadata.ensure_proxy, ns,
                              server.network_id, metadata, None, link_local)
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
                           i.network_id for i in router.interfaces
                           if ":" not in i.ip_address}  # IPv4: fe80::a9fe:a9fe is the DHCP's
                self._attempt(report, f"metadata proxy {ns}", d.metadata.ensure_proxy, ns, "",
                              metadata, subnets)
        # 4. instance ports: plug the devices that exist, then filter them
        present = self._converge_ports(state, networks, report)

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
        plugged: dict[str, str] = {}
        self._attempt(report, "list plugged devices", lambda: plugged.update(d.l2.list_plugged()))
        for dev, key in sorted(plugged.items()):
            owner = wanted_keys.get(key)
            if owner is None:
                continue  # goes with its segment below
            if dev in known_devices or not _is_instance_device(dev, state, self.naming):
                continue
            LOG.info("unplugging %s (no longer desired)", dev)
            self._attempt(report, f"unplug {dev}", d.l2.unplug, dev)
        segments: set[str] = set()
        self._attempt(report, "list network segments",
                      lambda: segments.update(d.l2.list_networks()))
        for key in sorted(segments - set(wanted_keys)):
            LOG.info("removing network segment %s", key)
            self._attempt(report, f"remove network {key}", d.l2.remove_network, key)
        cleanup = getattr(d.l2, "remove_stale_vxlan", None)
        if cleanup:
            vnis = {n.segmentation_id for n in state.networks
                    if n.segmentation_type != "flat" and n.segmentation_id}
            self._attempt(report, "remove stale tunnels", cleanup, vnis)
        return report

    def _converge_ports(self, state: HostState, networks: dict[str, Network],
                        report: ReconcileReport) -> list[Port]:
        """Plug the instance ports whose devices exist, filter them, and list each as
        ACTIVE (plugged and filtered) or down; answers the plugged ones."""
        d = self.d
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
        return present

    def cleanup(self, host: str) -> bool:
        """Converge to an empty state, then remove the host-wide objects (teardown)."""
        self._ready = True  # build nothing first
        self.external = None  # nor make the external bridge again: teardown deletes it
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
        woken = devices = False
        while not stop.is_set():
            self.wake.clear()
            started = time.monotonic()
            if devices:
                report = self.reconcile_devices()
            else:
                self._moved.clear()  # this pass reads the state: a move from now is news
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
            # woken with the state unmoved: only an awaited device can have done it
            devices = woken and bool(report.waiting_devices) and not self._moved.is_set()
        self.wake.set()
        resume.set()

    def _sleep(self, delay: float, stop: threading.Event, waiting: list[str]) -> bool:
        """Wait ``delay`` seconds, less when woken (True) or a missing device appeared.

        With a live :attr:`devwatch` (netlink link events) the loop tells it the devices
        it waits for, looks at the host once (a device that appeared before the watch
        knew of it) and then only waits for the wake-up; without one it looks for the
        devices every ``DEVICE_POLL`` seconds. Each look reads the host afresh (the
        pass's cached link table would never show the new device)."""
        watch = self.devwatch if self.devwatch is not None and self.devwatch.alive else None
        if watch is not None:
            watch.expect(waiting)
        deadline = time.monotonic() + delay
        look = bool(waiting)
        while not stop.is_set():
            if look and self._appeared(waiting):
                return False
            look = bool(waiting) and watch is None
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.wake.wait(min(left, DEVICE_POLL if look else 1.0)):
                return not stop.is_set()
        return False

    def _appeared(self, waiting: list[str]) -> bool:
        self.d.l2.begin_pass()  # forget the cached link table: read the host again
        if any(self.d.l2.device_exists(dev) for dev in waiting):
            LOG.debug("a missing device appeared")
            return True
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
                self._moved.set()
                self.wake.set()


def _is_instance_device(dev: str, state: HostState, naming: Naming) -> bool:
    """A tap on one of our segments that is not a DHCP/router port of this state."""
    infra = {naming.tap(s.port_id) for s in state.dhcp_servers}
    for router in state.routers:
        infra |= {naming.tap(i.port_id) for i in router.interfaces}
        if router.gateway:
            infra.add(naming.tap(router.gateway.port_id))
    return dev not in infra
