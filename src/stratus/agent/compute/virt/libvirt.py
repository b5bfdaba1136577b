"""The libvirt driver: ``virsh -c <uri>`` subprocesses, files in ``<instances_path>/<id>/``.

Per server: ``disk`` (qcow2 overlay on the cached base), ``disk.eph0`` and
``disk.swap`` (the flavor's ephemeral and swap disks, virt/localdisks.py),
``disk.config`` (config drive), ``console.log`` (serial console), ``domain.xml``
(what was defined). Every file is written under a temporary name and renamed, so a
crash leaves either the complete file or a ``*.part`` that the next attempt removes.
The domain is named ``<domain_prefix><server id>`` and carries the server id in its
metadata element; only domains with both, whose files are under instances_path, are
ever touched (:func:`stratus.agent.compute.naming.server_of_domain`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stratus.agent.compute.naming import server_of_domain
from stratus.agent.compute.virt import configdrive, localdisks
from stratus.agent.compute.virt.base import (
    CRASHED,
    NOSTATE,
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    ComputeDriver,
    HostInfo,
    InstanceInfo,
    InstanceSpec,
    VirtError,
)
from stratus.agent.compute.virt.domain_xml import (
    build_domain,
    interface_devices,
    server_id_of,
    to_string,
)
from stratus.agent.compute.virt.domevents import Events, lifecycle_events
from stratus.agent.compute.virt.interfaces import LibvirtInterfaces
from stratus.agent.compute.virt.volumes import LibvirtVolumes
from stratus.agent.ip_lib import IpLib
from stratus.agent.runner import CommandError, Runner

LOG = logging.getLogger(__name__)

GIB = 1024 ** 3
RESIZE_COPY = "disk.resize-orig"  # the root disk kept while a resize waits (keep_disk_copy)
BACKSTOP = 2.0  # seconds between looks at a domain's state while libvirt's events wake us
_STATES = {"running": RUNNING, "idle": RUNNING, "blocked": RUNNING, "in shutdown": RUNNING,
           "paused": PAUSED, "shut off": SHUTDOWN, "crashed": CRASHED,
           "pmsuspended": SUSPENDED}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def kvm_can_boot_probe(runner: Runner, uri: str) -> Callable[[], bool]:
    """libvirt reports a kvm domain type for this host."""
    def probe() -> bool:
        return runner.ok(["virsh", "-c", uri, "domcapabilities", "--virttype", "kvm"])
    return probe


def detect_virt_type(setting: str = "auto", kvm_device: str = "/dev/kvm",
                     sys_module: str = "/sys/module",
                     probe: Callable[[], bool] | None = None) -> str:
    """``kvm`` or ``qemu`` (TCG). ``auto`` is kvm only when ``/dev/kvm`` opens read-write,
    the KVM is not the software-nested PVM one (``/sys/module/kvm_pvm``, which cannot
    boot a stock guest) and the probe (libvirt's kvm domain capabilities) succeeds."""
    if setting in ("kvm", "qemu"):
        return setting
    if setting != "auto":
        raise ValueError(f"virt_type {setting!r} is not auto, kvm or qemu")
    try:
        fd = os.open(kvm_device, os.O_RDWR)
    except OSError:
        return "qemu"
    os.close(fd)
    if Path(sys_module, "kvm_pvm").exists():
        return "qemu"
    if probe is not None and not probe():
        return "qemu"
    return "kvm"


def parse_hypervisor_version(text: str) -> int:
    """``Running hypervisor: QEMU 7.2.22`` -> 7002022 (0 when absent)."""
    m = re.search(r"Running hypervisor:\s*\S+\s+(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return 0
    return int(m.group(1)) * 1_000_000 + int(m.group(2)) * 1000 + int(m.group(3) or 0)


def parse_dominfo(text: str) -> tuple[int, bool]:
    """(power state, has a managed save) from ``virsh dominfo``."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip().lower()
    managed = fields.get("managed save") == "yes"
    state = _STATES.get(fields.get("state", ""), NOSTATE)
    if state == SHUTDOWN and managed:
        state = SUSPENDED
    return state, managed


def parse_vncdisplay(text: str, listen: str) -> dict[str, Any] | None:
    """``127.0.0.1:0`` or ``[::1]:3`` (a display number, port 5900 + n) as ``{"host",
    "port"}``; an empty or wildcard address is the configured ``listen``."""
    host, sep, display = text.strip().rpartition(":")
    if not sep or not display.isdigit():
        return None
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = listen
    return {"host": host, "port": 5900 + int(display)}


class LibvirtDriver(LibvirtInterfaces, LibvirtVolumes, ComputeDriver):
    """Volumes (iSCSI network disks, CHAP secrets): virt/volumes.py."""

    def __init__(self, runner: Runner, ip: IpLib, instances_path: str, *,
                 uri: str = "qemu:///system", domain_prefix: str = "instance-",
                 virt_type: str = "qemu", qemu_img: str = "qemu-img",
                 poll_interval: float = 0.5, lifecycle_events: bool = False,
                 vnc_listen: str | None = None):
        self.runner = runner
        self.ip = ip
        self.instances_path = Path(instances_path)
        self.uri = uri
        self.prefix = domain_prefix
        self.virt_type = virt_type
        self.qemu_img = qemu_img
        self.poll_interval = poll_interval
        # a graceful stop/reboot waits on libvirt's events, not a poll (virt/domevents.py)
        self.lifecycle_events = lifecycle_events
        self._ours: dict[str, str] = {}  # domain name -> server id (checked metadata)
        self.vnc_listen = vnc_listen  # the guests' VNC address; None: no display
        self._net_lock = threading.Lock()  # IpLib's link cache is not thread-safe

    # --- helpers ------------------------------------------------------------------------
    def virsh(self, *args: str, check: bool = True) -> str:
        return self.runner.run(["virsh", "-q", "-c", self.uri, *args], check=check)

    def domain_name(self, server_id: str) -> str:
        return f"{self.prefix}{server_id}"

    def instance_dir(self, server_id: str) -> Path:
        return self.instance_path(server_id)

    def instance_path(self, server_id: str, name: str = "") -> Path:
        d = self.instances_path / server_id
        return d / name if name else d

    def _dominfo(self, server_id: str) -> tuple[int, bool] | None:
        try:
            out = self.virsh("dominfo", self.domain_name(server_id))
        except CommandError as exc:
            if "failed to get domain" in exc.stderr or "Domain not found" in exc.stderr:
                return None
            raise
        return parse_dominfo(out)

    def _state(self, server_id: str) -> int | None:
        info = self._dominfo(server_id)
        return None if info is None else info[0]

    def _wait_state(self, server_id: str, wanted: set[int], timeout: float,
                    events: Events | None = None) -> bool:
        """Whether the domain reached ``wanted`` (or vanished) within ``timeout``; woken by
        libvirt's lifecycle ``events`` when given (a look every ``BACKSTOP`` seconds as
        well), else a look every ``poll_interval``."""
        deadline = time.monotonic() + timeout
        while True:
            if events is not None:
                events.changed.clear()  # before the look: no event is lost
            state = self._state(server_id)
            if state is None or state in wanted:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if events is not None and events.alive:
                events.wait(min(left, BACKSTOP))
            else:
                time.sleep(min(left, self.poll_interval))

    def _shutdown_and_wait(self, server_id: str, args: tuple[str, ...], timeout: float
                           ) -> bool:
        """Send ``virsh <args>`` (a shutdown) and wait until the domain is off."""
        events = contextlib.nullcontext(None) if not self.lifecycle_events else \
            lifecycle_events(self.runner.wrap(
                ["virsh", "-q", "-c", self.uri, "event", "--domain",
                 self.domain_name(server_id), "--event", "lifecycle", "--loop"]))
        with events as ev:
            self._ignore(*args, benign=("not running",))
            return self._wait_state(server_id, {SHUTDOWN, CRASHED}, timeout, ev)

    def _ignore(self, *args: str, benign: tuple[str, ...]) -> None:
        try:
            self.virsh(*args)
        except CommandError as exc:
            if not any(b in exc.stderr for b in benign):
                raise

    # --- inventory ----------------------------------------------------------------------
    def host_info(self) -> HostInfo:
        out = self.virsh("version", check=False)
        return HostInfo(self.virt_type, "QEMU", parse_hypervisor_version(out))

    def list_instances(self) -> dict[str, InstanceInfo]:
        names = [n.strip() for n in self.virsh("list", "--all", "--name").splitlines()]
        result: dict[str, InstanceInfo] = {}
        for name in names:
            if not name.startswith(self.prefix):
                continue
            sid = self._ours.get(name)
            if sid is None:
                try:
                    xml = self.virsh("dumpxml", name)
                except CommandError:
                    continue  # vanished meanwhile
                sid = server_of_domain(name, server_id_of(xml), xml, prefix=self.prefix,
                                       instances_path=self.instances_path)
                if sid is None:
                    continue  # same prefix, not ours (naming.server_of_domain)
                self._ours[name] = sid
            try:
                info = self._dominfo(sid)
            except CommandError:
                continue
            if info is not None:
                result[sid] = InstanceInfo(sid, name, info[0])
        return result

    def info(self, server_id: str) -> InstanceInfo | None:
        state = self._state(server_id)
        if state is None:
            return None
        return InstanceInfo(server_id, self.domain_name(server_id), state)

    def list_instance_dirs(self) -> set[str]:
        if not self.instances_path.is_dir():
            return set()
        return {p.name for p in self.instances_path.iterdir() if p.is_dir() and _UUID.match(p.name)}

    def has_disk(self, server_id: str) -> bool:
        return self.instance_path(server_id, "disk").is_file()

    # --- building -----------------------------------------------------------------------
    def prepare_disks(self, spec: InstanceSpec) -> None:
        d = self.instance_path(spec.server_id)
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        for leftover in d.glob("*.part"):
            leftover.unlink()
        configdrive.remove_tmp(d)
        disk = d / "disk"
        if not disk.is_file() and spec.root_volume is None:  # else vda is the volume
            info = json.loads(self.runner.run(
                [self.qemu_img, "info", "--output=json", "-f", spec.image_format,
                 spec.image_path]))
            virtual = int(info.get("virtual-size", 0))
            wanted = spec.disk_gb * GIB
            if wanted and wanted < virtual:
                raise VirtError(
                    f"flavor disk {spec.disk_gb} GB is smaller than the image's virtual size "
                    f"{virtual} bytes", temporary=False)
            tmp = d / "disk.part"
            argv = [self.qemu_img, "create", "-q", "-f", "qcow2", "-b", spec.image_path,
                    "-F", spec.image_format, str(tmp)]
            if wanted > virtual:
                argv.append(str(wanted))
            self.runner.run(argv)
            tmp.rename(disk)
        localdisks.ensure(spec, d, self.runner)  # disk.eph0, disk.swap (the flavor's)
        if spec.config_drive is not None and not (d / "disk.config").is_file():
            configdrive.build(spec.config_drive, d / "disk.config", self.runner)

    def plug_vifs(self, spec: InstanceSpec) -> None:
        with self._net_lock:
            self._plug_vifs(spec)

    def _plug_vifs(self, spec: InstanceSpec) -> None:
        self.ip.begin_pass()
        for port in spec.ports:
            link = self.ip.link(port.device)
            if link is not None and link.get("linkinfo", {}).get("info_kind") != "tun":
                raise VirtError(f"device {port.device} exists and is not a tap", temporary=False)
            if link is None:
                self.ip.change(["ip", "tuntap", "add", "dev", port.device, "mode", "tap"],
                               [port.device])
            self.ip.ensure_link_settings(port.device, mtu=port.mtu)

    def define(self, spec: InstanceSpec) -> None:
        d = self.instance_path(spec.server_id)
        cd = d / "disk.config"
        dom = build_domain(spec, domain_name=self.domain_name(spec.server_id),
                           virt_type=self.virt_type, disk_path=str(d / "disk"),
                           config_drive_path=str(cd) if spec.config_drive is not None else None,
                           console_path=str(d / "console.log"), vnc_listen=self.vnc_listen,
                           local_disks=[(str(d / name), dev)
                                        for name, dev, _size in localdisks.wanted(spec)])
        if spec.root_volume is not None:
            self.use_root_volume(dom, spec.root_volume)  # virt/volumes.py
        xml = d / "domain.xml"
        tmp = d / "domain.xml.part"
        tmp.write_text(to_string(dom))
        tmp.rename(xml)
        self.virsh("define", str(xml))
        self._ours[self.domain_name(spec.server_id)] = spec.server_id

    def destroy(self, server_id: str, devices: list[str]) -> None:
        name = self.domain_name(server_id)
        devices = list(devices)
        if self._dominfo(server_id) is not None:
            with contextlib.suppress(CommandError):
                devices += interface_devices(self.virsh("dumpxml", name))
            self._ignore("destroy", name, benign=("not running", "failed to get domain"))
            try:
                self.virsh("undefine", "--managed-save", "--nvram", name)
            except CommandError as exc:
                if "failed to get domain" not in exc.stderr:
                    self._ignore("undefine", "--managed-save", name,
                                 benign=("failed to get domain",))
        self._ours.pop(name, None)
        with self._net_lock:
            self.ip.begin_pass()
            for dev in sorted(set(devices)):
                link = self.ip.link(dev)
                if link is not None and link.get("linkinfo", {}).get("info_kind") == "tun":
                    self.ip.delete_link(dev)
        shutil.rmtree(self.instance_path(server_id), ignore_errors=True)

    # --- power --------------------------------------------------------------------------
    def power_on(self, server_id: str) -> None:
        state = self._state(server_id)
        if state is None:
            raise VirtError(f"domain of server {server_id} is not defined")
        if state == PAUSED:
            self.virsh("resume", self.domain_name(server_id))
        elif state != RUNNING:
            self.virsh("start", self.domain_name(server_id))

    def power_off(self, server_id: str, timeout: float) -> None:
        info = self._dominfo(server_id)
        if info is None:
            return
        state, managed = info
        name = self.domain_name(server_id)
        if state in (RUNNING, PAUSED):
            if timeout > 0 and state == RUNNING:
                if self._shutdown_and_wait(server_id, ("shutdown", name), timeout):
                    return
                LOG.info("%s did not shut down within %.0fs: forcing it off", name, timeout)
            self._ignore("destroy", name, benign=("not running",))
        elif managed:
            self.virsh("managedsave-remove", name)

    def reboot(self, server_id: str, hard: bool, timeout: float) -> None:
        name = self.domain_name(server_id)
        state = self._state(server_id)
        if state is None:
            raise VirtError(f"domain of server {server_id} is not defined")
        if state == SUSPENDED:
            self.virsh("managedsave-remove", name)
        if state in (RUNNING, PAUSED):
            if hard or state == PAUSED:
                self._ignore("destroy", name, benign=("not running",))
            else:
                if not self._shutdown_and_wait(server_id, ("shutdown", "--mode", "acpi", name),
                                               timeout):
                    LOG.info("%s ignored the ACPI shutdown for %.0fs: hard reboot", name,
                             timeout)
                    self._ignore("destroy", name, benign=("not running",))
        self.virsh("start", name)

    def pause(self, server_id: str) -> None:
        if self._state(server_id) == RUNNING:
            self.virsh("suspend", self.domain_name(server_id))

    def unpause(self, server_id: str) -> None:
        if self._state(server_id) == PAUSED:
            self.virsh("resume", self.domain_name(server_id))

    def suspend(self, server_id: str) -> None:
        if self._state(server_id) in (RUNNING, PAUSED):
            self.virsh("managedsave", self.domain_name(server_id))

    def resume(self, server_id: str) -> None:
        self.power_on(server_id)

    # --- data ---------------------------------------------------------------------------
    def console_tail(self, server_id: str, max_bytes: int) -> tuple[object, bytes] | None:
        path = self.instance_path(server_id, "console.log")
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                fh.seek(max(0, st.st_size - max_bytes))
                return (st.st_size, st.st_mtime_ns), fh.read(max_bytes)
        except OSError:
            return None

    def vnc_address(self, server_id: str) -> dict[str, Any] | None:
        """``virsh vncdisplay`` (``address:display``) as ``{"host", "port": 5900 +
        display}``; None when the domain has no display or does not run."""
        if self.vnc_listen is None:
            return None
        out = self.virsh("vncdisplay", self.domain_name(server_id), check=False).strip()
        return parse_vncdisplay(out, self.vnc_listen)

    # --- resize -------------------------------------------------------------------------
    def has_disk_copy(self, server_id: str) -> bool:
        return self.instance_path(server_id, RESIZE_COPY).is_file()

    def keep_disk_copy(self, server_id: str) -> None:
        """``disk`` copied to ``disk.resize-orig`` (through a ``.part`` file, which
        ``prepare_disks`` removes when a crash left it), unless the copy exists."""
        disk = self.instance_path(server_id, "disk")
        kept = self.instance_path(server_id, RESIZE_COPY)
        if kept.is_file():
            return
        if not disk.is_file():
            raise VirtError(f"server {server_id} has no disk on this host", temporary=False)
        tmp = kept.with_name(kept.name + ".part")
        shutil.copyfile(disk, tmp)
        tmp.rename(kept)

    def restore_disk_copy(self, server_id: str) -> bool:
        kept = self.instance_path(server_id, RESIZE_COPY)
        if not kept.is_file():
            return False
        kept.replace(self.instance_path(server_id, "disk"))
        return True

    def drop_disk_copy(self, server_id: str) -> None:
        self.instance_path(server_id, RESIZE_COPY).unlink(missing_ok=True)

    def grow_disk(self, server_id: str, disk_gb: int) -> bool:
        """``qemu-img resize`` the overlay to ``disk_gb`` GiB when it is smaller."""
        disk = self.instance_path(server_id, "disk")
        if not disk.is_file():
            raise VirtError(f"server {server_id} has no disk on this host", temporary=False)
        info = json.loads(self.runner.run([self.qemu_img, "info", "--output=json", "-U",
                                           "-f", "qcow2", str(disk)]))
        wanted = disk_gb * GIB
        if wanted <= int(info.get("virtual-size", 0)):
            return False
        self.runner.run([self.qemu_img, "resize", "-q", "-f", "qcow2", str(disk), str(wanted)])
        return True

    def snapshot(self, server_id: str, dest: str) -> None:
        """Pause a running guest while its disk is copied (a consistent image), flatten
        the overlay with ``qemu-img convert -O qcow2``, resume."""
        disk = self.instance_path(server_id, "disk")
        if not disk.is_file():
            raise VirtError(f"server {server_id} has no disk on this host", temporary=False)
        paused = False
        if self._state(server_id) == RUNNING:
            self.virsh("suspend", self.domain_name(server_id))
            paused = True
        try:
            self.runner.run([self.qemu_img, "convert", "-U", "-O", "qcow2", str(disk), dest])
        finally:
            if paused:
                self.virsh("resume", self.domain_name(server_id))
