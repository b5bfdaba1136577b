"""What the compute agent does to one server (mixed into the agent of
:mod:`stratus.agent.compute.reconcile`).

:meth:`ServerWork.converge` is where the agent decides: a server assigned as
``building`` that it has not spawned is spawned (:meth:`ServerWork._spawn`: image
cache, disks, config drive, taps, the wait for ACTIVE ports, domain, power),
one being deleted is destroyed, and any other has its pending power task,
reboot generation and snapshots converged; then it reports what the host
really has as a :class:`~stratus.contracts.compute.ServerReport`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stratus.agent.compute import naming
from stratus.agent.compute.apis import ComputeApi, ImageApi, NetworkApi
from stratus.agent.compute.bootresume import BootResume
from stratus.agent.compute.changes import VM_STATE_OF, ServerChanges, fault_of
from stratus.agent.compute.hostcheck import HostCheck
from stratus.agent.compute.state import AgentSettings, ServerState, StateStore
from stratus.agent.compute.virt.base import (
    CRASHED,
    NOSTATE,
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    ComputeDriver,
    InstanceInfo,
    InstanceSpec,
    PortSpec,
    VirtError,
)
from stratus.agent.compute.virt.imagecache import ImageCache
from stratus.agent.compute.volumes import boot_volume, converge_volumes
from stratus.agent.runner import CommandError
from stratus.common.clients import ServiceError
from stratus.contracts.compute import Assignment, Fault, ServerReport
from stratus.contracts.instance import InstanceDocument

LOG = logging.getLogger("stratus.agent.compute.reconcile")

CONSOLE_TAIL_BYTES = 64 * 1024
POWER_TASKS = {"powering-off", "powering-on", "pausing", "unpausing", "suspending", "resuming"}
# The config drive's files from the instance document (tests pass a stand-in).
Render = Callable[[InstanceDocument], dict[str, bytes]]


class StepClock:
    """Seconds spent in each named step of one spawn or delete, for its log line (issue
    17: what each piece of the boot path costs, read from the agent's log)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = self._last = clock()
        self.steps: list[tuple[str, float]] = []

    def mark(self, step: str) -> None:
        """``step`` ended now (it began when the previous one ended)."""
        now = self.clock()
        self.steps.append((step, now - self._last))
        self._last = now

    @property
    def total(self) -> float:
        return self._last - self.started

    def __str__(self) -> str:
        return ", ".join(f"{step} {took:.2f}" for step, took in self.steps)


class ServerWork(ServerChanges):
    """The per-server half of the compute agent (state it shares with the loop); resizes
    and interface hot-plugs are in :class:`~stratus.agent.compute.changes.ServerChanges`."""

    s: AgentSettings
    driver: ComputeDriver
    compute: ComputeApi
    images: ImageApi
    network: NetworkApi | None
    render: Render
    sleep: Callable[[float], None]
    store: StateStore
    cache: ImageCache
    hostcheck: HostCheck  # times define and start (agent/compute/hostcheck.py)
    boot_resume: BootResume  # which servers a host boot stopped
    _console: dict[str, tuple[object, float]]
    _rescheduled: set[tuple[str, int]]

    # --- one server ---------------------------------------------------------------------
    def _report(self, sid: str, report: ServerReport) -> None:
        self.compute.report(sid, report)

    def _destroy(self, sid: str) -> None:
        st = self.store.load(sid)
        self.driver.destroy(sid, st.devices if st else [])
        self.store.remove(sid)
        self._console.pop(sid, None)

    def converge(self, a: Assignment) -> None:
        """One server: delete it, spawn it (the decision is here: assigned as building and
        not yet spawned by us), or converge its power state, reboots and snapshots; then
        report what the host really has."""
        sid = a.id
        if a.deleting:
            steps = StepClock()
            self._destroy(sid)
            steps.mark("destroy")
            self._report(sid, ServerReport(deleted=True))
            steps.mark("report")
            LOG.info("server %s deleted in %.2fs (%s)", sid, steps.total, steps)
            return
        st = self.store.load(sid)
        info = self.driver.info(sid)
        if a.vm_state == "building" and not (st and st.spawned and info is not None):
            if (sid, a.attempt) in self._rescheduled:
                return  # already given back; the API moves it elsewhere
            self._spawn(a, st)
            return
        if st is None:
            # Placed here but never spawned by us (e.g. state lost): adopt what exists.
            st = ServerState(spawned=info is not None, attempt=a.attempt,
                             devices=self._devices(a), reboot_generation=a.reboot.generation,
                             rebuild_generation=a.rebuild,
                             resize_generation=a.resize.generation)
            self.store.save(sid, st)
        if a.rebuild > st.rebuild_generation:
            self._rebuild(a, st)
            return
        if a.resize.generation > st.resize_generation:
            self._resize(a, st)
            return
        if a.resize.generation and not a.resize.pending and self.driver.has_disk_copy(sid):
            # the resize was confirmed: the disk kept for a revert goes
            self.driver.drop_disk_copy(sid)
            LOG.info("server %s: resize confirmed, old disk dropped", sid)
        if a.vm_state == "error":
            if info is not None:
                self._report(sid, ServerReport(power_state=info.power_state))
            return
        report = ServerReport()
        info = self._resume_after_boot(a, info)
        info = self._converge_power(a, st, info, report)
        self._converge_reboot(a, st, info, report)
        self._converge_interfaces(a, st)
        info = self.driver.info(sid)
        self._converge_snapshots(a, st, report)
        if info is not None and (a.block_devices or a.detaching
                                 or self.driver.volume_secrets()):
            report.volumes = converge_volumes(self.driver, a)  # agent/compute/volumes.py
        if info is None:
            if self.driver.has_disk(sid):
                # Nova's sync_power_states: a vanished domain is a stopped server
                report.vm_state, report.power_state = "stopped", SHUTDOWN
            else:
                report.vm_state, report.power_state = "error", NOSTATE
                report.fault = Fault(500, "the server's domain and disk are gone from "
                                     f"host {self.s.host}", "")
        else:
            report.vm_state = VM_STATE_OF[info.power_state]
            report.power_state = info.power_state
        report.vnc = self._vnc(sid, info)
        tail = self._console_tail(sid, force=False)
        if tail is not None:
            report.console_tail = tail
        self._report(sid, report)

    def _vnc(self, sid: str, info: InstanceInfo | None) -> dict[str, Any] | None:
        """The guest's VNC display while it has one (running or paused), for the API's
        consoles; a failed lookup is no display."""
        if info is None or info.power_state not in (RUNNING, PAUSED):
            return None
        try:
            return self.driver.vnc_address(sid)
        except (VirtError, CommandError, OSError):
            return None

    def _devices(self, a: Assignment) -> list[str]:
        return [naming.tap(self.s.deploy_prefix, p.id) for p in a.ports]

    def _ports(self, a: Assignment) -> list[PortSpec]:
        # The tap carries the deploy prefix (the name the network agent plugs), whatever
        # device name the assignment suggests.
        return [PortSpec(p.id, p.mac_address, p.mtu, naming.tap(self.s.deploy_prefix, p.id))
                for p in a.ports]

    def _spec(self, a: Assignment) -> InstanceSpec:
        sid = a.id
        root = boot_volume(a)  # boot from volume: no image (agent/compute/volumes.py)
        image_path, fmt = "", "raw"
        if root is None:
            if not a.image_id:
                raise VirtError(f"server {sid} is assigned without an image_id",
                                temporary=False)
            image_path, fmt = self.cache.ensure(a.image_id, a.image.to_dict())
        files = None
        if a.config_drive:
            if a.metadata_document is None:
                raise VirtError(f"server {sid} wants a config drive but its assignment has "
                                "no metadata_document", temporary=False)
            files = self.render(a.metadata_document)
        return InstanceSpec(server_id=sid, name=a.name or sid,
                            vcpus=a.flavor.vcpus or 1,
                            memory_mb=a.flavor.ram or 512,
                            disk_gb=a.flavor.disk or 0,
                            image_path=image_path, image_format=fmt, ports=self._ports(a),
                            config_drive=files, root_volume=root,
                            ephemeral_gb=a.flavor.ephemeral or 0,
                            swap_mb=a.flavor.swap or 0)

    def _spawn(self, a: Assignment, st: ServerState | None) -> None:
        """Build the server from scratch (image, disks, taps, ports ACTIVE, domain, power);
        on any failure remove what was made and ask the API for a reschedule."""
        sid = a.id
        attempt = a.attempt
        steps = StepClock()  # what each step cost, in the "spawned" line
        try:
            if st is not None or self.driver.info(sid) is not None \
                    or sid in self.driver.list_instance_dirs():
                # an interrupted spawn: start again from scratch (no partial leftovers)
                LOG.info("server %s: removing what an unfinished spawn left", sid)
                self.driver.destroy(sid, st.devices if st else [])
            st = ServerState(attempt=attempt, devices=self._devices(a),
                             reboot_generation=a.reboot.generation)
            self.store.save(sid, st)
            steps.mark("check")
            spec = self._spec(a)
            steps.mark("image")
            self.driver.prepare_disks(spec)
            steps.mark("disks")
            self.driver.plug_vifs(spec)
            steps.mark("taps")
            # Defined while the network agent plumbs the taps (the domain needs them to
            # exist, not to be ACTIVE): the two overlap instead of adding up (issue 17).
            # Only the start waits for the ports.
            with self.hostcheck.timed("define", sid):
                self.driver.define(spec)
            steps.mark("define")
            if self.s.vif_plug_wait and spec.ports:
                self._wait_ports([p.id for p in spec.ports])
                steps.mark("ports ACTIVE")
            desired = a.desired_power or "running"
            if desired in ("running", "paused", "suspended"):
                with self.hostcheck.timed("start", sid):
                    self.driver.power_on(sid)
                steps.mark("start")
            if desired == "paused":
                self.driver.pause(sid)
            elif desired == "suspended":
                self.driver.suspend(sid)
            st.spawned = True
            self.store.save(sid, st)
        except Exception as exc:
            LOG.error("server %s: spawn failed (%s); cleaning up and asking for a "
                      "reschedule", sid, exc)
            if not isinstance(exc, (VirtError, CommandError, ServiceError, OSError)):
                LOG.exception("server %s", sid)
            with contextlib.suppress(Exception):
                self._destroy(sid)
            self._rescheduled.add((sid, attempt))
            self._report(sid, ServerReport(vm_state="error", power_state=NOSTATE,
                                           task_state=None, reschedule=True, fault=fault_of(exc)))
            return
        info = self.driver.info(sid)
        power = info.power_state if info else NOSTATE
        steps.mark("state")
        LOG.info("server %s spawned in %.2fs (%s)", sid, steps.total, steps)
        report = ServerReport(vm_state=VM_STATE_OF[power], power_state=power, task_state=None,
                              fault=self.hostcheck.spawn_fault(sid),  # None unless slow
                              reboot_generation=st.reboot_generation,
                              vnc=self._vnc(sid, info))
        tail = self._console_tail(sid, force=True)
        if tail is not None:
            report.console_tail = tail
        self._report(sid, report)

    def _rebuild(self, a: Assignment, st: ServerState) -> None:
        """Rebuild: the domain and its disks go, a fresh root disk is made from the
        assignment's (new) image and the guest boots again on the same ports. The state
        file keeps the old generation until the end, so an agent killed half-way starts the
        rebuild again from the top; a failure puts the server in ERROR (Nova's rebuild)."""
        sid = a.id
        gen = a.rebuild
        started = time.monotonic()
        report = ServerReport(task_state=None, rebuild_generation=gen)
        try:
            LOG.info("server %s: rebuilding from image %s (generation %d)", sid, a.image_id,
                     gen)
            self.driver.destroy(sid, st.devices)
            self._console.pop(sid, None)
            spec = self._spec(a)
            self.driver.prepare_disks(spec)
            self.driver.plug_vifs(spec)
            with self.hostcheck.timed("define", sid, spawn=False):
                self.driver.define(spec)
            if self.s.vif_plug_wait and spec.ports:
                self._wait_ports([p.id for p in spec.ports])
            if (a.desired_power or "running") != "shutdown":
                with self.hostcheck.timed("start", sid, spawn=False):
                    self.driver.power_on(sid)
        except Exception as exc:
            LOG.error("server %s: rebuild failed (%s)", sid, exc)
            report.vm_state, report.power_state = "error", NOSTATE
            report.fault = fault_of(exc)
        else:
            info = self.driver.info(sid)
            power = info.power_state if info else NOSTATE
            report.vm_state, report.power_state = VM_STATE_OF[power], power
            LOG.info("server %s rebuilt in %.2fs", sid, time.monotonic() - started)
        st.spawned, st.rebuild_generation = True, gen
        st.devices, st.reboot_generation = self._devices(a), a.reboot.generation
        self.store.save(sid, st)
        tail = self._console_tail(sid, force=True)
        if tail is not None:
            report.console_tail = tail
        self._report(sid, report)

    def _wait_ports(self, port_ids: list[str]) -> None:
        if self.network is None:
            raise VirtError("vif_plug_wait is on but no network API is configured",
                            temporary=False)
        # Each call returns the moment its port is ACTIVE (a long-poll on the network
        # API); the pause below only follows an error or an API that cannot wait.
        deadline = time.monotonic() + self.s.vif_plug_timeout
        waiting = list(port_ids)
        while True:
            still = []
            began = time.monotonic()
            for pid in waiting:
                try:
                    status = self.network.wait_active(
                        pid, max(0.0, deadline - time.monotonic()))
                except ServiceError as exc:
                    if not exc.temporary:
                        raise
                    status = ""
                if status != "ACTIVE":
                    still.append(pid)
            if not still:
                return
            if time.monotonic() >= deadline:
                raise VirtError(f"port(s) {', '.join(still)} not ACTIVE after "
                                f"{self.s.vif_plug_timeout:.0f}s (vif_plug_timeout): "
                                "is the network agent running on this host?", temporary=False)
            waiting = still
            if time.monotonic() - began < 1.0:  # answered at once: do not ask in a loop
                self.sleep(1.0)

    def _ensure_defined(self, a: Assignment) -> InstanceInfo:
        """Redefine a domain that vanished, from the disk still on the host."""
        sid = a.id
        info = self.driver.info(sid)
        if info is not None:
            return info
        if not self.driver.has_disk(sid):
            raise VirtError(f"server {sid} has no disk on this host", temporary=False)
        spec = self._spec(a)
        self.driver.prepare_disks(spec)
        with self.hostcheck.timed("define", sid, spawn=False):
            self.driver.define(spec)
        info = self.driver.info(sid)
        if info is None:
            raise VirtError(f"domain of server {sid} did not appear after define")
        return info

    def _resume_after_boot(self, a: Assignment, info: InstanceInfo | None
                           ) -> InstanceInfo | None:
        """After a host boot, start a server that was running before it (its domain is
        shut off or gone with its disk kept); agent/compute/bootresume.py decides which."""
        sid = a.id
        if not self.boot_resume.take(sid):
            return info
        state = info.power_state if info else NOSTATE
        gone = info is None and not self.driver.has_disk(sid)  # nothing to start
        if state in (SHUTDOWN, CRASHED, NOSTATE) and not gone:
            if info is None:
                info = self._ensure_defined(a)
            self._plug(a)
            with self.hostcheck.timed("start", sid, spawn=False):
                self.driver.power_on(sid)
            LOG.info("server %s: started again after the host boot", sid)
            info = self.driver.info(sid)
        self.boot_resume.done(sid)
        return info

    def _converge_power(self, a: Assignment, st: ServerState, info: InstanceInfo | None,
                        report: ServerReport) -> InstanceInfo | None:
        """Power actions are taken for a pending task (``powering-on`` ...); without a
        task the agent reports what it sees (a guest that shut itself down is stopped)."""
        if a.task_state not in POWER_TASKS:
            return info
        sid = a.id
        desired = a.desired_power or "running"
        if info is None and desired in ("running", "paused"):
            info = self._ensure_defined(a)
        state = info.power_state if info else NOSTATE
        if desired == "running":
            if state in (SHUTDOWN, CRASHED, SUSPENDED, PAUSED, NOSTATE):
                self._plug(a)
                if state == PAUSED:
                    self.driver.unpause(sid)
                elif state == SUSPENDED:
                    self.driver.resume(sid)
                else:
                    with self.hostcheck.timed("start", sid, spawn=False):
                        self.driver.power_on(sid)
        elif desired == "shutdown":
            if state in (RUNNING, PAUSED, SUSPENDED):
                self.driver.power_off(sid, self.s.shutdown_timeout)
        elif desired == "paused":
            if state in (SHUTDOWN, CRASHED):
                self._plug(a)
                self.driver.power_on(sid)
            if state != PAUSED:
                self.driver.pause(sid)
        elif desired == "suspended" and state in (RUNNING, PAUSED):
            self.driver.suspend(sid)
        report.task_state = None
        return self.driver.info(sid)

    def _plug(self, a: Assignment) -> None:
        ports = self._ports(a)
        if ports:
            self.driver.plug_vifs(InstanceSpec(a.id, a.name or "", 1, 1, 0, "", "",
                                               ports=ports))

    def _converge_reboot(self, a: Assignment, st: ServerState, info: InstanceInfo | None,
                         report: ServerReport) -> None:
        gen = a.reboot.generation
        if gen <= st.reboot_generation:
            return
        sid = a.id
        if info is None:
            self._ensure_defined(a)
        self._plug(a)
        self.driver.reboot(sid, hard=a.reboot.hard, timeout=self.s.shutdown_timeout)
        st.reboot_generation = gen
        self.store.save(sid, st)
        report.reboot_generation, report.task_state = gen, None

    def _converge_snapshots(self, a: Assignment, st: ServerState,
                            report: ServerReport) -> None:
        sid = a.id
        wanted = [s.image_id for s in a.snapshots]
        for image_id in wanted:
            if image_id in st.snapshots_done:
                continue
            tmpdir = Path(self.s.instances_path) / "_snapshots"
            tmpdir.mkdir(parents=True, exist_ok=True)
            dest = tmpdir / f"{image_id}.qcow2"
            try:
                self.driver.snapshot(sid, str(dest))
                try:
                    self.images.upload(image_id, str(dest))
                except ServiceError as exc:
                    if exc.status not in (404, 409):  # gone, or no longer queued
                        raise
                    LOG.warning("snapshot %s of %s: %s (not retried)", image_id, sid, exc)
            finally:
                dest.unlink(missing_ok=True)
            LOG.info("snapshot %s of server %s uploaded", image_id, sid)
            st.snapshots_done.append(image_id)
            self.store.save(sid, st)
        if wanted:
            report.snapshots_done = [i for i in wanted if i in st.snapshots_done]
            if a.task_state == "image_uploading":
                report.task_state = None
        # forget the ones the API no longer lists
        st.snapshots_done = [i for i in st.snapshots_done if i in wanted]

    def _console_tail(self, sid: str, force: bool) -> str | None:
        """The console's last 64 KiB when it changed since the last report (at most every
        ``console_interval`` seconds per server unless ``force``)."""
        got = self.driver.console_tail(sid, CONSOLE_TAIL_BYTES)
        if got is None:
            return None
        key, data = got
        last = self._console.get(sid)
        now = time.monotonic()
        if last is not None and last[0] == key:
            return None
        if last is not None and not force and now - last[1] < self.s.console_interval:
            return None
        self._console[sid] = (key, now)
        return data.decode("utf-8", "replace")
