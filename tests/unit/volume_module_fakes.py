"""A fake block-storage API (and the compute API's os-volume_attachments) for the volume
modules' logic: the methods of ``stratus_volume_api.VolumeApi`` and of ``ComputeApi``'s
volume calls, over dicts. Writes are recorded in the cloud's shared ``writes`` list.

Transitions happen at the next look, as the real services move them on once the storage
agent reported: ``creating`` → ``create_result`` (``available``, or ``error`` with a
reason), ``extending`` → ``available`` at the new size, ``deleting`` → gone.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from compute_module_fakes import PROJECT, FakeCloud, FakeCompute, StratusError


class FakeVolumes:
    project_id = PROJECT

    def __init__(self, writes: list[tuple[str, Any]]) -> None:
        self.writes = writes
        self.vols: dict[str, dict[str, Any]] = {}
        self.snaps: dict[str, dict[str, Any]] = {}
        self.create_result = "available"

    def add(self, **vol: Any) -> dict[str, Any]:
        vol = {"id": str(uuid.uuid4()), "status": "available", "size": 1, "bootable": "false",
               "description": None, "metadata": {}, "attachments": [], "multiattach": False,
               "volume_type": "__DEFAULT__", "availability_zone": "nova", "snapshot_id": None,
               "source_volid": None, **vol}
        self.vols[vol["id"]] = vol
        return vol

    # volumes
    def _settle(self, vol: dict[str, Any]) -> None:
        if vol["status"] == "creating":
            vol["status"] = self.create_result
            if self.create_result == "error":
                vol["fault"] = "No valid backend was found"
        elif vol["status"] == "extending":
            vol["status"] = "in-use" if vol["attachments"] else "available"
            vol["size"] = vol.pop("_new_size")
        elif vol["status"] == "deleting":
            del self.vols[vol["id"]]

    def get_volume(self, volume_id: str) -> dict[str, Any] | None:
        vol = self.vols.get(volume_id)
        if vol is None:
            return None
        self._settle(vol)
        return copy.deepcopy(self.vols.get(volume_id))

    def volumes(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        query = {k: v for k, v in (query or {}).items() if k != "all_tenants"}
        return [copy.deepcopy(v) for v in self.vols.values()
                if all(str(v.get(k)) == str(val) for k, val in query.items())]

    def find_volumes(self, name_or_id: str, query: Any = None) -> list[dict[str, Any]]:
        if name_or_id in self.vols:
            return [copy.deepcopy(self.vols[name_or_id])]
        return self.volumes({**(query or {}), "name": name_or_id})

    def create_volume(self, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("volume.create_volume", attrs))
        vol = self.add(status="creating", name=attrs["name"], size=attrs["size"],
                       description=attrs.get("description"),
                       metadata=dict(attrs.get("metadata") or {}),
                       snapshot_id=attrs.get("snapshot_id"),
                       source_volid=attrs.get("source_volid"),
                       bootable="true" if attrs.get("imageRef") else "false")
        if attrs.get("imageRef"):
            vol["volume_image_metadata"] = {"image_id": attrs["imageRef"]}
        return copy.deepcopy(vol)

    def update_volume(self, volume_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("volume.update_volume", attrs))
        self.vols[volume_id].update(copy.deepcopy(attrs))
        return copy.deepcopy(self.vols[volume_id])

    def volume_action(self, volume_id: str, name: str, value: Any = None) -> None:
        self.writes.append((f"volume.action.{name}", value))
        vol = self.vols[volume_id]
        if name == "os-extend":
            if value["new_size"] <= vol["size"]:
                raise StratusError("New size for extend must be greater than current size.", 400)
            vol["status"], vol["_new_size"] = "extending", value["new_size"]
        elif name == "os-set_bootable":
            vol["bootable"] = "true" if value["bootable"] else "false"

    def delete_volume(self, volume_id: str) -> None:
        self.writes.append(("volume.delete_volume", volume_id))
        vol = self.vols[volume_id]
        if vol["attachments"]:
            raise StratusError("Invalid volume: it is attached.", 400)
        vol["status"] = "deleting"

    # snapshots
    def get_snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        snap = self.snaps.get(snapshot_id)
        if snap is not None and snap["status"] == "creating":
            snap["status"] = "available"
        elif snap is not None and snap["status"] == "deleting":
            del self.snaps[snapshot_id]
            return None
        return copy.deepcopy(snap)

    def snapshots(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(s) for s in self.snaps.values()
                if all(s.get(k) == v for k, v in (query or {}).items())]

    def find_snapshots(self, name_or_id: str, query: Any = None) -> list[dict[str, Any]]:
        if name_or_id in self.snaps:
            return [copy.deepcopy(self.snaps[name_or_id])]
        return self.snapshots({"name": name_or_id})

    def add_snapshot(self, **snap: Any) -> dict[str, Any]:
        snap = {"id": str(uuid.uuid4()), "status": "available", "description": None, **snap}
        self.snaps[snap["id"]] = snap
        return snap

    def create_snapshot(self, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("volume.create_snapshot", attrs))
        vol = self.vols[attrs["volume_id"]]
        if vol["status"] == "in-use" and not attrs.get("force"):
            raise StratusError("Invalid volume: in-use without force.", 400)
        return copy.deepcopy(self.add_snapshot(
            status="creating", name=attrs["name"], volume_id=vol["id"], size=vol["size"],
            description=attrs.get("description")))

    def update_snapshot(self, snapshot_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("volume.update_snapshot", attrs))
        self.snaps[snapshot_id].update(attrs)
        return copy.deepcopy(self.snaps[snapshot_id])

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.writes.append(("volume.delete_snapshot", snapshot_id))
        self.snaps[snapshot_id]["status"] = "deleting"


class VolumeCompute(FakeCompute):
    """FakeCompute plus os-volume_attachments, which it keeps in the volumes' attachments."""

    volumes: FakeVolumes
    # True: an attach request is accepted, then undone (as when the compute agent failed).
    attach_undone = False

    def volume_attachments(self, server_id: str) -> list[dict[str, Any]]:
        out = []
        for vol in self.volumes.vols.values():
            for att in vol["attachments"]:
                if att["server_id"] == server_id:
                    out.append({"id": vol["id"], "volumeId": vol["id"], "serverId": server_id,
                                "device": att["device"]})
        return out

    def attach_volume(self, server_id: str, volume_id: str,
                      device: str | None = None) -> dict[str, Any]:
        self.writes.append(("compute.attach_volume", (server_id, volume_id, device)))
        vol = self.volumes.vols[volume_id]
        if vol["status"] != "available":
            raise StratusError("Invalid volume: not available.", 400)
        if self.attach_undone:
            return {"id": volume_id, "volumeId": volume_id, "serverId": server_id,
                    "device": device or "/dev/vdb"}
        used = [a["device"] for a in self.volume_attachments(server_id)]
        device = device or next(f"/dev/vd{c}" for c in "bcdefgh" if f"/dev/vd{c}" not in used)
        vol["attachments"].append({"server_id": server_id, "device": device,
                                   "attachment_id": str(uuid.uuid4())})
        vol["status"] = "in-use"
        return {"id": volume_id, "volumeId": volume_id, "serverId": server_id, "device": device}

    def detach_volume(self, server_id: str, volume_id: str) -> None:
        self.writes.append(("compute.detach_volume", (server_id, volume_id)))
        vol = self.volumes.vols[volume_id]
        vol["attachments"] = [a for a in vol["attachments"] if a["server_id"] != server_id]
        vol["status"] = "in-use" if vol["attachments"] else "available"

    def create_server(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("block_device_mapping_v2"):
            attrs = {**attrs, "imageRef": attrs["imageRef"] or ""}
        return super().create_server(attrs)


class VolumeCloud(FakeCloud):
    """FakeCloud (compute, image, network) plus the volumes."""

    def __init__(self) -> None:
        super().__init__()
        self.volumes = FakeVolumes(self.writes)
        compute = VolumeCompute.__new__(VolumeCompute)
        compute.__dict__.update(self.compute.__dict__)
        compute.volumes = self.volumes
        self.compute = compute
