"""What the compute agent changes on a running server (mixed into
:class:`~stratus.agent.compute.converge.ServerWork`): a resize or its revert
(``compute/server_resize.py``) and the interfaces attached or detached since the spawn
(``compute/server_interfaces.py``). Both are level-triggered: the state file records what
was done, and each step is idempotent, so an agent killed half-way finishes on restart.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

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
)
from stratus.contracts.compute import Assignment, Fault, ServerReport

if TYPE_CHECKING:
    from stratus.agent.compute.hostcheck import HostCheck

LOG = logging.getLogger("stratus.agent.compute.reconcile")
VM_STATE_OF = {RUNNING: "active", PAUSED: "paused", SHUTDOWN: "stopped", CRASHED: "stopped",
               SUSPENDED: "suspended", NOSTATE: "stopped"}


def fault_of(exc: BaseException) -> Fault:
    """A failure as the report's fault (message and the exception's last lines)."""
    return Fault(500, str(exc)[:255] or type(exc).__name__,
                 "".join(traceback.format_exception_only(type(exc), exc))[-2000:])


class ServerChanges:
    """Resize and interface hot-plug, on the state :class:`ServerWork` keeps."""

    s: AgentSettings
    driver: ComputeDriver
    store: StateStore
    hostcheck: HostCheck

    if TYPE_CHECKING:  # ServerWork's (converge.py)
        def _spec(self, a: Assignment) -> InstanceSpec: ...

        def _devices(self, a: Assignment) -> list[str]: ...

        def _ports(self, a: Assignment) -> list[PortSpec]: ...

        def _report(self, sid: str, report: ServerReport) -> None: ...

        def _vnc(self, sid: str, info: InstanceInfo | None) -> dict[str, Any] | None: ...

    def _resize(self, a: Assignment, st: ServerState) -> None:
        """Resize to the assignment's flavor, on this host: the guest is stopped, its root
        disk kept aside (a revert: the kept disk put back) and grown, the domain redefined
        with the flavor's memory and vcpus, the power restored. Each step is idempotent and
        the state file keeps the old generation until the end, so an agent killed half-way
        does it again from the top; a failure puts the server in ERROR (as Nova)."""
        sid = a.id
        req = a.resize
        report = ServerReport(resize_generation=req.generation)
        try:
            LOG.info("server %s: %s to flavor %s (generation %d)", sid,
                     "reverting a resize" if req.revert else "resizing", a.flavor.name,
                     req.generation)
            spec = self._spec(a)
            info = self.driver.info(sid)
            if info is not None and info.power_state in (RUNNING, PAUSED, SUSPENDED):
                self.driver.power_off(sid, self.s.shutdown_timeout)
            if spec.root_volume is None:  # a volume-backed root disk keeps its size
                if req.revert:
                    self.driver.restore_disk_copy(sid)
                else:
                    self.driver.keep_disk_copy(sid)
                    self.driver.grow_disk(sid, spec.disk_gb)
            self.driver.prepare_disks(spec)
            self.driver.plug_vifs(spec)
            with self.hostcheck.timed("define", sid, spawn=False):
                self.driver.define(spec)
            if (a.desired_power or "running") != "shutdown":
                with self.hostcheck.timed("start", sid, spawn=False):
                    self.driver.power_on(sid)
        except Exception as exc:
            LOG.error("server %s: resize failed (%s)", sid, exc)
            report.vm_state, report.power_state = "error", NOSTATE
            report.fault = fault_of(exc)
        else:
            info = self.driver.info(sid)
            power = info.power_state if info else NOSTATE
            report.vm_state, report.power_state = VM_STATE_OF[power], power
            report.vnc = self._vnc(sid, info)
        st.resize_generation = req.generation
        self.store.save(sid, st)
        self._report(sid, report)

    def _network_applied(self) -> dict[str, int]:
        """server id -> the ``network`` generation (injectNetworkInfo) applied by this
        process. Kept in memory only: a new agent process re-plugs each such server once,
        which changes nothing that is already right."""
        seen: dict[str, int] | None = getattr(self, "_network_seen", None)
        if seen is None:
            seen = {}
            self._network_seen = seen
        return seen

    def _converge_interfaces(self, a: Assignment, st: ServerState) -> None:
        """Hot-plug the ports attached since the spawn and unplug the ones detached
        (os-interface): only when the assignment's taps differ from the ones the state
        file records, then from what the domain really has (idempotent after a kill).
        A ``network`` generation above the one applied (injectNetworkInfo) re-plugs every
        port: taps made again where missing, their MTU set, interfaces the domain lacks
        attached."""
        wanted = self._devices(a)
        reapply = a.network > self._network_applied().get(a.id, 0)
        if (sorted(wanted) == sorted(st.devices) and not reapply) \
                or self.driver.info(a.id) is None:
            return
        sid = a.id
        plugged = self.driver.plugged_interfaces(sid)
        new = [p for p in self._ports(a) if p.device not in plugged]
        if reapply:
            self.driver.plug_vifs(InstanceSpec(sid, a.name or "", 1, 1, 0, "", "",
                                               ports=self._ports(a)))
            LOG.info("server %s: ports re-plugged (network generation %d)", sid, a.network)
        elif new:
            self.driver.plug_vifs(InstanceSpec(sid, a.name or "", 1, 1, 0, "", "",
                                               ports=new))
        for port in new:
            self.driver.attach_interface(sid, port)
            LOG.info("server %s: interface %s plugged (port %s)", sid, port.device, port.id)
        for device in sorted(plugged - set(wanted)):
            self.driver.detach_interface(sid, device)
            LOG.info("server %s: interface %s unplugged", sid, device)
        st.devices = wanted
        self.store.save(sid, st)
        self._network_applied()[sid] = a.network

