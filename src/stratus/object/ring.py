"""Building, saving and loading the object ring (the document is
:class:`stratus.contracts.object.Ring`).

:func:`build` places ``replicas`` copies of every partition on distinct devices, in
distinct zones while there are enough zones, each device getting partitions in
proportion to its weight. Given the previous ring it keeps every assignment that still
fits, so adding a device moves only the partitions it takes over (the replicator then
moves their data).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
from pathlib import Path

from stratus.contracts.object import Device, Ring


def build(devices: list[Device], part_power: int, replicas: int,
          previous: Ring | None = None) -> Ring:
    """A balanced ring; ``replicas`` is capped at the number of devices."""
    if not devices:
        raise ValueError("a ring needs at least one device")
    replicas = max(1, min(replicas, len(devices)))
    parts = 1 << part_power
    total_weight = sum(d.weight for d in devices) or float(len(devices))
    want = {d.id: (d.weight or 0.0) / total_weight * parts * replicas for d in devices}
    cap = {dev_id: math.ceil(w) for dev_id, w in want.items()}
    have = {d.id: 0 for d in devices}
    zone = {d.id: d.zone for d in devices}
    zones = len(set(zone.values()))
    keep_old = (previous is not None and previous.part_power == part_power)
    assignment = [[-1] * parts for _ in range(replicas)]
    if keep_old and previous is not None:
        for part in range(parts):
            used: set[int] = set()
            used_zones: set[int] = set()
            for r in range(min(replicas, previous.replicas)):
                dev_id = previous.assignment[r][part]
                if dev_id not in have or dev_id in used:
                    continue
                if zone[dev_id] in used_zones and len(used_zones) < zones:
                    continue
                assignment[r][part] = dev_id
                have[dev_id] += 1
                used.add(dev_id)
                used_zones.add(zone[dev_id])
        _shed_excess(assignment, have, cap)
    for part in range(parts):
        used = {assignment[r][part] for r in range(replicas)} - {-1}
        used_zones = {zone[d] for d in used}
        for r in range(replicas):
            if assignment[r][part] != -1:
                continue
            candidates = [d.id for d in devices if d.id not in used]
            dev_id = max(candidates, key=lambda i: (
                zone[i] not in used_zones or len(used_zones) >= zones,
                want[i] - have[i], -i))
            assignment[r][part] = dev_id
            have[dev_id] += 1
            used.add(dev_id)
            used_zones.add(zone[dev_id])
    version = (previous.version + 1) if previous is not None else 1
    salt = previous.salt if previous is not None and previous.salt else secrets.token_hex(8)
    return Ring(part_power=part_power, replicas=replicas, devices=list(devices),
                assignment=assignment, salt=salt, version=version)


def _shed_excess(assignment: list[list[int]], have: dict[int, int],
                 cap: dict[int, int]) -> None:
    """Free the placements a device keeps beyond its share, spread over the partitions
    (those that lost the fewest so far first): a partition's replicas must be on
    distinct devices, so a new device can take over only one replica of each."""
    freed = [0] * len(assignment[0])
    for dev_id in sorted(have):
        excess = have[dev_id] - cap[dev_id]
        if excess <= 0:
            continue
        slots = sorted((freed[part], part, r) for r, row in enumerate(assignment)
                       for part, d in enumerate(row) if d == dev_id)
        for _n, part, r in slots[:excess]:
            assignment[r][part] = -1
            freed[part] += 1
            have[dev_id] -= 1


def load(path: str | Path) -> Ring:
    """Read a ring file (a ContractError names a bad field)."""
    return Ring.from_dict(json.loads(Path(path).read_text()))


def save(ring: Ring, path: str | Path) -> bool:
    """Write the ring atomically; False (nothing written) when the file already says so."""
    target = Path(path)
    data = json.dumps(ring.to_dict(), sort_keys=True, indent=1)
    if target.exists() and target.read_text() == data:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".ring-")
    with os.fdopen(fd, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return True


def same_layout(a: Ring, b: Ring) -> bool:
    """True when two rings place every partition alike on the same devices."""
    return (a.part_power == b.part_power and a.replicas == b.replicas
            and a.assignment == b.assignment
            and [d.to_dict() for d in a.devices] == [d.to_dict() for d in b.devices])


def parse_device(spec: str, dev_id: int) -> Device:
    """``host:zone:/path[:weight]`` (a device this process writes itself) or
    ``host:port:zone:/path[:weight]`` (a device of the object server at ``host:port``):
    the role's and the operator's device syntax."""
    parts = spec.split(":")
    port = 0
    if len(parts) >= 4 and parts[3].startswith("/"):
        if not parts[1].isdigit() or not 0 < int(parts[1]) < 65536:
            raise ValueError(f"device {spec!r}: the port is 1-65535")
        port = int(parts.pop(1))
    if len(parts) not in (3, 4) or not parts[1].isdigit() or not parts[2].startswith("/"):
        raise ValueError(f"device {spec!r}: expected host[:port]:zone:/absolute/path[:weight]")
    weight = float(parts[3]) if len(parts) == 4 else 1.0
    return Device(id=dev_id, host=parts[0], zone=int(parts[1]), path=parts[2],
                  weight=weight, port=port)


def ensure(path: str | Path, specs: list[str], part_power: int, replicas: int
           ) -> tuple[bool, Ring]:
    """Build the ring for these devices (keeping the previous placement where it fits)
    and save it when it differs; (changed, ring). A device keeps its id while its path
    and host stay; a new one takes the next free id."""
    target = Path(path)
    previous = load(target) if target.exists() else None
    known = {(d.host, d.port, d.path): d.id for d in previous.devices} if previous else {}
    next_id = max(known.values(), default=-1) + 1
    devices = []
    for spec in specs:
        dev = parse_device(spec, 0)
        dev_id = known.get((dev.host, dev.port, dev.path))
        if dev_id is None:
            dev_id, next_id = next_id, next_id + 1
        devices.append(Device(id=dev_id, host=dev.host, zone=dev.zone, path=dev.path,
                              weight=dev.weight, port=dev.port))
    if previous is not None:
        same_devices = [d.to_dict() for d in previous.devices] == [d.to_dict()
                                                                   for d in devices]
        if same_devices and previous.part_power == part_power and \
                previous.replicas == min(replicas, len(devices)):
            return False, previous
    ring = build(devices, part_power, replicas, previous)
    return save(ring, target), ring
