# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_image and cloud_image_info: the convergence of an image, and the image lookup.

``ImageConvergence.plan()`` compares the project's image of that name with
the options (attributes, tags, properties, the data's checksum) and queues
the deletes, creates, patches and uploads that make it so; see
``stratus_plan`` for how check mode and a real run share it.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import (
    StratusError,
    query_value,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_image_api import (
    UUID_RE,
    ImageApi,
    file_md5,
    pointer,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence

# Module option -> image attribute, for the attributes that can be patched.
PATCHABLE = {
    "visibility": "visibility",
    "min_disk": "min_disk",
    "min_ram": "min_ram",
    "is_protected": "protected",
}


def property_value(key, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise StratusError(
        f"Property {key!r} must be a string, number or boolean, not {type(value).__name__}."
    )


class ImageConvergence(Convergence):
    """The decision logic of cloud_image, over an ``ImageApi`` (or a fake of it)."""

    def __init__(self, api, params, check_mode):
        super().__init__(params, check_mode)
        self.api = api

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ImageApi(client), params, check_mode)

    def plan(self):
        owned = self.api.find(self.params["name"], owner=self.api.project_id)
        if self.params["state"] == "absent":
            return self.plan_absent(owned)
        if len(owned) > 1:
            ids = ", ".join(i["id"] for i in owned)
            raise StratusError(
                f"Project {self.api.project_id} has {len(owned)} images named "
                f"{self.params['name']!r} ({ids}); remove the extra ones first."
            )
        image = owned[0] if owned else None
        checksum = self.wanted_checksum()
        if image is not None and image.get("status") == "killed":
            # A failed upload left it unusable: it is deleted and made again.
            return self.plan_create(checksum, replacing=image)
        if image is None:
            return self.plan_create(checksum)
        return self.plan_update(image, checksum)

    def result(self, image):
        return {"changed": self.diff.changed, "diff": self.diff.diff, "image": image}

    # ---- absent --------------------------------------------------------------------------

    def plan_absent(self, owned):
        unprotect = self.params.get("is_protected") is False
        for image in owned:
            if image.get("protected") and not unprotect:
                raise StratusError(
                    f"Image {image['name']} ({image['id']}) is protected and cannot be "
                    "deleted; add is_protected: false to delete it anyway."
                )
        plan = self.new_plan(None)
        if owned:
            self.diff.delete({"images": [self.summary(i) for i in owned]})

        @plan.then
        def delete(_none):
            for image in owned:
                if image.get("protected"):
                    self.api.patch(
                        image["id"], [{"op": "replace", "path": "/protected", "value": False}]
                    )
                self.api.delete(image["id"])

        return plan

    # ---- present -------------------------------------------------------------------------

    def wanted_checksum(self):
        filename = self.params.get("filename")
        if filename and not os.path.isfile(filename):
            raise StratusError(f"filename {filename} does not exist or is not a file.")
        if self.params.get("checksum"):
            return self.params["checksum"].lower()
        return file_md5(filename) if filename else None

    def properties(self):
        return dict(
            (k, property_value(k, v)) for k, v in (self.params.get("properties") or {}).items()
        )

    def plan_create(self, checksum, replacing=None):
        p = self.params
        attrs = {
            "name": p["name"],
            "disk_format": p.get("disk_format") or "qcow2",
            "container_format": p.get("container_format") or "bare",
        }
        for option, attr in PATCHABLE.items():
            if p.get(option) is not None:
                attrs[attr] = p[option]
        if p.get("tags") is not None:
            attrs["tags"] = list(p["tags"])
        props = self.properties()
        after = dict(attrs, properties=props, status="active" if p.get("filename") else "queued")
        if checksum:
            after["checksum"] = checksum
        self.diff.create(after)
        if replacing is not None:
            self.diff.before = self.summary(replacing)
        plan = self.new_plan(None)

        @plan.then
        def create(_none):
            if replacing is not None:
                self.api.delete(replacing["id"])
            image = self.api.create({**attrs, **props})
            if p.get("filename"):
                try:
                    self.upload(image)
                except StratusError:
                    # Nothing half-made: the image this run created goes again.
                    with contextlib.suppress(StratusError):
                        self.api.delete(image["id"])
                    raise
            return self.api.get(image["id"])

        return plan

    def plan_update(self, image, checksum):
        p = self.params
        upload = False
        status = image.get("status")
        if checksum and status == "queued":
            if not p.get("filename"):
                raise StratusError(
                    f"Image {image['id']} has no data yet; give filename to upload it."
                )
            upload = True
            self.diff.add("status", status, "active")
            self.diff.add("checksum", image.get("checksum"), checksum)
        elif checksum and status == "saving":
            raise StratusError(
                f"Image {image['id']} is receiving data from another upload right now; "
                "run again when it is done."
            )
        elif checksum and image.get("checksum") != checksum:
            raise StratusError(
                f"Image {p['name']} ({image['id']}) has checksum {image.get('checksum')}, but "
                f"the data given has {checksum}; the data of an image cannot change. Delete "
                "the image, or use another name."
            )
        ops = []
        for option in ("disk_format", "container_format"):
            wanted = p.get(option)
            if wanted and wanted != image.get(option):
                if status != "queued":
                    raise StratusError(
                        f"Image {image['id']} is {status} with {option} {image.get(option)}; "
                        f"it cannot become {wanted} (only an image without data can change "
                        "its format)."
                    )
                self.diff.add(option, image.get(option), wanted)
                ops.append({"op": "replace", "path": pointer(option), "value": wanted})
        for option, attr in PATCHABLE.items():
            wanted = p.get(option)
            if wanted is not None and self.diff.add(option, image.get(attr), wanted):
                ops.append({"op": "replace", "path": pointer(attr), "value": wanted})
        if p.get("tags") is not None:
            tags = sorted(set(p["tags"]))
            if self.diff.add("tags", sorted(image.get("tags") or []), tags):
                ops.append({"op": "replace", "path": "/tags", "value": tags})
        before_props, after_props = {}, {}
        for key, value in self.properties().items():
            if image.get(key) != value:
                before_props[key] = image.get(key)
                after_props[key] = value
                op = "replace" if key in image else "add"
                ops.append({"op": op, "path": pointer(key), "value": value})
        if after_props:
            self.diff.add("properties", before_props, after_props)
        plan = self.new_plan(image)
        if ops:
            plan.then(lambda current: self.api.patch(current["id"], ops))
        if upload:

            @plan.then
            def upload_data(current):
                self.upload(current)
                return self.api.get(current["id"])

        return plan

    def upload(self, image):
        self.api.upload(image["id"], self.params["filename"], self.params["timeout"])
        if self.params["wait"]:
            self.api.wait_active(image["id"], self.params["timeout"])
        given = self.params.get("checksum")
        if given:
            stored = (self.api.get(image["id"]) or {}).get("checksum")
            if stored and stored != given.lower():
                raise StratusError(
                    f"The checksum given ({given}) is not the checksum of "
                    f"{self.params['filename']} ({stored}); correct or drop the checksum option."
                )

    @staticmethod
    def summary(image):
        keys = ("id", "name", "status", "checksum", "disk_format", "visibility")
        return dict((k, image.get(k)) for k in keys)


class ImageInfo:
    """cloud_image_info: the images matching an ID or name and the filters."""

    def __init__(self, api, params):
        self.api = api
        self.params = params

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(ImageApi(client), params)

    def run(self):
        query = dict((k, query_value(v)) for k, v in (self.params["filters"] or {}).items())
        wanted = self.params["image"]
        if not wanted:
            return {"changed": False, "images": self.api.list(query)}
        images = []
        if UUID_RE.match(wanted):
            images = self.api.list(dict(query, id=wanted))
        if not images:
            images = self.api.list(dict(query, name=wanted))
        return {"changed": False, "images": images}
