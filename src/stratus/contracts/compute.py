"""The documents between the compute API and the compute agent.

* :class:`AssignmentSet` / :class:`Assignment`: what
  ``GET /v2.1/stratus/compute-hosts/{host}/servers`` (long-polled) hands the
  agent: every server placed on its host and what should become of it.
* :class:`ServerReport`: what the agent posts to
  ``POST .../compute-hosts/{host}/servers/{id}/report`` (spawn result, power
  state, fault, console tail, snapshots uploaded, deletion done). Only the
  fields that are set are sent: a field left :data:`UNSET` is absent from the
  body, while ``None`` is sent as null (``task_state=None`` clears the task).
* :class:`HostResources`: the heartbeat body of
  ``PUT /v2.1/stratus/compute-hosts/{host}`` (``{"host": {...}}``).

Each has ``from_dict`` (raising :class:`ContractError` naming the bad field)
and ``to_dict`` (the JSON form on the wire). Standard library only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from stratus.contracts import _check as c
from stratus.contracts._check import ContractError
from stratus.contracts.instance import InstanceDocument

__all__ = ["POWER_STATES", "UNSET", "Assignment", "AssignmentSet", "BlockDevice",
           "ContractError", "Fault",
           "FixedIP", "FlavorInfo", "HostProblem", "HostResources", "ImageInfo",
           "PortAssignment",
           "RebootRequest", "ServerReport", "SnapshotRequest", "Unset"]

# libvirt's (and Nova's) power states: NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED
POWER_STATES = (0, 1, 3, 4, 6, 7)
REPORTED_VM_STATES = ("active", "stopped", "paused", "suspended", "error")


def tap_name(port_id: str) -> str:
    """The tap device of a port when the assignment names none."""
    return "tap" + port_id[:11]


# --- the assignment ------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageInfo:
    """What the agent needs of the server's image to fetch and check it."""

    disk_format: str | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    size: int | None = None
    min_disk: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = "image") -> ImageInfo:
        d = c.mapping(data if data is not None else {}, where)
        return cls(disk_format=c.opt_text(d, "disk_format", where),
                   checksum=c.opt_text(d, "checksum", where),
                   os_hash_algo=c.opt_text(d, "os_hash_algo", where),
                   os_hash_value=c.opt_text(d, "os_hash_value", where),
                   size=c.opt_integer(d, "size", where),
                   min_disk=c.opt_integer(d, "min_disk", where),
                   properties=c.obj(d, "properties", where))

    def to_dict(self) -> dict[str, Any]:
        return {"disk_format": self.disk_format, "checksum": self.checksum,
                "os_hash_algo": self.os_hash_algo, "os_hash_value": self.os_hash_value,
                "size": self.size, "min_disk": self.min_disk,
                "properties": dict(self.properties)}


@dataclass(frozen=True)
class FlavorInfo:
    """The flavor as it was when the server was created."""

    id: str = ""
    name: str = ""
    vcpus: int = 0
    ram: int = 0   # MiB
    disk: int = 0  # GiB
    swap: int = 0
    ephemeral: int = 0
    extra_specs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = "flavor") -> FlavorInfo:
        d = c.mapping(data if data is not None else {}, where)
        return cls(id=c.text(d, "id", where), name=c.text(d, "name", where),
                   vcpus=c.integer(d, "vcpus", where), ram=c.integer(d, "ram", where),
                   disk=c.integer(d, "disk", where), swap=c.integer(d, "swap", where),
                   ephemeral=c.integer(d, "ephemeral", where),
                   extra_specs=c.obj(d, "extra_specs", where))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "vcpus": self.vcpus, "ram": self.ram,
                "disk": self.disk, "swap": self.swap, "ephemeral": self.ephemeral,
                "extra_specs": dict(self.extra_specs)}


@dataclass(frozen=True)
class FixedIP:
    ip_address: str
    subnet_id: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "fixed_ip") -> FixedIP:
        d = c.mapping(data, where)
        return cls(c.required_text(d, "ip_address", where), c.opt_text(d, "subnet_id", where))

    def to_dict(self) -> dict[str, Any]:
        return {"subnet_id": self.subnet_id, "ip_address": self.ip_address}


