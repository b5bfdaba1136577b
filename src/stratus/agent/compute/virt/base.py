"""The compute driver interface and the description of one instance.

The agent decides *what* must happen to a server; a :class:`ComputeDriver`
does it on the host. Every method is idempotent: calling it again after a
crash half-way (or when the host is already right) converges instead of
failing, which is what lets the agent redo any step after a restart.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

# Nova's power_state codes (what the agent reports).
NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7

POWER_STATE_NAMES = {NOSTATE: "nostate", RUNNING: "running", PAUSED: "paused",
                     SHUTDOWN: "shutdown", CRASHED: "crashed", SUSPENDED: "suspended"}


class VirtError(Exception):
    """A driver step failed. ``temporary``: retrying the same step later may work."""

    def __init__(self, message: str, temporary: bool = True):
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class PortSpec:
    id: str
    mac_address: str
    mtu: int | None
    device: str  # tap device name on the host


@dataclass
class InstanceSpec:
    """Everything the driver needs to build one server's domain and files."""

    server_id: str
    name: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    image_path: str  # the cached base image
    image_format: str  # raw | qcow2
    ports: list[PortSpec] = field(default_factory=list)
    config_drive: dict[str, bytes] | None = None  # files of the config drive, or none
    root_volume: VolumeSpec | None = None  # boot from volume: vda is this network disk
    ephemeral_gb: int = 0  # the flavor's ephemeral disk, disk.eph0 (virt/localdisks.py)
    swap_mb: int = 0  # the flavor's swap disk, disk.swap


@dataclass(frozen=True)
class VolumeSpec:
    """A network (iSCSI) disk to plug into a domain (``agent/compute/volumes.py`` makes
    it from the assignment's block device; ``virt/volumes.py`` plugs it)."""

    attachment_id: str
    volume_id: str
    device: str  # vdb ...
    target_iqn: str
    lun: int
    host: str  # the portal's address
    port: int
    username: str | None = None  # CHAP, with ``password``
    password: str | None = None
    initiator: str | None = None


@dataclass(frozen=True)
class InstanceInfo:
    server_id: str
    domain: str
    power_state: int


@dataclass(frozen=True)
class HostInfo:
    virt_type: str  # kvm | qemu
    hypervisor_type: str  # QEMU
    hypervisor_version: int  # major*1000000 + minor*1000 + micro


