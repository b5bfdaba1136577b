# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_volume_snapshot: a volume snapshot's convergence.

``SnapshotConvergence.plan()`` finds the snapshot by name and decides, before
anything is written, whether one is made (of the volume named by ``volume``;
an in-use volume only with ``force``, as the block-storage API wants), its
description updated, or it is deleted. See ``stratus_plan`` for how check
mode and a real run share the plan.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume_api import (
    SNAPSHOT_TRANSIENT,
    VolumeApi,
    one,
    wait_for,
)


def summary(snap):
    return {"id": snap.get("id"), "name": snap.get("name"), "volume_id": snap.get("volume_id"),
            "size": snap.get("size"), "status": snap.get("status"),
            "description": snap.get("description")}


class SnapshotConvergence(Convergence):
    """The decision logic of cloud_volume_snapshot over the volume API."""

    def __init__(self, volumes, params, check_mode):
        super().__init__(params, check_mode)
        self.volumes = volumes

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(VolumeApi(client), params, check_mode)

    @property
    def timeout(self):
        timeout = self.params.get("timeout")
        return 180 if timeout is None else timeout

    def plan(self):
        p = self.params
        snap = one(self.volumes.find_snapshots(p["name"]), "snapshot", p["name"],
                   required=False)
        if p["state"] == "absent":
            return self.plan_absent(snap)
        if snap is None:
            return self.plan_create()
        return self.plan_update(snap)

    def result(self, snap):
        out = {"changed": self.diff.changed, "diff": self.diff.diff, "snapshot": snap,
               "id": snap["id"] if snap else None, "warnings": list(self.warnings)}
        return out

    def wait_available(self, snap_id):
        return wait_for(self.volumes.get_snapshot, snap_id, "snapshot",
                        lambda s: s is not None and s.get("status") == "available",
                        self.timeout)

    def plan_absent(self, snap):
        plan = self.new_plan(None)
        if snap is None:
            return plan
        self.diff.delete(summary(snap))

        @plan.then
        def delete(_none):
            self.volumes.delete_snapshot(snap["id"])
            if self.params.get("wait"):
                wait_for(self.volumes.get_snapshot, snap["id"], "snapshot",
                         lambda s: s is None, self.timeout)

        return plan

    def plan_create(self):
        p = self.params
        if not p.get("volume"):
            raise StratusError(f"volume is needed to create snapshot {p['name']!r}.")
        volume = one(self.volumes.find_volumes(p["volume"]), "volume", p["volume"])
        status = volume.get("status")
        if status == "in-use" and not p.get("force"):
            raise StratusError(
                f"Volume {p['volume']!r} ({volume['id']}) is in-use (attached); a snapshot of "
                "an attached volume needs force: true (its data is what was written to the "
                "disk at that moment, without the guest's cache).")
        if status not in ("available", "in-use"):
            raise StratusError(f"Volume {p['volume']!r} ({volume['id']}) is {status}; a "
                               "snapshot needs it available (or in-use with force: true).")
        attrs = {"volume_id": volume["id"], "name": p["name"], "force": bool(p.get("force"))}
        if p.get("description") is not None:
            attrs["description"] = p["description"]
        self.diff.create({"name": p["name"], "volume_id": volume["id"],
                          "size": volume.get("size"), "description": p.get("description")})
        plan = self.new_plan(None)

        @plan.then
        def create(_none):
            snap = self.volumes.create_snapshot(attrs)
            if not p.get("wait"):
                return snap
            try:
                return self.wait_available(snap["id"])
            except StratusError as exc:
                failed = self.volumes.get_snapshot(snap["id"]) or {}
                if not str(failed.get("status", "")).startswith("error"):
                    raise
                self.volumes.delete_snapshot(snap["id"])
                raise StratusError(f"{exc} The snapshot was deleted again.") from None

        return plan

    def plan_update(self, snap):
        p = self.params
        if snap.get("status") in SNAPSHOT_TRANSIENT and p.get("wait"):
            snap = self.wait_available(snap["id"])
        if p.get("volume"):
            wanted = one(self.volumes.find_volumes(p["volume"]), "volume", p["volume"],
                         required=False)
            if wanted is None or wanted["id"] != snap.get("volume_id"):
                self.warnings.append(
                    f"Snapshot {p['name']} exists and is of volume {snap.get('volume_id')}, "
                    f"not of {p['volume']}. It is left as it is; delete it (state: absent) "
                    "and run again to make it anew.")
        plan = self.new_plan(snap)
        description = p.get("description")
        if description is None or description == (snap.get("description") or ""):
            return plan
        self.diff.add("description", snap.get("description"), description)

        @plan.then
        def update(current):
            self.volumes.update_snapshot(current["id"], {"description": description})
            return self.volumes.get_snapshot(current["id"]) or current

        return plan