@dataclass(frozen=True)
class PortAssignment:
    """One port of the server: the agent makes its tap and waits for it to be ACTIVE."""

    id: str
    mac_address: str
    network_id: str = ""
    mtu: int | None = None
    device_name: str | None = None
    fixed_ips: list[FixedIP] = field(default_factory=list)

    @property
    def tap(self) -> str:
        """The tap device: ``device_name``, else ``tap<id[:11]>``."""
        return self.device_name or tap_name(self.id)

    @classmethod
    def from_dict(cls, data: Any, where: str = "port") -> PortAssignment:
        d = c.mapping(data, where)
        ips = c.seq(d.get("fixed_ips"), c.path(where, "fixed_ips"))
        return cls(id=c.required_text(d, "id", where),
                   mac_address=c.required_text(d, "mac_address", where),
                   network_id=c.text(d, "network_id", where), mtu=c.opt_integer(d, "mtu", where),
                   device_name=c.opt_text(d, "device_name", where),
                   fixed_ips=[FixedIP.from_dict(ip, c.path(c.path(where, "fixed_ips"), i))
                              for i, ip in enumerate(ips)])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "network_id": self.network_id, "mac_address": self.mac_address,
                "mtu": self.mtu, "device_name": self.device_name,
                "fixed_ips": [ip.to_dict() for ip in self.fixed_ips]}


@dataclass(frozen=True)
class RebootRequest:
    """The last reboot asked for: the agent reboots when ``generation`` is above the last
    one it did."""

    generation: int = 0
    type: str | None = "SOFT"

    @property
    def hard(self) -> bool:
        return (self.type or "SOFT").upper() == "HARD"

    @classmethod
    def from_dict(cls, data: Any, where: str = "reboot") -> RebootRequest:
        d = c.mapping(data if data is not None else {}, where)
        return cls(c.integer(d, "generation", where), c.opt_text(d, "type", where))

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "type": self.type}


@dataclass(frozen=True)
class ResizeRequest:
    """The last resize asked for (``compute/server_resize.py``): the agent resizes the
    server to the assignment's flavor (``revert``: back to it, from the old disk it kept)
    while the generation it last resized at is below ``generation``; ``pending`` keeps the
    old disk for a revert (the resize waits for confirmation), and without it the agent
    drops the old disk."""

    generation: int = 0
    revert: bool = False
    pending: bool = False

    @classmethod
    def from_dict(cls, data: Any, where: str = "resize") -> ResizeRequest:
        d = c.mapping(data if data is not None else {}, where)
        return cls(c.integer(d, "generation", where), c.boolean(d, "revert", where),
                   c.boolean(d, "pending", where))

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "revert": self.revert,
                "pending": self.pending}


@dataclass(frozen=True)
class SnapshotRequest:
    """A snapshot to upload into the (queued) image ``image_id``."""

    image_id: str
    name: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "snapshot") -> SnapshotRequest:
        d = c.mapping(data, where)
        return cls(c.required_text(d, "image_id", where), c.opt_text(d, "name", where))

    def to_dict(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "name": self.name}


@dataclass(frozen=True)
class BlockDevice:
    """A volume the server should have plugged (``compute/volumes.py`` lists those whose
    attachment has its ``connection_info``; one absent from the list is unplugged).

    ``connection_info`` is the volume API's (``driver_volume_type`` iscsi, ``data`` with
    ``target_iqn``, ``target_portal``, ``target_lun``, ``auth_username``,
    ``auth_password``); ``initiator`` is the iSCSI initiator name the export was made
    for (the agent's QEMU logs in with it). ``size_gb`` is the volume's size as the
    compute API last read it: a plugged disk smaller than that (an extend while attached)
    has QEMU re-read its capacity, so the guest sees the new size."""

    volume_id: str
    attachment_id: str
    device: str  # vdb, vdc ... (vda for a boot volume)
    connection_info: dict[str, Any] = field(default_factory=dict)
    boot_index: int | None = None
    initiator: str | None = None
    size_gb: int | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "block_device") -> BlockDevice:
        d = c.mapping(data, where)
        return cls(volume_id=c.required_text(d, "volume_id", where),
                   attachment_id=c.required_text(d, "attachment_id", where),
                   device=c.required_text(d, "device", where),
                   connection_info=c.obj(d, "connection_info", where),
                   boot_index=c.opt_integer(d, "boot_index", where),
                   initiator=c.opt_text(d, "initiator", where),
                   size_gb=c.opt_integer(d, "size_gb", where))

    def to_dict(self) -> dict[str, Any]:
        return {"volume_id": self.volume_id, "attachment_id": self.attachment_id,
                "device": self.device, "connection_info": dict(self.connection_info),
                "boot_index": self.boot_index, "initiator": self.initiator,
                "size_gb": self.size_gb}