class ComputeDriver(abc.ABC):
    """What the compute agent needs from a hypervisor."""

    # --- inventory ----------------------------------------------------------------------
    @abc.abstractmethod
    def host_info(self) -> HostInfo: ...

    @abc.abstractmethod
    def list_instances(self) -> dict[str, InstanceInfo]:
        """Our domains (by server id), whatever their state."""

    @abc.abstractmethod
    def info(self, server_id: str) -> InstanceInfo | None:
        """The domain of that server, or None when it is not defined."""

    @abc.abstractmethod
    def list_instance_dirs(self) -> set[str]:
        """Server ids that have files on this host (instance directories)."""

    @abc.abstractmethod
    def has_disk(self, server_id: str) -> bool: ...

    # --- building -----------------------------------------------------------------------
    @abc.abstractmethod
    def prepare_disks(self, spec: InstanceSpec) -> None:
        """The overlay disk (resized to the flavor), the flavor's ephemeral and swap disks
        and the config drive, if asked; disks already there are kept."""

    @abc.abstractmethod
    def plug_vifs(self, spec: InstanceSpec) -> None:
        """The tap devices (MTU, up) the domain's NICs use."""

    @abc.abstractmethod
    def define(self, spec: InstanceSpec) -> None:
        """Define (or redefine) the domain."""

    @abc.abstractmethod
    def destroy(self, server_id: str, devices: list[str]) -> None:
        """Stop and undefine the domain, remove its files and the tap ``devices``."""

    # --- power --------------------------------------------------------------------------
    @abc.abstractmethod
    def power_on(self, server_id: str) -> None:
        """Start the domain (from a managed save when it was suspended)."""

    @abc.abstractmethod
    def power_off(self, server_id: str, timeout: float) -> None:
        """Clean shutdown, forced after ``timeout`` seconds (0: force at once)."""

    @abc.abstractmethod
    def reboot(self, server_id: str, hard: bool, timeout: float) -> None: ...

    @abc.abstractmethod
    def pause(self, server_id: str) -> None: ...

    @abc.abstractmethod
    def unpause(self, server_id: str) -> None: ...

    @abc.abstractmethod
    def suspend(self, server_id: str) -> None: ...

    @abc.abstractmethod
    def resume(self, server_id: str) -> None: ...

    # --- data ---------------------------------------------------------------------------
    @abc.abstractmethod
    def console_tail(self, server_id: str, max_bytes: int) -> tuple[object, bytes] | None:
        """(a key that changes when the log changes, its last ``max_bytes``), or None."""

    def vnc_address(self, server_id: str) -> dict[str, Any] | None:
        """The running guest's VNC display ``{"host", "port"}``, or None (no display)."""
        return None

    @abc.abstractmethod
    def snapshot(self, server_id: str, dest: str) -> None:
        """Write a flattened qcow2 copy of the server's disk to ``dest``."""

    # --- resize (agent/compute/converge.py, ServerWork._resize) -------------------------
    def has_disk_copy(self, server_id: str) -> bool:
        """Whether the root disk's copy a resize keeps for a revert is on the host."""
        return False

    def keep_disk_copy(self, server_id: str) -> None:
        """Copy the (stopped) server's root disk aside for a revert, unless a copy is
        there already (a resize started again keeps the first, original copy)."""
        raise VirtError("this compute driver cannot resize servers", temporary=False)

    def restore_disk_copy(self, server_id: str) -> bool:
        """Put the kept copy back as the root disk (a revert); False when none is kept."""
        raise VirtError("this compute driver cannot resize servers", temporary=False)

    def drop_disk_copy(self, server_id: str) -> None:
        """Remove the kept copy (a confirmed resize); none: nothing to do."""
        return None

    def grow_disk(self, server_id: str, disk_gb: int) -> bool:
        """Grow the (stopped) server's root disk to ``disk_gb`` GiB; never shrinks it.
        True when it grew."""
        raise VirtError("this compute driver cannot resize servers", temporary=False)

    # --- interfaces (os-interface; agent/compute/converge.py) ----------------------------
    def plugged_interfaces(self, server_id: str) -> set[str]:
        """The tap devices of the domain's interfaces (running or defined)."""
        raise VirtError("this compute driver cannot hot-plug interfaces", temporary=False)

    def attach_interface(self, server_id: str, port: PortSpec) -> None:
        """Plug the port's interface (its tap made) into the running domain and its
        definition."""
        raise VirtError("this compute driver cannot hot-plug interfaces", temporary=False)

    def detach_interface(self, server_id: str, device: str) -> None:
        """Unplug the interface on tap ``device`` from the domain, then delete the tap."""
        raise VirtError("this compute driver cannot hot-plug interfaces", temporary=False)

    # --- volumes (network disks; drivers without them refuse) ---------------------------
    def plugged_volumes(self, server_id: str) -> set[str]:
        """Attachment ids of the volumes plugged into the server's domain."""
        raise VirtError("this compute driver cannot attach volumes", temporary=False)

    def attach_volume(self, server_id: str, volume: VolumeSpec) -> None:
        """Plug the volume (its CHAP secret first): live when the domain runs, and into
        its definition."""
        raise VirtError("this compute driver cannot attach volumes", temporary=False)

    def detach_volume(self, server_id: str, attachment_id: str) -> None:
        """Unplug the volume and wait until it has left the domain; then its secret."""
        raise VirtError("this compute driver cannot detach volumes", temporary=False)

    def volume_secrets(self) -> set[str]:
        """Attachment ids of this agent's volume secrets on the host."""
        return set()

    def remove_volume_secret(self, attachment_id: str) -> None:
        """Remove this agent's secret of that attachment (none: nothing to do)."""
        return None

    def resize_volume(self, server_id: str, attachment_id: str, size_bytes: int) -> bool:
        """Have the running domain re-read the capacity of a plugged volume that shows less
        than ``size_bytes`` (the volume was extended while attached), so the guest sees the
        new size; True when it grew. Drivers without volumes: nothing to do."""
        return False
