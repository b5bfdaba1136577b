"""The documents between the volume API (``stratus-volume``) and the storage agent.

The storage agent (``stratus-storage-agent``, on the hosts of group ``storage``)
talks to the volume API only:

* ``POST /v3/storage/hosts`` with a :class:`HostRegistration` as the body:
  registers the host and is its heartbeat (sent every report interval);
* ``GET /v3/storage/hosts/{host}/state?since=N&wait=S``: long-polled as
  ``ApiClient.long_poll(state_path(host), since, wait)`` does (answers as soon as the
  host's generation differs from ``N``, or after ``S`` seconds, at most 30;
  ``generation=N`` is accepted as another name of ``since``) with a
  :class:`StorageHostState`: every volume, snapshot, export and upload that should
  exist on the host. Anything the agent has that is not listed is removed;
* ``POST /v3/storage/hosts/{host}/report`` with a :class:`StorageReport`: the agent's
  ACTUAL inventory after each pass (level-triggered both ways). The API moves
  ``creating``/``extending`` to ``available``, drops a ``deleting`` row once the
  agent no longer lists it, answers a waiting attachment update when its export is
  ``ready``, and puts an object the agent reports ``error`` into ``error`` with the
  fault as its reason.

Each document has ``from_dict`` (raising :class:`ContractError` naming the bad field by
its path, e.g. ``volumes[0].size_gb``) and ``to_dict`` (its JSON form). Unknown keys
are ignored so either side may add optional fields first. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stratus.contracts import _check as c
from stratus.contracts._check import ContractError

__all__ = ["EXPORT_STATES", "FORMATS", "SOURCE_KINDS", "UPLOAD_STATES", "VOLUME_STATES",
           "ContractError", "ExportReport", "ExportSpec", "HostRegistration",
           "SnapshotReport", "SnapshotSpec", "StorageHostState", "StorageReport",
           "UploadReport", "UploadSpec", "VolumeReport", "VolumeSource", "VolumeSpec",
           "host_path", "report_path", "state_path"]

FORMATS = ("qcow2", "raw")
SOURCE_KINDS = ("blank", "image", "volume", "snapshot")
VOLUME_STATES = ("ready", "error")
EXPORT_STATES = ("ready", "error")
UPLOAD_STATES = ("done", "error")

HOSTS_PATH = "/v3/storage/hosts"


def host_path(host: str) -> str:
    """``/v3/storage/hosts/{host}``."""
    return f"{HOSTS_PATH}/{host}"


def state_path(host: str) -> str:
    """The long-polled desired state of a host (``?since=N&wait=S``)."""
    return f"{HOSTS_PATH}/{host}/state"


def report_path(host: str) -> str:
    """Where the agent posts its :class:`StorageReport`."""
    return f"{HOSTS_PATH}/{host}/report"


def _choice(d: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...],
            default: str | None = None) -> str:
    value = d.get(key, default)
    if value is None:
        raise ContractError(c.path(where, key), f"is required, one of {', '.join(allowed)}")
    if value not in allowed:
        raise ContractError(c.path(where, key),
                            f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _nonneg(d: Mapping[str, Any], key: str, where: str, default: int = 0) -> int:
    value = c.integer(d, key, where, default)
    if value < 0:
        raise ContractError(c.path(where, key), f"must be 0 or more, got {value}")
    return value


def _items(d: Mapping[str, Any], key: str, where: str) -> list[tuple[Any, str]]:
    where_key = c.path(where, key)
    return [(item, c.path(where_key, i)) for i, item in enumerate(c.seq(d.get(key), where_key))]


# --- registration / heartbeat ----------------------------------------------------------------
@dataclass(frozen=True)
class HostRegistration:
    """A storage host: where its targets listen and how much room its pool has.

    ``portal`` is ``"ip:port"`` (the management address tgt binds to), ``iqn_prefix``
    the prefix of its target names (``<iqn_prefix>:<attachment id>``), ``formats`` the
    volume file formats it can make."""

    host: str
    portal: str
    iqn_prefix: str
    capacity_gb: int = 0
    free_gb: int = 0
    formats: list[str] = field(default_factory=lambda: list(FORMATS))

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> HostRegistration:
        d = c.mapping(data, where or "registration")
        portal = c.required_text(d, "portal", where)
        ip, sep, port = portal.rpartition(":")
        if not sep or not ip or not port.isdigit() or not 0 < int(port) < 65536:
            raise ContractError(c.path(where, "portal"),
                                f"{portal!r} is not \"ip:port\" (port 1..65535)")
        formats = c.texts(d, "formats", where) if "formats" in d else list(FORMATS)
        for i, fmt in enumerate(formats):
            if fmt not in FORMATS:
                raise ContractError(c.path(c.path(where, "formats"), i),
                                    f"{fmt!r} is not one of {', '.join(FORMATS)}")
        return cls(host=c.required_text(d, "host", where), portal=portal,
                   iqn_prefix=c.required_text(d, "iqn_prefix", where),
                   capacity_gb=_nonneg(d, "capacity_gb", where),
                   free_gb=_nonneg(d, "free_gb", where), formats=formats)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "portal": self.portal, "iqn_prefix": self.iqn_prefix,
                "capacity_gb": self.capacity_gb, "free_gb": self.free_gb,
                "formats": list(self.formats)}


# --- the desired state -----------------------------------------------------------------------
@dataclass(frozen=True)
class VolumeSource:
    """Where a new volume's data comes from: ``blank`` (``id`` null), an ``image``
    (image id, data through the image API), a ``volume`` or a ``snapshot`` (ids on
    the same host)."""

    kind: str = "blank"
    id: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "source") -> VolumeSource:
        d = c.mapping(data if data is not None else {}, where)
        kind = _choice(d, "kind", where, SOURCE_KINDS, "blank")
        source_id = c.opt_text(d, "id", where)
        if kind != "blank" and not source_id:
            raise ContractError(c.path(where, "id"), f"a {kind} source needs its id")
        return cls(kind=kind, id=source_id if kind != "blank" else None)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id}


@dataclass(frozen=True)
class VolumeSpec:
    """A volume that should exist on the host (``<pool>/volume-<id>.<format>``): made
    from ``source`` if missing, grown if smaller than ``size_gb`` (never shrunk)."""

    id: str
    size_gb: int
    format: str = "qcow2"
    source: VolumeSource = field(default_factory=VolumeSource)

    @classmethod
    def from_dict(cls, data: Any, where: str = "volume") -> VolumeSpec:
        d = c.mapping(data, where)
        size = c.integer(d, "size_gb", where, -1)
        if size < 1:
            raise ContractError(c.path(where, "size_gb"), "an integer of 1 or more is required")
        return cls(id=c.required_text(d, "id", where), size_gb=size,
                   format=_choice(d, "format", where, FORMATS, "qcow2"),
                   source=VolumeSource.from_dict(d.get("source"), c.path(where, "source")))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "size_gb": self.size_gb, "format": self.format,
                "source": self.source.to_dict()}


@dataclass(frozen=True)
class SnapshotSpec:
    """A snapshot that should exist (``<pool>/snapshot-<id>.qcow2``), of ``volume_id``."""

    id: str
    volume_id: str

    @classmethod
    def from_dict(cls, data: Any, where: str = "snapshot") -> SnapshotSpec:
        d = c.mapping(data, where)
        return cls(id=c.required_text(d, "id", where),
                   volume_id=c.required_text(d, "volume_id", where))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "volume_id": self.volume_id}


@dataclass(frozen=True)
class ExportSpec:
    """One iSCSI target per attachment: ``target_iqn`` exporting the volume as LUN
    ``lun``, CHAP ``auth_username``/``auth_password``, bound to ``initiator`` (an iqn,
    or null for any initiator)."""

    attachment_id: str
    volume_id: str
    target_iqn: str
    auth_username: str
    auth_password: str
    lun: int = 1
    initiator: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "export") -> ExportSpec:
        d = c.mapping(data, where)
        lun = c.integer(d, "lun", where, 1)
        if lun < 1:
            raise ContractError(c.path(where, "lun"), f"must be 1 or more, got {lun}")
        return cls(attachment_id=c.required_text(d, "attachment_id", where),
                   volume_id=c.required_text(d, "volume_id", where),
                   target_iqn=c.required_text(d, "target_iqn", where),
                   auth_username=c.required_text(d, "auth_username", where),
                   auth_password=c.required_text(d, "auth_password", where),
                   lun=lun, initiator=c.opt_text(d, "initiator", where) or None)

    def to_dict(self) -> dict[str, Any]:
        return {"attachment_id": self.attachment_id, "volume_id": self.volume_id,
                "target_iqn": self.target_iqn, "lun": self.lun,
                "auth_username": self.auth_username, "auth_password": self.auth_password,
                "initiator": self.initiator}


@dataclass(frozen=True)
class UploadSpec:
    """Copy volume ``volume_id``'s data into image ``image_id`` (PUT its file through
    the image API, converted to ``disk_format``) and report it ``done``."""

    volume_id: str
    image_id: str
    disk_format: str = "raw"

    @classmethod
    def from_dict(cls, data: Any, where: str = "upload") -> UploadSpec:
        d = c.mapping(data, where)
        return cls(volume_id=c.required_text(d, "volume_id", where),
                   image_id=c.required_text(d, "image_id", where),
                   disk_format=c.text(d, "disk_format", where, "raw") or "raw")

    def to_dict(self) -> dict[str, Any]:
        return {"volume_id": self.volume_id, "image_id": self.image_id,
                "disk_format": self.disk_format}


@dataclass(frozen=True)
class StorageHostState:
    """Everything that should exist on one storage host, at ``generation``."""

    generation: int = 0
    volumes: list[VolumeSpec] = field(default_factory=list)
    snapshots: list[SnapshotSpec] = field(default_factory=list)
    exports: list[ExportSpec] = field(default_factory=list)
    uploads: list[UploadSpec] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> StorageHostState:
        d = c.mapping(data, where or "state")
        return cls(generation=_nonneg(d, "generation", where),
                   volumes=[VolumeSpec.from_dict(v, w) for v, w in _items(d, "volumes", where)],
                   snapshots=[SnapshotSpec.from_dict(v, w)
                              for v, w in _items(d, "snapshots", where)],
                   exports=[ExportSpec.from_dict(v, w) for v, w in _items(d, "exports", where)],
                   uploads=[UploadSpec.from_dict(v, w) for v, w in _items(d, "uploads", where)])

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation,
                "volumes": [v.to_dict() for v in self.volumes],
                "snapshots": [s.to_dict() for s in self.snapshots],
                "exports": [e.to_dict() for e in self.exports],
                "uploads": [u.to_dict() for u in self.uploads]}


# --- the report ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VolumeReport:
    """A volume the host has: ``ready`` at ``size_gb``, or ``error`` with a ``fault``."""

    id: str
    size_gb: int = 0
    state: str = "ready"
    fault: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "volume") -> VolumeReport:
        d = c.mapping(data, where)
        return cls(id=c.required_text(d, "id", where), size_gb=_nonneg(d, "size_gb", where),
                   state=_choice(d, "state", where, VOLUME_STATES, "ready"),
                   fault=c.opt_text(d, "fault", where))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "size_gb": self.size_gb, "state": self.state,
                "fault": self.fault}


@dataclass(frozen=True)
class SnapshotReport:
    id: str
    state: str = "ready"
    fault: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "snapshot") -> SnapshotReport:
        d = c.mapping(data, where)
        return cls(id=c.required_text(d, "id", where),
                   state=_choice(d, "state", where, VOLUME_STATES, "ready"),
                   fault=c.opt_text(d, "fault", where))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "fault": self.fault}


@dataclass(frozen=True)
class ExportReport:
    attachment_id: str
    state: str = "ready"
    fault: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "export") -> ExportReport:
        d = c.mapping(data, where)
        return cls(attachment_id=c.required_text(d, "attachment_id", where),
                   state=_choice(d, "state", where, EXPORT_STATES, "ready"),
                   fault=c.opt_text(d, "fault", where))

    def to_dict(self) -> dict[str, Any]:
        return {"attachment_id": self.attachment_id, "state": self.state, "fault": self.fault}


@dataclass(frozen=True)
class UploadReport:
    volume_id: str
    image_id: str
    state: str = "done"
    fault: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "upload") -> UploadReport:
        d = c.mapping(data, where)
        return cls(volume_id=c.required_text(d, "volume_id", where),
                   image_id=c.required_text(d, "image_id", where),
                   state=_choice(d, "state", where, UPLOAD_STATES, "done"),
                   fault=c.opt_text(d, "fault", where))

    def to_dict(self) -> dict[str, Any]:
        return {"volume_id": self.volume_id, "image_id": self.image_id, "state": self.state,
                "fault": self.fault}


@dataclass(frozen=True)
class StorageReport:
    """The host's actual inventory after a pass. An object still being made is not
    listed (its API status stays transitional until it is)."""

    volumes: list[VolumeReport] = field(default_factory=list)
    snapshots: list[SnapshotReport] = field(default_factory=list)
    exports: list[ExportReport] = field(default_factory=list)
    uploads: list[UploadReport] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> StorageReport:
        d = c.mapping(data, where or "report")
        return cls(volumes=[VolumeReport.from_dict(v, w) for v, w in _items(d, "volumes", where)],
                   snapshots=[SnapshotReport.from_dict(v, w)
                              for v, w in _items(d, "snapshots", where)],
                   exports=[ExportReport.from_dict(v, w) for v, w in _items(d, "exports", where)],
                   uploads=[UploadReport.from_dict(v, w) for v, w in _items(d, "uploads", where)])

    def to_dict(self) -> dict[str, Any]:
        return {"volumes": [v.to_dict() for v in self.volumes],
                "snapshots": [s.to_dict() for s in self.snapshots],
                "exports": [e.to_dict() for e in self.exports],
                "uploads": [u.to_dict() for u in self.uploads]}