@dataclass(frozen=True)
class Assignment:
    """One server placed on the agent's host, and what should become of it."""

    id: str
    vm_state: str
    name: str | None = None
    hostname: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    image_id: str | None = None
    image: ImageInfo = field(default_factory=ImageInfo)
    flavor: FlavorInfo = field(default_factory=FlavorInfo)
    task_state: str | None = None
    desired_power: str | None = "running"
    reboot: RebootRequest = field(default_factory=RebootRequest)
    # the last rebuild asked for: the agent rebuilds (a fresh root disk from ``image_id``,
    # same ports) while the generation it last rebuilt at is below it
    rebuild: int = 0
    # the last re-apply of the ports asked for (injectNetworkInfo): the agent plugs every
    # port again (taps, MTU, interfaces the domain lacks) when it is above the one it
    # last applied; absent: 0
    network: int = 0
    resize: ResizeRequest = field(default_factory=ResizeRequest)  # absent: none asked
    delete: bool = False
    config_drive: bool = False
    ports: list[PortAssignment] = field(default_factory=list)
    metadata_document: InstanceDocument | None = None
    snapshots: list[SnapshotRequest] = field(default_factory=list)
    attempt: int = 0  # the scheduling attempt this placement is
    created_at: str | None = None
    block_devices: list[BlockDevice] = field(default_factory=list)  # absent: none
    # attachment ids the API waits to see unplugged (absent: none): the agent reports its
    # volumes while any is listed, even when nothing of them is left on the host
    detaching: list[str] = field(default_factory=list)

    @property
    def deleting(self) -> bool:
        return self.delete or self.vm_state == "deleted"

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Assignment:
        d = c.mapping(data, where)
        doc = d.get("metadata_document")
        ports = c.seq(d.get("ports"), c.path(where, "ports"))
        snaps = c.seq(d.get("snapshots"), c.path(where, "snapshots"))
        bdms = c.seq(d.get("block_devices"), c.path(where, "block_devices"))
        detaching = c.seq(d.get("detaching"), c.path(where, "detaching"))
        for i, x in enumerate(detaching):
            if not isinstance(x, str):
                raise ContractError(c.path(c.path(where, "detaching"), i),
                                    "expected an attachment id (a string)")
        return cls(
            id=c.required_text(d, "id", where), vm_state=c.required_text(d, "vm_state", where),
            name=c.opt_text(d, "name", where), hostname=c.opt_text(d, "hostname", where),
            project_id=c.opt_text(d, "project_id", where),
            user_id=c.opt_text(d, "user_id", where), image_id=c.opt_text(d, "image_id", where),
            image=ImageInfo.from_dict(d.get("image"), c.path(where, "image")),
            flavor=FlavorInfo.from_dict(d.get("flavor"), c.path(where, "flavor")),
            task_state=c.opt_text(d, "task_state", where),
            desired_power=c.opt_text(d, "desired_power", where),
            reboot=RebootRequest.from_dict(d.get("reboot"), c.path(where, "reboot")),
            rebuild=c.integer(d, "rebuild", where), network=c.integer(d, "network", where),
            resize=ResizeRequest.from_dict(d.get("resize"), c.path(where, "resize")),
            delete=c.boolean(d, "delete", where), config_drive=c.boolean(d, "config_drive", where),
            ports=[PortAssignment.from_dict(p, c.path(c.path(where, "ports"), i))
                   for i, p in enumerate(ports)],
            metadata_document=None if doc is None else InstanceDocument.from_dict(
                doc, c.path(where, "metadata_document")),
            snapshots=[SnapshotRequest.from_dict(s, c.path(c.path(where, "snapshots"), i))
                       for i, s in enumerate(snaps)],
            attempt=c.integer(d, "attempt", where), created_at=c.opt_text(d, "created_at", where),
            block_devices=[BlockDevice.from_dict(b, c.path(c.path(where, "block_devices"), i))
                           for i, b in enumerate(bdms)],
            detaching=list(detaching))

    def to_dict(self) -> dict[str, Any]:
        """The wire form; ``rebuild``, ``network``, ``resize``, ``block_devices`` and
        ``detaching`` only when there are some (absent: none)."""
        out = self._fields()
        if self.rebuild:
            out["rebuild"] = self.rebuild
        if self.network:
            out["network"] = self.network
        if self.resize.generation:
            out["resize"] = self.resize.to_dict()
        if self.block_devices:
            out["block_devices"] = [b.to_dict() for b in self.block_devices]
        if self.detaching:
            out["detaching"] = list(self.detaching)
        return out

    def _fields(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "hostname": self.hostname,
            "project_id": self.project_id, "user_id": self.user_id, "image_id": self.image_id,
            "image": self.image.to_dict(), "flavor": self.flavor.to_dict(),
            "vm_state": self.vm_state, "task_state": self.task_state,
            "desired_power": self.desired_power, "reboot": self.reboot.to_dict(),
            "delete": self.delete, "config_drive": self.config_drive,
            "ports": [p.to_dict() for p in self.ports],
            "metadata_document": None if self.metadata_document is None
            else self.metadata_document.to_dict(),
            "snapshots": [s.to_dict() for s in self.snapshots], "attempt": self.attempt,
            "created_at": self.created_at}


