"""The object ring: which storage devices hold the replicas of a partition.

Written by ``stratus-manage ring build`` (from the inventory, through the role) and
read by stratus-object and the object replicator and auditor; a JSON file
(``[object] ring_file``). Standard library only.

A path ``/<account>/<container>/<object>`` hashes (md5 of the salt and the path) to a
partition (the top ``part_power`` bits); ``assignment[r][part]`` is the device id of
replica ``r`` of that partition. The devices after the primaries, in
:meth:`Ring.handoffs` order, take a write when a primary is down.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from stratus.contracts._check import (
    ContractError,
    integer,
    mapping,
    path,
    required_text,
    seq,
    text,
)

__all__ = ["ContractError", "Device", "Ring", "hash_path"]


def hash_path(salt: str, account: str, container: str = "", obj: str = "") -> str:
    """The 32-hex-digit name of an object's (or container's, or account's) directory."""
    parts = [account] + ([container] if container else []) + ([obj] if obj else [])
    key = salt + "/" + "/".join(parts)
    return hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Device:
    """One storage device: a directory on a storage host, in a zone (a host by default)."""

    id: int
    host: str
    zone: int
    path: str
    weight: float = 1.0
    port: int = 0

    @classmethod
    def from_dict(cls, data: Any, where: str = "device") -> Device:
        d = mapping(data, where)
        weight = d.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ContractError(path(where, "weight"), "expected a number >= 0")
        dev_id = integer(d, "id", where)
        if dev_id < 0:
            raise ContractError(path(where, "id"), "expected an integer >= 0")
        return cls(id=dev_id, host=required_text(d, "host", where),
                   zone=integer(d, "zone", where), path=required_text(d, "path", where),
                   weight=float(weight), port=integer(d, "port", where))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "host": self.host, "zone": self.zone, "path": self.path,
                "weight": self.weight, "port": self.port}


@dataclass
class Ring:
    """The ring document."""

    part_power: int
    replicas: int
    devices: list[Device]
    assignment: list[list[int]] = field(default_factory=list)
    salt: str = ""
    version: int = 1

    @property
    def partitions(self) -> int:
        return 1 << self.part_power

    def device(self, dev_id: int) -> Device:
        for dev in self.devices:
            if dev.id == dev_id:
                return dev
        raise KeyError(dev_id)

    def partition(self, account: str, container: str = "", obj: str = "") -> int:
        digest = hash_path(self.salt, account, container, obj)
        return int(digest[:8], 16) >> (32 - self.part_power)

    def primaries(self, part: int) -> list[Device]:
        """The devices of the partition's replicas, replica 0 first."""
        return [self.device(row[part]) for row in self.assignment]

    def handoffs(self, part: int) -> Iterator[Device]:
        """Every other device, those in zones the primaries do not use first, in an order
        fixed by the partition (so every proxy picks the same handoff)."""
        primary_ids = {d.id for d in self.primaries(part)}
        used_zones = {d.zone for d in self.primaries(part)}
        rest = [d for d in self.devices if d.id not in primary_ids]
        rest.sort(key=lambda d: (d.zone in used_zones, (d.id * 2654435761 + part) % 4093))
        yield from rest

    @classmethod
    def from_dict(cls, data: Any) -> Ring:
        d = mapping(data, "ring")
        part_power = integer(d, "part_power", "ring")
        if not 0 <= part_power <= 24:
            raise ContractError("ring.part_power", "expected 0 to 24")
        replicas = integer(d, "replicas", "ring")
        devices = [Device.from_dict(x, path("ring.devices", i))
                   for i, x in enumerate(seq(d.get("devices"), "ring.devices"))]
        if replicas < 1 or replicas > max(1, len(devices)):
            raise ContractError("ring.replicas", "expected 1 to the number of devices")
        ids = {dev.id for dev in devices}
        if len(ids) != len(devices):
            raise ContractError("ring.devices", "two devices have the same id")
        rows = seq(d.get("assignment"), "ring.assignment")
        if len(rows) != replicas:
            raise ContractError("ring.assignment", f"expected {replicas} rows (one a replica)")
        assignment: list[list[int]] = []
        for r, row in enumerate(rows):
            where = path("ring.assignment", r)
            cells = seq(row, where)
            if len(cells) != 1 << part_power or any(c not in ids for c in cells):
                raise ContractError(where, f"expected {1 << part_power} known device ids")
            assignment.append([int(c) for c in cells])
        return cls(part_power=part_power, replicas=replicas, devices=devices,
                   assignment=assignment, salt=text(d, "salt", "ring"),
                   version=integer(d, "version", "ring", 1))

    def to_dict(self) -> dict[str, Any]:
        return {"part_power": self.part_power, "replicas": self.replicas,
                "devices": [dev.to_dict() for dev in self.devices],
                "assignment": self.assignment, "salt": self.salt, "version": self.version}


def ring_summary(ring: Ring) -> Mapping[str, Any]:
    """What ``stratus-manage ring show`` prints: partitions per device."""
    counts = {dev.id: 0 for dev in ring.devices}
    for row in ring.assignment:
        for dev_id in row:
            counts[dev_id] += 1
    return {"part_power": ring.part_power, "replicas": ring.replicas, "version": ring.version,
            "devices": [{**dev.to_dict(), "partitions": counts[dev.id]} for dev in ring.devices]}
