"""The compute agent (``stratus-compute-agent``): converges one host's servers.

It reads the host's assignments from the compute API
(``GET /v2.1/stratus/compute-hosts/{host}/servers``, long-polled), and converges
every server independently (in a small worker pool, so a slow spawn never holds
the others up) through a :class:`~stratus.agent.virt.base.ComputeDriver`: image
cache, overlay disk, config drive, taps, port status wait, domain, power state,
reboots, snapshots, deletion. It reports each server's real state
(``POST .../servers/{id}/report``) and heartbeats the host's resources
(``PUT /v2.1/stratus/compute-hosts/{host}``). Level-triggered: every pass compares
the assignments with the domains and instance files really on the host and fixes
both directions; a restart recreates nothing that is right, and finishes or
redoes whatever a crash interrupted. See docs/compute-agent.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from stratus.agent.runner import CommandError
from stratus.agent.virt.base import (
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
from stratus.agent.virt.imagecache import ImageCache
from stratus.common.clients import ApiClient, Auth, PasswordAuth, ServiceError
from stratus.common.config import Config

LOG = logging.getLogger(__name__)

CONSOLE_TAIL_BYTES = 64 * 1024
VM_STATE_OF = {RUNNING: "active", PAUSED: "paused", SHUTDOWN: "stopped", CRASHED: "stopped",
               SUSPENDED: "suspended", NOSTATE: "stopped"}
POWER_TASKS = {"powering-off", "powering-on", "pausing", "unpausing", "suspending", "resuming"}
Render = Callable[[dict[str, Any]], dict[str, bytes]]


def default_render(doc: dict[str, Any]) -> dict[str, bytes]:
    """The config drive files: ``stratus.metadata.content.render`` (docs/compute.md)."""
    from stratus.metadata.content import render

    return render(doc)


# --- the APIs the agent talks to ------------------------------------------------------------
class ComputeApi(Protocol):
    def assignments(self, wait: float | None = None, since: int | None = None
                    ) -> dict[str, Any]: ...

    def report(self, server_id: str, body: dict[str, Any]) -> None: ...

    def heartbeat(self, body: dict[str, Any]) -> None: ...


class ImageApi(Protocol):
    def fetch(self, image_id: str) -> Iterator[bytes]: ...

    def upload(self, image_id: str, path: str) -> None: ...


class NetworkApi(Protocol):
    def port_status(self, port_id: str) -> str: ...


class HttpComputeApi:
    def __init__(self, url: str, host: str, auth: Auth | None):
        self.client = ApiClient(url, auth, timeout=60.0, service="compute")
        self.host = host

    def assignments(self, wait: float | None = None, since: int | None = None
                    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if wait and since is not None:
            params = {"wait": int(wait), "since": since}
        return dict(self.client.get(f"stratus/compute-hosts/{self.host}/servers",
                                    params=params))

    def report(self, server_id: str, body: dict[str, Any]) -> None:
        self.client.post(f"stratus/compute-hosts/{self.host}/servers/{server_id}/report",
                         json=body)

    def heartbeat(self, body: dict[str, Any]) -> None:
        self.client.put(f"stratus/compute-hosts/{self.host}", json={"host": body})


class HttpImageApi:
    def __init__(self, url: str, auth: Auth | None, chunk: int = 1 << 20):
        self.client = ApiClient(url, auth, timeout=300.0, service="image")
        self.chunk = chunk

    def fetch(self, image_id: str) -> Iterator[bytes]:
        resp = self.client.request("GET", f"v2/images/{image_id}/file", stream=True)
        try:
            yield from resp.iter_bytes(self.chunk)
        finally:
            resp.close()

    def upload(self, image_id: str, path: str) -> None:
        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while data := fh.read(self.chunk):
                    yield data
        self.client.request("PUT", f"v2/images/{image_id}/file", content=chunks(),
                            headers={"Content-Type": "application/octet-stream"})


class HttpNetworkApi:
    def __init__(self, url: str, auth: Auth | None):
        self.client = ApiClient(url, auth, timeout=30.0, service="network")

    def port_status(self, port_id: str) -> str:
        return str(self.client.get(f"v2.0/ports/{port_id}")["port"].get("status", ""))


# --- settings and per-server state ------------------------------------------------------
@dataclass
class AgentSettings:
    host: str
    instances_path: str
    resync_interval: float = 10.0
    heartbeat_interval: float = 10.0
    retry_interval: float = 5.0
    vif_plug_wait: bool = True
    vif_plug_timeout: float = 60.0
    shutdown_timeout: float = 60.0
    image_cache_max_age: float = 86400.0
    console_interval: float = 2.0
    workers: int = 4
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0
    availability_zone: str = "nova"
    host_ip: str = ""


@dataclass
class ServerState:
    """What the agent must remember about a server across restarts (a JSON file in
    ``<instances_path>/_state/``): whether its spawn finished, its taps, the last
    reboot generation done and the snapshots uploaded."""

    spawned: bool = False
    attempt: int = 0
    devices: list[str] = field(default_factory=list)
    reboot_generation: int = 0
    snapshots_done: list[str] = field(default_factory=list)


class StateStore:
    def __init__(self, instances_path: str):
        self.dir = Path(instances_path) / "_state"

    def path(self, server_id: str) -> Path:
        return self.dir / f"{server_id}.json"

    def load(self, server_id: str) -> ServerState | None:
        try:
            raw = json.loads(self.path(server_id).read_text())
        except (OSError, ValueError):
            return None
        known = ServerState.__dataclass_fields__
        return ServerState(**{k: v for k, v in raw.items() if k in known})

    def save(self, server_id: str, state: ServerState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path(server_id).with_suffix(".part")
        tmp.write_text(json.dumps(state.__dict__))
        tmp.rename(self.path(server_id))

    def remove(self, server_id: str) -> None:
        self.path(server_id).unlink(missing_ok=True)

    def ids(self) -> set[str]:
        if not self.dir.is_dir():
            return set()
        return {p.stem for p in self.dir.glob("*.json")}


@dataclass
class PassResult:
    errors: dict[str, str] = field(default_factory=dict)  # server id / "what" -> message

    @property
    def ok(self) -> bool:
        return not self.errors


def _fault(exc: BaseException) -> dict[str, Any]:
    return {"code": 500, "message": str(exc)[:255] or type(exc).__name__,
            "details": "".join(traceback.format_exception_only(type(exc), exc))[-2000:]}


def _temporary(exc: BaseException) -> bool:
    return bool(getattr(exc, "temporary", False))


# --- the agent ----------------------------------------------------------------------------
class ComputeAgent:
    def __init__(self, settings: AgentSettings, driver: ComputeDriver, compute: ComputeApi,
                 images: ImageApi, network: NetworkApi | None = None,
                 render: Render = default_render, sleep: Callable[[float], None] = time.sleep):
        self.s = settings
        self.driver = driver
        self.compute = compute
        self.images = images
        self.network = network
        self.render = render
        self.sleep = sleep
        self.store = StateStore(settings.instances_path)
        self.cache = ImageCache(Path(settings.instances_path) / "_base", images.fetch)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, settings.workers),
                                                          thread_name_prefix="server")
        self._inflight: dict[str, concurrent.futures.Future[None]] = {}
        self._lock = threading.Lock()
        self._assigned: dict[str, dict[str, Any]] = {}
        self._console: dict[str, tuple[object, float]] = {}  # id -> (key reported, when)
        self._rescheduled: set[tuple[str, int]] = set()
        self._logged: dict[str, str] = {}
        self.last_errors: dict[str, str] = {}
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
        return self.reconcile(doc.get("servers", []), wait=True)

    def reconcile(self, servers: list[dict[str, Any]], wait: bool = False) -> PassResult:
        result = PassResult()
        assigned = {s["id"]: s for s in servers}
        self._assigned = assigned
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
        try:
            in_use = {a["image_id"] for a in assigned.values() if a.get("image_id")}
            self.cache.touch(in_use)
            self.cache.reclaim(in_use, self.s.image_cache_max_age)
        except OSError as exc:
            result.errors["image cache"] = str(exc)
        self.last_errors = result.errors
        return result

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

    def _converge_safe(self, a: dict[str, Any], result: PassResult) -> None:
        sid = a["id"]
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

    # --- one server ---------------------------------------------------------------------
    def _report(self, sid: str, body: dict[str, Any]) -> None:
        self.compute.report(sid, body)

    def _destroy(self, sid: str) -> None:
        st = self.store.load(sid)
        self.driver.destroy(sid, st.devices if st else [])
        self.store.remove(sid)
        self._console.pop(sid, None)

    def converge(self, a: dict[str, Any]) -> None:
        sid = a["id"]
        if a.get("delete") or a.get("vm_state") == "deleted":
            self._destroy(sid)
            self._report(sid, {"deleted": True})
            return
        st = self.store.load(sid)
        info = self.driver.info(sid)
        vm_state = a.get("vm_state")
        if vm_state == "building" and not (st and st.spawned and info is not None):
            if (sid, int(a.get("attempt") or 0)) in self._rescheduled:
                return  # already given back; the API moves it elsewhere
            self._spawn(a, st)
            return
        if st is None:
            # Placed here but never spawned by us (e.g. state lost): adopt what exists.
            st = ServerState(spawned=info is not None, attempt=int(a.get("attempt") or 0),
                             devices=self._devices(a),
                             reboot_generation=self._reboot_gen(a))
            self.store.save(sid, st)
        if vm_state == "error":
            if info is not None:
                self._report(sid, {"power_state": info.power_state})
            return
        body: dict[str, Any] = {}
        info = self._converge_power(a, st, info, body)
        self._converge_reboot(a, st, info, body)
        info = self.driver.info(sid)
        self._converge_snapshots(a, st, body)
        if info is None:
            if self.driver.has_disk(sid):
                # Nova's sync_power_states: a vanished domain is a stopped server
                body.update(vm_state="stopped", power_state=SHUTDOWN)
            else:
                body.update(vm_state="error", power_state=NOSTATE, fault={
                    "code": 500, "message": "the server's domain and disk are gone from "
                    f"host {self.s.host}", "details": ""})
        else:
            body.update(vm_state=VM_STATE_OF[info.power_state], power_state=info.power_state)
        tail = self._console_tail(sid, force=False)
        if tail is not None:
            body["console_tail"] = tail
        self._report(sid, body)

    @staticmethod
    def _devices(a: dict[str, Any]) -> list[str]:
        return [p.get("device_name") or "tap" + p["id"][:11] for p in a.get("ports", [])]

    @staticmethod
    def _reboot_gen(a: dict[str, Any]) -> int:
        return int((a.get("reboot") or {}).get("generation") or 0)

    def _spec(self, a: dict[str, Any]) -> InstanceSpec:
        sid = a["id"]
        flavor = a.get("flavor") or {}
        image_path, fmt = self.cache.ensure(a["image_id"], a.get("image") or {})
        files = None
        if a.get("config_drive"):
            try:
                files = self.render(a.get("metadata_document") or {})
            except ImportError as exc:
                raise VirtError(f"cannot render the config drive: {exc}",
                                temporary=False) from None
        ports = [PortSpec(p["id"], p["mac_address"], p.get("mtu"),
                          p.get("device_name") or "tap" + p["id"][:11])
                 for p in a.get("ports", [])]
        return InstanceSpec(server_id=sid, name=a.get("name") or sid,
                            vcpus=int(flavor.get("vcpus") or 1),
                            memory_mb=int(flavor.get("ram") or 512),
                            disk_gb=int(flavor.get("disk") or 0),
                            image_path=image_path, image_format=fmt, ports=ports,
                            config_drive=files)

    def _spawn(self, a: dict[str, Any], st: ServerState | None) -> None:
        sid = a["id"]
        attempt = int(a.get("attempt") or 0)
        started = time.monotonic()
        try:
            if st is not None or self.driver.info(sid) is not None \
                    or sid in self.driver.list_instance_dirs():
                # an interrupted spawn: start again from scratch (no partial leftovers)
                LOG.info("server %s: removing what an unfinished spawn left", sid)
                self.driver.destroy(sid, st.devices if st else [])
            st = ServerState(attempt=attempt, devices=self._devices(a),
                             reboot_generation=self._reboot_gen(a))
            self.store.save(sid, st)
            spec = self._spec(a)
            self.driver.prepare_disks(spec)
            self.driver.plug_vifs(spec)
            if self.s.vif_plug_wait and spec.ports:
                self._wait_ports([p.id for p in spec.ports])
            self.driver.define(spec)
            desired = a.get("desired_power") or "running"
            if desired in ("running", "paused", "suspended"):
                self.driver.power_on(sid)
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
            self._report(sid, {"vm_state": "error", "power_state": NOSTATE, "task_state": None,
                               "reschedule": True, "fault": _fault(exc)})
            return
        info = self.driver.info(sid)
        power = info.power_state if info else NOSTATE
        LOG.info("server %s spawned in %.2fs", sid, time.monotonic() - started)
        body: dict[str, Any] = {"vm_state": VM_STATE_OF[power], "power_state": power,
                                "task_state": None, "fault": None,
                                "reboot_generation": st.reboot_generation}
        tail = self._console_tail(sid, force=True)
        if tail is not None:
            body["console_tail"] = tail
        self._report(sid, body)

    def _wait_ports(self, port_ids: list[str]) -> None:
        if self.network is None:
            raise VirtError("vif_plug_wait is on but no network API is configured",
                            temporary=False)
        deadline = time.monotonic() + self.s.vif_plug_timeout
        waiting = list(port_ids)
        while True:
            still = []
            for pid in waiting:
                try:
                    status = self.network.port_status(pid)
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
            self.sleep(1.0)

    def _ensure_defined(self, a: dict[str, Any]) -> InstanceInfo:
        """Redefine a domain that vanished, from the disk still on the host."""
        sid = a["id"]
        info = self.driver.info(sid)
        if info is not None:
            return info
        if not self.driver.has_disk(sid):
            raise VirtError(f"server {sid} has no disk on this host", temporary=False)
        spec = self._spec(a)
        self.driver.prepare_disks(spec)
        self.driver.define(spec)
        info = self.driver.info(sid)
        if info is None:
            raise VirtError(f"domain of server {sid} did not appear after define")
        return info

    def _converge_power(self, a: dict[str, Any], st: ServerState, info: InstanceInfo | None,
                        body: dict[str, Any]) -> InstanceInfo | None:
        """Power actions are taken for a pending task (``powering-on`` ...); without a
        task the agent reports what it sees (a guest that shut itself down is stopped)."""
        task = a.get("task_state")
        if task not in POWER_TASKS:
            return info
        sid = a["id"]
        desired = a.get("desired_power") or "running"
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
        body["task_state"] = None
        return self.driver.info(sid)

    def _plug(self, a: dict[str, Any]) -> None:
        ports = [PortSpec(p["id"], p["mac_address"], p.get("mtu"),
                          p.get("device_name") or "tap" + p["id"][:11])
                 for p in a.get("ports", [])]
        if ports:
            self.driver.plug_vifs(InstanceSpec(a["id"], a.get("name") or "", 1, 1, 0, "", "",
                                               ports=ports))

    def _converge_reboot(self, a: dict[str, Any], st: ServerState, info: InstanceInfo | None,
                         body: dict[str, Any]) -> None:
        reboot = a.get("reboot") or {}
        gen = int(reboot.get("generation") or 0)
        if gen <= st.reboot_generation:
            return
        sid = a["id"]
        if info is None:
            self._ensure_defined(a)
        self._plug(a)
        hard = str(reboot.get("type") or "SOFT").upper() == "HARD"
        self.driver.reboot(sid, hard=hard, timeout=self.s.shutdown_timeout)
        st.reboot_generation = gen
        self.store.save(sid, st)
        body.update(reboot_generation=gen, task_state=None)

    def _converge_snapshots(self, a: dict[str, Any], st: ServerState,
                            body: dict[str, Any]) -> None:
        sid = a["id"]
        wanted = [s["image_id"] for s in a.get("snapshots") or []]
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
            body["snapshots_done"] = [i for i in wanted if i in st.snapshots_done]
            if a.get("task_state") == "image_uploading":
                body["task_state"] = None
        # forget the ones the API no longer lists
        st.snapshots_done = [i for i in st.snapshots_done if i in wanted]

    # --- console --------------------------------------------------------------------------
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

    def report_consoles(self) -> None:
        for sid, a in list(self._assigned.items()):
            if a.get("delete"):
                continue
            with self._lock:
                fut = self._inflight.get(sid)
                if fut is not None and not fut.done():
                    continue
            tail = self._console_tail(sid, force=False)
            if tail is not None:
                try:
                    self._report(sid, {"console_tail": tail})
                except ServiceError as exc:
                    LOG.warning("console of %s: %s", sid, exc)

    # --- heartbeat ------------------------------------------------------------------------
    def host_resources(self) -> dict[str, Any]:
        hi = self.driver.host_info()
        vcpus = self.s.vcpus or os.cpu_count() or 1
        memory_mb = self.s.memory_mb or _meminfo_mb()
        Path(self.s.instances_path).mkdir(parents=True, exist_ok=True)
        local_gb = self.s.disk_gb or shutil.disk_usage(self.s.instances_path).total // (1 << 30)
        try:
            instances = self.driver.list_instances()
        except (VirtError, CommandError):
            instances = {}
        used = [a.get("flavor") or {} for a in self._assigned.values() if not a.get("delete")]
        body = {
            "vcpus": vcpus, "memory_mb": memory_mb, "local_gb": local_gb,
            "vcpus_used": sum(int(f.get("vcpus") or 0) for f in used),
            "memory_mb_used": sum(int(f.get("ram") or 0) for f in used),
            "local_gb_used": sum(int(f.get("disk") or 0) for f in used),
            "virt_type": hi.virt_type, "hypervisor_type": hi.hypervisor_type,
            "hypervisor_version": hi.hypervisor_version, "hypervisor_hostname": self.s.host,
            "host_ip": self.s.host_ip, "availability_zone": self.s.availability_zone,
            "running_vms": sum(1 for i in instances.values() if i.power_state == RUNNING),
        }
        return {k: v for k, v in body.items() if v != ""}  # the API refuses empty texts

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
            new_gen = doc.get("generation")
            woke = generation is not None and new_gen != generation
            generation = new_gen
            try:
                result = self.reconcile(doc.get("servers", []))
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


# --- wiring from the configuration -------------------------------------------------------
def build_agent(config: Config) -> ComputeAgent:
    from stratus.agent.ip_lib import IpLib
    from stratus.agent.runner import Runner
    from stratus.agent.virt.libvirt import LibvirtDriver, detect_virt_type, kvm_can_boot_probe

    s = "compute_agent"
    host = config.get(s, "host") or socket.gethostname()
    compute_url = config.get(s, "compute_url")
    settings = AgentSettings(
        host=host,
        instances_path=config.get(s, "instances_path"),
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
    )
    Path(settings.instances_path).mkdir(parents=True, exist_ok=True)
    os.chmod(settings.instances_path, 0o755)
    _check_kvm_device()
    runner = Runner(timeout=float(config.get_int(s, "command_timeout", minimum=10)))
    uri = config.get(s, "libvirt_uri")
    virt_type = detect_virt_type(config.get(s, "virt_type"),
                                 probe=kvm_can_boot_probe(runner, uri))
    driver = LibvirtDriver(runner, IpLib(runner), settings.instances_path, uri=uri,
                           domain_prefix=config.get(s, "domain_prefix"), virt_type=virt_type)
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
                        HttpImageApi(config.get(s, "image_url"), auth), network)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratus-compute-agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file",
                        help="default: $STRATUS_CONFIG_FILE or /etc/stratus/stratus.conf")
    parser.add_argument("--once", action="store_true",
                        help="heartbeat, converge once and exit (status 1 if anything failed)")
    args = parser.parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    config = Config.load()
    logging.basicConfig(
        level=logging.DEBUG if config.get_bool("DEFAULT", "debug") else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    agent = build_agent(config)
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