@dataclass(frozen=True)
class AssignmentSet:
    """Every server of one host, and the host's generation (the long-poll's ``since``)."""

    generation: int
    servers: list[Assignment] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any) -> AssignmentSet:
        d = c.mapping(data, "")
        servers = c.seq(d.get("servers"), "servers")
        return cls(c.integer(d, "generation", ""),
                   [Assignment.from_dict(s, c.path("servers", i)) for i, s in enumerate(servers)])

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "servers": [s.to_dict() for s in self.servers]}


# --- the report ----------------------------------------------------------------------------
class Unset(enum.Enum):
    """A report field that is not sent (as opposed to ``None``, sent as null)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset.UNSET


@dataclass
class Fault:
    """Why a server failed; a part the sender left out is absent (None)."""

    code: int | None = None
    message: str | None = None
    details: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "fault") -> Fault:
        d = c.mapping(data, where)
        code = d.get("code")
        if code is not None:
            try:
                code = int(code)
            except (TypeError, ValueError):
                raise ContractError(c.path(where, "code"),
                                    f"{c.path(where, 'code')} must be an integer.") from None
        return cls(code, None if d.get("message") is None else str(d["message"]),
                   None if d.get("details") is None else str(d["details"]))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("code", "message", "details"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass
class ServerReport:
    """What the agent saw of one server, or did to it. Fields left UNSET are not sent."""

    vm_state: str | Unset = UNSET
    power_state: int | Unset = UNSET
    task_state: str | Unset | None = UNSET   # None: the task is done
    fault: Fault | Unset | None = UNSET      # None: no fault any more
    reschedule: bool | Unset = UNSET         # the spawn failed: place it elsewhere
    reboot_generation: int | Unset = UNSET
    rebuild_generation: int | Unset = UNSET  # the rebuild done (Assignment.rebuild)
    resize_generation: int | Unset = UNSET  # the resize or revert done (Assignment.resize)
    deleted: bool | Unset = UNSET            # domain and files are gone
    snapshots_done: list[str] | Unset = UNSET
    console_tail: str | Unset = UNSET
    volumes: list[str] | Unset = UNSET       # attachment ids plugged into the domain
    # the guest's VNC display {"host": address, "port": int}; None: it has none (stopped)
    vnc: dict[str, Any] | Unset | None = UNSET

    @classmethod
    def from_dict(cls, data: Any) -> ServerReport:
        """The report in a request body. Keys it does not know are ignored (a newer agent
        still reports); the messages are the compute API's 400 answers. Of the fields the
        API only acts on when well-formed (``deleted``, ``reschedule``,
        ``reboot_generation``, ``rebuild_generation``, ``resize_generation``,
        ``task_state``), a
        value of another type is dropped."""
        if not isinstance(data, Mapping):
            raise ContractError("", "The report must be a JSON object.")
        r = cls()
        if "power_state" in data:
            value = data["power_state"]
            if isinstance(value, bool) or value not in POWER_STATES:
                raise ContractError("power_state", "power_state must be one of 0, 1, 3, 4, 6, 7.")
            if isinstance(value, int):  # 1.0 passes the check but is not recorded
                r.power_state = value
        vm_state = data.get("vm_state")
        if vm_state is not None:
            if vm_state not in REPORTED_VM_STATES:
                raise ContractError("vm_state", "vm_state must be one of active, stopped, "
                                    "paused, suspended, error.")
            r.vm_state = str(vm_state)
        if "fault" in data:
            fault = data["fault"]
            if fault is not None and not isinstance(fault, Mapping):
                raise ContractError("fault", "fault must be null or an object with code, "
                                    "message, details.")
            r.fault = None if fault is None else Fault.from_dict(fault)
        done = data.get("snapshots_done")
        if done is not None:
            if not (isinstance(done, list) and all(isinstance(x, str) for x in done)):
                raise ContractError("snapshots_done", "snapshots_done must be a list of image IDs.")
            r.snapshots_done = list(done)
        tail = data.get("console_tail")
        if tail is not None:
            if not isinstance(tail, str):
                raise ContractError("console_tail", "console_tail must be a string.")
            r.console_tail = tail
        volumes = data.get("volumes")
        if volumes is not None:
            if not (isinstance(volumes, list) and all(isinstance(x, str) for x in volumes)):
                raise ContractError("volumes", "volumes must be a list of attachment IDs.")
            r.volumes = list(volumes)
        if "vnc" in data:
            r.vnc = vnc_address(data["vnc"])
        for flag in ("deleted", "reschedule"):
            if isinstance(data.get(flag), bool):
                setattr(r, flag, data[flag])
        for gen in ("reboot_generation", "rebuild_generation", "resize_generation"):
            if isinstance(data.get(gen), int) and not isinstance(data[gen], bool):
                setattr(r, gen, int(data[gen]))
        if "task_state" in data and (data["task_state"] is None
                                     or isinstance(data["task_state"], str)):
            r.task_state = data["task_state"]
        return r

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is UNSET:
                continue
            out[f.name] = value.to_dict() if isinstance(value, Fault) else value
        return out


def vnc_address(value: Any) -> dict[str, Any] | None:
    """A report's ``vnc``: null or ``{"host": non-empty text, "port": 1-65535}``."""
    if value is None:
        return None
    if not (isinstance(value, Mapping) and set(value) == {"host", "port"}
            and isinstance(value["host"], str) and 0 < len(value["host"]) <= 255
            and isinstance(value["port"], int) and not isinstance(value["port"], bool)
            and 0 < value["port"] < 65536):
        raise ContractError("vnc", "vnc must be null or {\"host\": address, \"port\": "
                            "1-65535}.")
    return {"host": value["host"], "port": value["port"]}


