# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_volume and cloud_volume_info: a volume's convergence, and the volume lookup.

``VolumeConvergence.plan()`` finds the volume by name and decides, before
anything is written, what ``changed`` and the diff are: a new volume (blank,
from an image, a snapshot or another volume), an existing one's size (it only
grows: a smaller ``size`` is an error), description, metadata and bootable
flag (what cannot change in place is only warned about), or its deletion.
See ``stratus_plan`` for how check mode and a real run share the plan.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_image_api import ImageApi
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_server_helpers import (
    resolve_image,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume_api import (
    VOLUME_TRANSIENT,
    VolumeApi,
    one,
    wait_for,
)

STABLE = ("available", "in-use")


def flag(value):
    """A volume's ``bootable`` ("true"/"false" in Cinder's answers) as a bool."""
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def text_metadata(meta):
    """Metadata as the API stores it: string keys and values."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise StratusError("metadata must be a dict of strings.")
    out = {}
    for key, value in meta.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        out[str(key)] = str(value)
    return out


def summary(volume):
    """What the diff shows of a volume."""
    return {
        "id": volume.get("id"), "name": volume.get("name"), "size": volume.get("size"),
        "status": volume.get("status"), "description": volume.get("description"),
        "volume_type": volume.get("volume_type"),
        "availability_zone": volume.get("availability_zone"),
        "bootable": flag(volume.get("bootable")), "metadata": volume.get("metadata") or {},
    }


class VolumeConvergence(Convergence):
    """The decision logic of cloud_volume over the volume and image APIs."""

    def __init__(self, volumes, images, params, check_mode):
        super().__init__(params, check_mode)
        self.volumes = volumes
        self.images = images

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(VolumeApi(client), ImageApi(client), params, check_mode)

    @property
    def timeout(self):
        timeout = self.params.get("timeout")
        return 180 if timeout is None else timeout

    def plan(self):
        p = self.params
        volume = one(self.volumes.find_volumes(p["name"]), "volume", p["name"], required=False)
        if p["state"] == "absent":
            return self.plan_absent(volume)
        if volume is None:
            return self.plan_create()
        return self.plan_update(volume)

    def result(self, volume):
        out = {"changed": self.diff.changed, "diff": self.diff.diff, "volume": volume,
               "id": volume["id"] if volume else None, "warnings": list(self.warnings)}
        return out

    def wait_stable(self, volume_id, size=None):
        """Until the volume is available or in-use (and at least ``size`` GiB)."""
        def done(vol):
            return vol is not None and vol.get("status") in STABLE and (
                size is None or (vol.get("size") or 0) >= size)
        return wait_for(self.volumes.get_volume, volume_id, "volume", done, self.timeout)

    # ---- absent --------------------------------------------------------------------------

    def plan_absent(self, volume):
        plan = self.new_plan(None)
        if volume is None:
            return plan
        servers = [a.get("server_id") for a in volume.get("attachments") or []]
        if servers:
            raise StratusError(f"Volume {volume.get('name')!r} ({volume['id']}) is attached to "
                               f"server(s) {', '.join(map(str, servers))}; detach it first "
                               "(cloud_volume_attachment state: absent).")
        snaps = self.volumes.snapshots({"volume_id": volume["id"]})
        if snaps:
            names = ", ".join(str(s.get("name") or s["id"]) for s in snaps)
            raise StratusError(f"Volume {volume.get('name')!r} ({volume['id']}) has "
                               f"{len(snaps)} snapshot(s) ({names}); delete them first "
                               "(cloud_volume_snapshot state: absent).")
        self.diff.delete(summary(volume))

        @plan.then
        def delete(_none):
            self.volumes.delete_volume(volume["id"])
            if self.params.get("wait"):
                wait_for(self.volumes.get_volume, volume["id"], "volume",
                         lambda vol: vol is None, self.timeout)

        return plan

    # ---- create --------------------------------------------------------------------------

    def sources(self):
        """{option: id} of the image, snapshot or source volume given (at most one)."""
        p = self.params
        out = {}
        if p.get("image"):
            out["imageRef"] = resolve_image(self.images, p["image"])
        if p.get("snapshot_id"):
            snap = one(self.volumes.find_snapshots(p["snapshot_id"]), "snapshot",
                       p["snapshot_id"])
            out["snapshot_id"] = snap["id"]
            out["_size"] = snap.get("size")
        if p.get("volume"):
            src = one(self.volumes.find_volumes(p["volume"]), "volume", p["volume"])
            out["source_volid"] = src["id"]
            out["_size"] = src.get("size")
        return out

    def plan_create(self):
        p = self.params
        sources = self.sources()
        size = p.get("size")
        inherited = sources.pop("_size", None)
        if size is None:
            if inherited is None:
                raise StratusError(f"size is needed to create volume {p['name']!r} (it is "
                                   "only optional with snapshot_id or volume).")
            size = inherited
        elif inherited is not None and size < inherited:
            raise StratusError(f"size {size} is smaller than the {inherited} GiB of the "
                               "snapshot or volume the new volume is made from.")
        meta = text_metadata(p.get("metadata"))
        attrs = {"name": p["name"], "size": size}
        attrs.update(sources)
        for key in ("description", "volume_type", "availability_zone"):
            if p.get(key) is not None:
                attrs[key] = p[key]
        if meta:
            attrs["metadata"] = meta
        after = {"name": p["name"], "size": size, "description": p.get("description"),
                 "metadata": meta or {}}
        for key in ("volume_type", "availability_zone"):
            if p.get(key):
                after[key] = p[key]
        for key in ("imageRef", "snapshot_id", "source_volid"):
            if key in sources:
                after[key] = sources[key]
        bootable = p.get("is_bootable")
        if bootable is not None:
            after["bootable"] = bootable
        self.diff.create(after)
        plan = self.new_plan(None)
        plan.then(lambda _none: self.create(attrs, bootable))
        return plan

    def create(self, attrs, bootable):
        volume = self.volumes.create_volume(attrs)
        if not self.params.get("wait"):
            if bootable is not None:
                self.warnings.append("is_bootable applies once the volume is available: with "
                                     "wait: false it is not set now; run again.")
            return self.volumes.get_volume(volume["id"]) or volume
        try:
            volume = self.wait_stable(volume["id"])
        except StratusError as exc:
            failed = self.volumes.get_volume(volume["id"]) or {}
            if not str(failed.get("status", "")).startswith("error"):
                raise
            # Nothing half-made: the volume this run made goes again, so the next run
            # (once the cause is fixed) makes it anew.
            self.volumes.delete_volume(volume["id"])
            raise StratusError(f"{exc} The volume was deleted again.") from None
        if bootable is not None and flag(volume.get("bootable")) != bootable:
            self.volumes.volume_action(volume["id"], "os-set_bootable", {"bootable": bootable})
            volume = self.volumes.get_volume(volume["id"]) or volume
        return volume

    # ---- update --------------------------------------------------------------------------

    def plan_update(self, volume):
        p = self.params
        status = volume.get("status")
        if str(status).startswith("error"):
            raise StratusError(f"Volume {p['name']!r} ({volume['id']}) is in {status}; delete "
                               "it (state: absent) and create it again.")
        if status in VOLUME_TRANSIENT and p.get("wait"):
            volume = self.wait_stable(volume["id"])
        self.report_immutable(volume)
        grow = None
        size = p.get("size")
        current_size = volume.get("size")
        if size is not None and size != current_size:
            if size < current_size:
                raise StratusError(
                    f"Volume {p['name']!r} is {current_size} GiB and size asks for {size} GiB: "
                    "a volume cannot shrink (only grow). Give a size of at least "
                    f"{current_size}, or delete the volume and create it again.")
            grow = size
            self.diff.add("size", current_size, size)
        changes = {}
        if p.get("description") is not None and p["description"] != (
                volume.get("description") or ""):
            changes["description"] = p["description"]
            self.diff.add("description", volume.get("description"), p["description"])
        meta = text_metadata(p.get("metadata"))
        if meta is not None and meta != (volume.get("metadata") or {}):
            changes["metadata"] = meta
            self.diff.add("metadata", volume.get("metadata") or {}, meta)
        bootable = p.get("is_bootable")
        set_boot = bootable is not None and flag(volume.get("bootable")) != bootable
        if set_boot:
            self.diff.add("bootable", flag(volume.get("bootable")), bootable)
        plan = self.new_plan(volume)

        @plan.then
        def update(current):
            vid = current["id"]
            if changes:
                self.volumes.update_volume(vid, changes)
            if set_boot:
                self.volumes.volume_action(vid, "os-set_bootable", {"bootable": bootable})
            if grow is not None:
                self.volumes.volume_action(vid, "os-extend", {"new_size": grow})
                if p.get("wait"):
                    return self.wait_stable(vid, grow)
            return self.volumes.get_volume(vid) or current

        return plan

    def report_immutable(self, volume):
        p = self.params
        differ = []
        if p.get("volume_type") and volume.get("volume_type") not in (None, p["volume_type"]):
            differ.append(f"volume_type (it is {volume.get('volume_type')}, wanted "
                          f"{p['volume_type']})")
        zone = volume.get("availability_zone")
        if p.get("availability_zone") and zone and zone != p["availability_zone"]:
            differ.append(f"availability_zone (it is in {zone}, wanted "
                          f"{p['availability_zone']})")
        if p.get("snapshot_id") and volume.get("snapshot_id") is None:
            differ.append("snapshot_id (it was not made from a snapshot)")
        if p.get("volume") and volume.get("source_volid") is None:
            differ.append("volume (it was not made from a volume)")
        if p.get("image") and not volume.get("volume_image_metadata"):
            differ.append("image (it was not made from an image)")
        if differ:
            self.warnings.append(
                "Volume {} exists and differs in what cannot change in place: {}. It is left "
                "as it is; delete it (state: absent) and run again to recreate it.".format(
                    p["name"], "; ".join(differ)))


class VolumeInfo:
    """cloud_volume_info: the volumes matching a name or ID and the filters."""

    def __init__(self, volumes, params):
        self.volumes = volumes
        self.params = params

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(VolumeApi(client), params)

    def run(self):
        p = self.params
        query = dict((k, v) for k, v in (p.get("filters") or {}).items() if v is not None)
        for key in ("status", "availability_zone"):
            if p.get(key):
                query[key] = p[key]
        if p.get("all_projects"):
            query["all_tenants"] = "1"
        if p.get("name"):
            found = self.volumes.find_volumes(p["name"], query)
            # An ID lookup does not apply the filters: they apply here.
            found = [v for v in found if all(
                str(v.get(k)) == str(val) for k, val in query.items()
                if k in ("status", "availability_zone", "bootable", "volume_type"))]
        else:
            found = self.volumes.volumes(query)
        return {"changed": False, "volumes": found}
