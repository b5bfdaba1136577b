"""An in-memory compute driver for unit tests: it keeps domains, disks, taps and
console logs in dictionaries and records every call; ``fail`` injects errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from stratus.agent.compute.virt.base import (
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    ComputeDriver,
    HostInfo,
    InstanceInfo,
    InstanceSpec,
    PortSpec,
    VirtError,
    VolumeSpec,
)


@dataclass
class FakeDomain:
    spec: InstanceSpec
    state: int = SHUTDOWN
    boots: int = 0


@dataclass
class FakeDriver(ComputeDriver):
    prefix: str = "instance-"
    domains: dict[str, FakeDomain] = field(default_factory=dict)
    disks: dict[str, str] = field(default_factory=dict)  # server id -> base image path
    config_drives: dict[str, dict[str, bytes]] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    taps: dict[str, int | None] = field(default_factory=dict)  # device -> mtu
    consoles: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)  # method name -> error
    snapshots: dict[str, str] = field(default_factory=dict)  # dest -> server id
    # server id -> attachment id -> the plugged volume; attachment ids with a secret
    volumes: dict[str, dict[str, VolumeSpec]] = field(default_factory=dict)
    volume_sizes: dict[str, int] = field(default_factory=dict)  # attachment id -> bytes shown
    secrets: set[str] = field(default_factory=set)
    disk_copies: dict[str, str] = field(default_factory=dict)  # server id -> kept disk
    disk_sizes: dict[str, int] = field(default_factory=dict)  # server id -> GiB grown to

    def _call(self, method: str, server_id: str) -> None:
        self.calls.append((method, server_id))
        err = self.fail.get(method)
        if err is not None:
            raise err

    def _dom(self, server_id: str) -> FakeDomain:
        dom = self.domains.get(server_id)
        if dom is None:
            raise VirtError(f"domain of server {server_id} is not defined")
        return dom

    def host_info(self) -> HostInfo:
        return HostInfo("qemu", "QEMU", 7002000)

    def list_instances(self) -> dict[str, InstanceInfo]:
        return {sid: InstanceInfo(sid, self.prefix + sid, d.state)
                for sid, d in self.domains.items()}

    def info(self, server_id: str) -> InstanceInfo | None:
        return self.list_instances().get(server_id)

    def list_instance_dirs(self) -> set[str]:
        return set(self.dirs)

    def has_disk(self, server_id: str) -> bool:
        return server_id in self.disks

    def prepare_disks(self, spec: InstanceSpec) -> None:
        self._call("prepare_disks", spec.server_id)
        self.dirs.add(spec.server_id)
        self.disks.setdefault(spec.server_id, spec.image_path)
        if spec.config_drive is not None:
            self.config_drives.setdefault(spec.server_id, dict(spec.config_drive))

    def plug_vifs(self, spec: InstanceSpec) -> None:
        self._call("plug_vifs", spec.server_id)
        for port in spec.ports:
            self.taps[port.device] = port.mtu

    def define(self, spec: InstanceSpec) -> None:
        self._call("define", spec.server_id)
        dom = self.domains.get(spec.server_id)
        if dom is None:
            self.domains[spec.server_id] = FakeDomain(spec)
        else:
            dom.spec = spec

    def destroy(self, server_id: str, devices: list[str]) -> None:
        self._call("destroy", server_id)
        dom = self.domains.pop(server_id, None)
        self.volumes.pop(server_id, None)  # the secrets stay: the sweep removes them
        devs = set(devices) | ({p.device for p in dom.spec.ports} if dom else set())
        for dev in devs:
            self.taps.pop(dev, None)
        self.disks.pop(server_id, None)
        self.disk_copies.pop(server_id, None)
        self.disk_sizes.pop(server_id, None)
        self.config_drives.pop(server_id, None)
        self.consoles.pop(server_id, None)
        self.dirs.discard(server_id)

    def power_on(self, server_id: str) -> None:
        self._call("power_on", server_id)
        dom = self._dom(server_id)
        if dom.state != RUNNING:
            if dom.state != PAUSED:
                dom.boots += 1
                self.consoles[server_id] = self.consoles.get(server_id, b"") + b"booted\n"
            dom.state = RUNNING

    def power_off(self, server_id: str, timeout: float) -> None:
        self._call("power_off", server_id)
        if server_id in self.domains:
            self.domains[server_id].state = SHUTDOWN

    def reboot(self, server_id: str, hard: bool, timeout: float) -> None:
        self._call("reboot_hard" if hard else "reboot_soft", server_id)
        dom = self._dom(server_id)
        dom.state = RUNNING
        dom.boots += 1

    def pause(self, server_id: str) -> None:
        self._call("pause", server_id)
        dom = self._dom(server_id)
        if dom.state == RUNNING:
            dom.state = PAUSED

    def unpause(self, server_id: str) -> None:
        self._call("unpause", server_id)
        dom = self._dom(server_id)
        if dom.state == PAUSED:
            dom.state = RUNNING

    def suspend(self, server_id: str) -> None:
        self._call("suspend", server_id)
        dom = self._dom(server_id)
        if dom.state in (RUNNING, PAUSED):
            dom.state = SUSPENDED

    def resume(self, server_id: str) -> None:
        self._call("resume", server_id)
        self._dom(server_id).state = RUNNING

    def console_tail(self, server_id: str, max_bytes: int) -> tuple[object, bytes] | None:
        data = self.consoles.get(server_id)
        if data is None:
            return None
        return len(data), data[-max_bytes:]

    def snapshot(self, server_id: str, dest: str) -> None:
        self._call("snapshot", server_id)
        if server_id not in self.disks:
            raise VirtError(f"server {server_id} has no disk on this host", temporary=False)
        with open(dest, "wb") as fh:
            fh.write(b"QFI\xfb fake snapshot of " + server_id.encode())
        self.snapshots[dest] = server_id

    # --- interfaces ---------------------------------------------------------------------
    def plugged_interfaces(self, server_id: str) -> set[str]:
        dom = self.domains.get(server_id)
        return {p.device for p in dom.spec.ports} if dom else set()

    def attach_interface(self, server_id: str, port: PortSpec) -> None:
        self._call("attach_interface", server_id)
        dom = self._dom(server_id)
        if port.device not in self.taps:
            raise VirtError(f"tap {port.device} does not exist", temporary=False)
        if all(p.device != port.device for p in dom.spec.ports):
            dom.spec.ports = [*dom.spec.ports, port]

    def detach_interface(self, server_id: str, device: str) -> None:
        self._call("detach_interface", server_id)
        dom = self._dom(server_id)
        dom.spec.ports = [p for p in dom.spec.ports if p.device != device]
        self.taps.pop(device, None)

    # --- resize -------------------------------------------------------------------------
    def has_disk_copy(self, server_id: str) -> bool:
        return server_id in self.disk_copies

    def keep_disk_copy(self, server_id: str) -> None:
        self._call("keep_disk_copy", server_id)
        if server_id not in self.disks:
            raise VirtError(f"server {server_id} has no disk on this host", temporary=False)
        if server_id not in self.disk_copies:
            self.disk_copies[server_id] = f"{self.disks[server_id]}@" \
                f"{self.disk_sizes.get(server_id, 0)}"

    def restore_disk_copy(self, server_id: str) -> bool:
        self._call("restore_disk_copy", server_id)
        kept = self.disk_copies.pop(server_id, None)
        if kept is None:
            return False
        path, _, size = kept.rpartition("@")
        self.disks[server_id] = path
        self.disk_sizes[server_id] = int(size)
        return True

    def drop_disk_copy(self, server_id: str) -> None:
        self._call("drop_disk_copy", server_id)
        self.disk_copies.pop(server_id, None)

    def grow_disk(self, server_id: str, disk_gb: int) -> bool:
        self._call("grow_disk", server_id)
        if server_id not in self.disks:
            raise VirtError(f"server {server_id} has no disk on this host", temporary=False)
        if self.disk_sizes.get(server_id, 0) >= disk_gb:
            return False
        self.disk_sizes[server_id] = disk_gb
        return True

    # --- volumes ------------------------------------------------------------------------
    def plugged_volumes(self, server_id: str) -> set[str]:
        if server_id not in self.domains:
            return set()
        return set(self.volumes.get(server_id, {}))

    def attach_volume(self, server_id: str, volume: VolumeSpec) -> None:
        self._call("attach_volume", server_id)
        self._dom(server_id)
        if volume.username:
            self.secrets.add(volume.attachment_id)
        self._call("attach_volume_device", server_id)  # a crash between the two steps
        self.volumes.setdefault(server_id, {})[volume.attachment_id] = volume

    def detach_volume(self, server_id: str, attachment_id: str) -> None:
        self._call("detach_volume", server_id)
        self.volumes.get(server_id, {}).pop(attachment_id, None)
        self._call("detach_volume_secret", server_id)
        self.secrets.discard(attachment_id)

    def volume_secrets(self) -> set[str]:
        return set(self.secrets)

    def remove_volume_secret(self, attachment_id: str) -> None:
        self._call("remove_volume_secret", attachment_id)
        self.secrets.discard(attachment_id)

    def resize_volume(self, server_id: str, attachment_id: str, size_bytes: int) -> bool:
        if attachment_id not in self.volumes.get(server_id, {}):
            return False
        if self.volume_sizes.get(attachment_id, 0) >= size_bytes:
            return False
        self._call("resize_volume", server_id)
        self.volume_sizes[attachment_id] = size_bytes
        return True