# --- the heartbeat -------------------------------------------------------------------------
HOST_INTS = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
             "hypervisor_version", "running_vms")
HOST_TEXTS = ("virt_type", "hypervisor_type", "hypervisor_hostname", "host_ip",
              "availability_zone", "cpu_arch", "uptime")


@dataclass
class HostProblem:
    """A condition on the host that makes its hypervisor slow (the agent's host check,
    ``agent/compute/hostcheck.py``): ``code`` is ``kvm_device``, ``kvm_device_changed``,
    ``qemu_reprobe``, ``slow_define`` or ``slow_start``; ``since`` is when it was first
    seen (ISO 8601)."""

    code: str
    message: str
    since: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "problem") -> HostProblem:
        d = c.mapping(data, where)
        return cls(c.required_text(d, "code", where), c.text(d, "message", where),
                   c.opt_text(d, "since", where))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.since is not None:
            out["since"] = self.since
        return out


@dataclass
class HostResources:
    """A compute host's inventory and use, sent with every heartbeat. A field left None
    is not sent (the API keeps what it had). ``problems`` (optional, newer agents): the
    host's current problems; an empty list says there are none any more."""

    vcpus: int | None = None
    memory_mb: int | None = None
    local_gb: int | None = None
    vcpus_used: int | None = None
    memory_mb_used: int | None = None
    local_gb_used: int | None = None
    hypervisor_version: int | None = None
    running_vms: int | None = None
    virt_type: str | None = None
    hypervisor_type: str | None = None
    hypervisor_hostname: str | None = None
    host_ip: str | None = None
    availability_zone: str | None = None
    cpu_arch: str | None = None
    # the host's uptime line as ``uptime`` prints it (agent/compute/hostuptime.py): what
    # os-hypervisors shows; an older agent sends none and the API keeps its 501
    uptime: str | None = None
    problems: list[HostProblem] | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "host") -> HostResources:
        d = c.mapping(data, where)
        ints: dict[str, Any] = {k: c.opt_integer(d, k, where) for k in HOST_INTS}
        texts: dict[str, Any] = {k: c.opt_text(d, k, where) for k in HOST_TEXTS}
        for k, v in ints.items():
            if v is not None and v < 0:
                raise ContractError(c.path(where, k), f"must not be negative, got {v}")
        problems = None
        if d.get("problems") is not None:
            where_p = c.path(where, "problems")
            problems = [HostProblem.from_dict(p, c.path(where_p, i))
                        for i, p in enumerate(c.seq(d["problems"], where_p))]
        return cls(**ints, **texts, problems=problems)

    def to_dict(self) -> dict[str, Any]:
        """The set fields; an empty text is left out too (the API refuses empty texts)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name != "problems" and getattr(self, f.name) not in (None, "")}
        if self.problems is not None:
            out["problems"] = [p.to_dict() for p in self.problems]
        return out
