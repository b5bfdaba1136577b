"""The compute agent's reconcile loop: converges one host's servers.

It reads the host's :class:`~stratus.contracts.compute.AssignmentSet` from the
compute API (long-polled, :mod:`stratus.agent.compute.apis`), and converges
every server independently (in a small worker pool, so a slow spawn never holds
the others up) through a :class:`~stratus.agent.compute.virt.base.ComputeDriver`:
image cache, overlay disk, config drive (the files of
:func:`stratus.contracts.metadata_tree.render`), taps, port status wait, domain,
power state, reboots, snapshots, deletion. It reports each server's real state
(:class:`~stratus.contracts.compute.ServerReport`) and heartbeats the host's
resources (:class:`~stratus.contracts.compute.HostResources`). Level-triggered:
every pass compares the assignments with the domains and instance files really
on the host and fixes both directions; a restart recreates nothing that is
right, and finishes or redoes whatever a crash interrupted. See
docs/compute-agent.md. The console script's wiring is in
:mod:`stratus.agent.compute.agent`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stratus.agent.compute.apis import ComputeApi, ImageApi, NetworkApi
from stratus.agent.compute.bootresume import BootResume
from stratus.agent.compute.converge import Render, ServerWork
from stratus.agent.compute.hostcheck import HostCheck
from stratus.agent.compute.hostuptime import read_uptime
from stratus.agent.compute.state import AgentSettings, PassResult, StateStore
from stratus.agent.compute.virt.base import RUNNING, ComputeDriver, VirtError
from stratus.agent.compute.virt.imagecache import ImageCache
from stratus.agent.compute.volumes import sweep_secrets
from stratus.agent.runner import CommandError
from stratus.common.clients import ServiceError
from stratus.contracts.compute import Assignment, HostResources, ServerReport
from stratus.contracts.metadata_tree import render as default_render

LOG = logging.getLogger(__name__)


def _temporary(exc: BaseException) -> bool:
    return bool(getattr(exc, "temporary", False))


class ComputeAgent(ServerWork):
    """One host's agent: the pass over every server, the loop, the heartbeat and the
    console reports (what it does to one server is :class:`ServerWork`)."""

    def __init__(self, settings: AgentSettings, driver: ComputeDriver, compute: ComputeApi,
                 images: ImageApi, network: NetworkApi | None = None,
                 render: Render = default_render, sleep: Callable[[float], None] = time.sleep,
                 hostcheck: HostCheck | None = None):
        self.s = settings
        self.driver = driver
        self.compute = compute
        self.images = images
        self.network = network
        self.render = render
        self.sleep = sleep
        self.store = StateStore(settings.instances_path)
        self.cache = ImageCache(Path(settings.instances_path) / "_base", images.fetch)
        # agent.py passes the real one; without it only the libvirt calls are timed
        self.hostcheck = hostcheck or HostCheck(kvm_device=None, caps_dir=None)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, settings.workers),
                                                          thread_name_prefix="server")
        self._inflight: dict[str, concurrent.futures.Future[None]] = {}
        self._lock = threading.Lock()
        self._assigned: dict[str, Assignment] = {}
        self._console: dict[str, tuple[object, float]] = {}  # id -> (key reported, when)
        self._rescheduled: set[tuple[str, int]] = set()
        self._logged: dict[str, str] = {}
        self.last_errors: dict[str, str] = {}
        self.boot_resume = BootResume(settings.instances_path,
                                      settings.resume_guests_state_on_host_boot,
                                      settings.boot_id_path, settings.init_stat_path)
        # snapshot copies a killed agent left behind (none can be in progress yet)
        shutil.rmtree(Path(settings.instances_path) / "_snapshots", ignore_errors=True)

    # --- one pass -----------------------------------------------------------------------
    def reconcile_once(self) -> PassResult:
        """Read the assignments and converge every server; wait for all of them."""
        try:
            doc = self.compute.assignments()
        except ServiceError as exc:
            LOG.error("assignments: %s", exc)
            return PassResult({"assignments": str(exc)})
        return self.reconcile(doc.servers, wait=True)

    def reconcile(self, servers: list[Assignment], wait: bool = False) -> PassResult:
        """Converge every assigned server and remove what is ours but assigned no more;
        with ``wait``, return only when every server's work is done."""
        result = PassResult()
        assigned = {s.id: s for s in servers}
        self._assigned = assigned
        self.boot_resume.decide(servers)
        # Volume secrets nothing uses any more (agent/compute/volumes.py), e.g. a destroyed
        # server's boot volume's. The daemon's passes sweep before they submit this pass's
        # work, when the last pass's work is all done (a plug in flight defines only secrets
        # its assignment lists; checked after submitting, a pass would nearly never be idle).
        if not wait and self._idle():
            self._sweep(assigned, result)
        futures: dict[str, concurrent.futures.Future[None]] = {}
        for sid, a in assigned.items():
            fut = self._submit(sid, self._converge_safe, a, result)
            if fut is not None:
                futures[sid] = fut
        # ours on the host but assigned no more: remove (both directions)
        try:
            present = (set(self.driver.list_instances()) | self.driver.list_instance_dirs()
                       | self.store.ids())
        except (VirtError, CommandError) as exc:
            result.errors["list instances"] = str(exc)
            present = self.store.ids()
        for sid in sorted(present - set(assigned)):
            fut = self._submit(sid, self._remove_orphan, sid, result)
            if fut is not None:
                futures[sid] = fut
        if wait:
            concurrent.futures.wait(list(futures.values()))
        if wait:
            self._sweep(assigned, result)
        try:
            in_use = {a.image_id for a in assigned.values() if a.image_id}
            self.cache.touch(in_use)
            self.cache.reclaim(in_use, self.s.image_cache_max_age)
        except OSError as exc:
            result.errors["image cache"] = str(exc)
        self.last_errors = result.errors
        return result

    def _sweep(self, assigned: dict[str, Assignment], result: PassResult) -> None:
        try:
            sweep_secrets(self.driver, assigned.values())
        except (VirtError, CommandError) as exc:
            result.errors["volume secrets"] = str(exc)

    def _idle(self) -> bool:
        """Whether no server's work is in flight."""
        with self._lock:
            return all(fut.done() for fut in self._inflight.values())

    def _submit(self, sid: str, fn: Callable[..., None], *args: Any
                ) -> concurrent.futures.Future[None] | None:
        with self._lock:
            running = self._inflight.get(sid)
            if running is not None and not running.done():
                return None
            fut = self.pool.submit(fn, *args)
            self._inflight[sid] = fut
            return fut

    def _log_once(self, key: str, msg: str, temporary: bool) -> None:
        if temporary:
            LOG.warning("%s: %s (will retry)", key, msg)
        elif self._logged.get(key) != msg:
            LOG.error("%s: %s", key, msg)
        self._logged[key] = msg

    def _converge_safe(self, a: Assignment, result: PassResult) -> None:
        sid = a.id
        try:
            self.converge(a)
            self._logged.pop(sid, None)
        except Exception as exc:  # one server's failure never stops the others
            result.errors[sid] = str(exc)
            self._log_once(f"server {sid}", str(exc), _temporary(exc))
            if not isinstance(exc, (VirtError, CommandError, ServiceError, OSError)):
                LOG.exception("server %s", sid)

    def _remove_orphan(self, sid: str, result: PassResult) -> None:
        try:
            LOG.info("server %s is not assigned to this host: removing its domain and files",
                     sid)
            self._destroy(sid)
        except Exception as exc:
            result.errors[f"remove {sid}"] = str(exc)
            self._log_once(f"remove {sid}", str(exc), _temporary(exc))

    def report_consoles(self) -> None:
        for sid, a in list(self._assigned.items()):
            if a.delete:
                continue
            with self._lock:
                fut = self._inflight.get(sid)
                if fut is not None and not fut.done():
                    continue
            tail = self._console_tail(sid, force=False)
            if tail is not None:
                try:
                    self._report(sid, ServerReport(console_tail=tail))
                except ServiceError as exc:
                    LOG.warning("console of %s: %s", sid, exc)

    # --- heartbeat ------------------------------------------------------------------------
    def host_resources(self) -> HostResources:
        hi = self.driver.host_info()
        vcpus = self.s.vcpus or os.cpu_count() or 1
        memory_mb = self.s.memory_mb or _meminfo_mb()
        Path(self.s.instances_path).mkdir(parents=True, exist_ok=True)
        local_gb = self.s.disk_gb or shutil.disk_usage(self.s.instances_path).total // (1 << 30)
        try:
            instances = self.driver.list_instances()
        except (VirtError, CommandError):
            instances = {}
        used = [a.flavor for a in self._assigned.values() if not a.delete]
        return HostResources(
            vcpus=vcpus, memory_mb=memory_mb, local_gb=local_gb,
            vcpus_used=sum(f.vcpus for f in used), memory_mb_used=sum(f.ram for f in used),
            local_gb_used=sum(f.disk for f in used),
            virt_type=hi.virt_type, hypervisor_type=hi.hypervisor_type,
            hypervisor_version=hi.hypervisor_version, hypervisor_hostname=self.s.host,
            host_ip=self.s.host_ip, availability_zone=self.s.availability_zone,
            running_vms=sum(1 for i in instances.values() if i.power_state == RUNNING),
            uptime=read_uptime(), problems=self.hostcheck.problems())

    def heartbeat(self) -> bool:
        try:
            self.compute.heartbeat(self.host_resources())
        except (ServiceError, VirtError, CommandError, OSError) as exc:
            LOG.warning("heartbeat: %s", exc)
            return False
        return True

    # --- the loop -------------------------------------------------------------------------
    def _ticker(self, stop: threading.Event) -> None:
        next_beat = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self.heartbeat()
                next_beat = now + self.s.heartbeat_interval
            try:
                self.report_consoles()
            except Exception:
                LOG.exception("console reports")
            stop.wait(min(self.s.console_interval, self.s.heartbeat_interval))

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        ticker = threading.Thread(target=self._ticker, args=(stop,), name="heartbeat",
                                  daemon=True)
        ticker.start()
        generation: int | None = None
        while not stop.is_set():
            started = time.monotonic()
            try:
                doc = self.compute.assignments(wait=min(self.s.resync_interval, 30.0),
                                               since=generation)
            except ServiceError as exc:
                LOG.error("assignments: %s", exc)
                stop.wait(self.s.retry_interval)
                continue
            new_gen = doc.generation
            woke = generation is not None and new_gen != generation
            generation = new_gen
            try:
                result = self.reconcile(doc.servers)
            except Exception as exc:  # the loop itself must survive anything
                LOG.exception("reconcile pass")
                result = PassResult({"pass": str(exc)})
            if woke:
                continue
            # the API may answer at once (no long-poll): keep to the resync interval
            delay = (self.s.retry_interval if not result.ok else self.s.resync_interval)
            rest = delay - (time.monotonic() - started)
            if rest > 0:
                stop.wait(rest)
        self.pool.shutdown(wait=True, cancel_futures=True)
        ticker.join(timeout=5)


def _meminfo_mb() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0
