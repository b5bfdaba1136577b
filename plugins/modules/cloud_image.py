#!/usr/bin/python
# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_image
short_description: Create, update, upload or delete an image in a Stratus cloud
description:
  - Makes sure an image with the given O(name), owned by the project of the credentials, is
    present with the given data and attributes, or absent.
  - The data of O(filename) (a file on the host the module runs on) is uploaded only when the
    project has no image of that name yet, or its image of that name has no data yet
    (C(queued)). An image with the same name and checksum is not uploaded again. Image data
    cannot change once uploaded; when the file's checksum differs from the image's, the module
    fails and says so (delete the image, or use another name).
  - Changed attributes (O(visibility), O(min_disk), O(min_ram), O(is_protected), O(tags),
    O(properties)) are patched in place. An image left C(killed) by a failed upload is deleted
    and made again.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description:
      - Name of the image. Images of other projects with the same name are not considered.
    type: str
    required: true
  state:
    description:
      - Whether the image should exist.
      - With V(absent), every image of that name owned by the project is deleted.
    type: str
    choices: [present, absent]
    default: present
  filename:
    description:
      - Path of the image data on the host the module runs on. It is streamed to the cloud,
        never read whole into memory.
      - Without it, an image is created without data (C(queued)).
    type: path
  disk_format:
    description:
      - Format of the data. The cloud inspects the data and refuses it when it is something
        else (for example a qcow2 file declared V(raw)).
      - When creating an image, V(qcow2) if not given. An existing image's format can only
        change while it has no data.
    type: str
    choices: [raw, qcow2, vmdk, iso]
  container_format:
    description:
      - Container format of the data.
      - When creating an image, V(bare) if not given.
    type: str
    choices: [bare, ovf]
  visibility:
    description:
      - Who may see and use the image. V(public) needs the admin role.
      - When creating an image without it, the cloud's default (V(shared)) applies; an existing
        image keeps its visibility.
    type: str
    choices: [public, private, shared, community]
  min_disk:
    description:
      - Minimum disk size in GiB a server booted from the image needs.
    type: int
  min_ram:
    description:
      - Minimum RAM in MiB a server booted from the image needs.
    type: int
  properties:
    description:
      - Custom properties to set (string values; numbers and booleans are turned into
        strings). Properties not named here are left alone.
    type: dict
  tags:
    description:
      - The image's tags, exactly (tags not in the list are removed).
    type: list
    elements: str
  is_protected:
    description:
      - Whether the image is protected from deletion.
      - With O(state=absent), V(false) lets the module unprotect a protected image to delete
        it; otherwise deleting a protected image fails.
    type: bool
    aliases: [protected]
  checksum:
    description:
      - The md5 checksum of O(filename). When given, the module trusts it instead of reading
        the whole file to compute it, which saves time for large files on every run.
    type: str
notes:
  - The upload is synchronous; the image is C(active) when it returns. O(wait) and O(timeout)
    bound the upload and the wait for the final state.
"""

EXAMPLES = r"""
- name: Upload the Debian image
  stratus.cloud.cloud_image:
    name: debian-12
    filename: /srv/images/debian-12-genericcloud-amd64.qcow2
    disk_format: qcow2
    properties:
      os_distro: debian
      hw_qemu_guest_agent: true
    tags: [linux]

- name: Share the image with every project
  stratus.cloud.cloud_image:
    name: debian-12
    visibility: public

- name: Remove an image
  stratus.cloud.cloud_image:
    name: old-image
    state: absent
"""

RETURN = r"""
image:
  description:
    - The image as the image API shows it (Glance v2 fields, custom properties at the top
      level).
    - Null when O(state=absent), and in check mode when the image does not exist yet.
  returned: always
  type: dict
  sample:
    id: 5b9a2f0e-4a4e-4d8e-9c43-0c1d0bc1f7a5
    name: debian-12
    status: active
    visibility: shared
    owner: 0f8e4a9c3b7d4c52a1e6f2b3c4d5e6f7
    disk_format: qcow2
    container_format: bare
    size: 18677760
    virtual_size: 27262976
    checksum: 3b2ac7d5a0d8e1f4b6c9a8e7d6f5e4d3
    os_hash_algo: sha512
    os_hash_value: 6d5f...
    min_disk: 0
    min_ram: 0
    protected: false
    os_hidden: false
    tags: [linux]
    os_distro: debian
    created_at: "2026-01-01T12:00:00Z"
    updated_at: "2026-01-01T12:00:05Z"
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
  contains:
    before:
      description: The changed attributes as they were (empty when the image is created).
      type: dict
      returned: always
    after:
      description: The changed attributes as they are now (empty when the image is deleted).
      type: dict
      returned: always
"""

import contextlib  # noqa: E402
import os  # noqa: E402

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError  # noqa: E402
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_image import (  # noqa: E402
    ImageApi,
    file_md5,
    pointer,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    Difference,
    StratusModule,
)

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


class ImageConvergence:
    """The decision logic of cloud_image, over an ``ImageApi`` (or a fake of it)."""

    def __init__(self, api, params, check_mode):
        self.api = api
        self.params = params
        self.check_mode = check_mode
        self.diff = Difference()

    def run(self):
        owned = self.api.find(self.params["name"], owner=self.api.project_id)
        if self.params["state"] == "absent":
            return self.absent(owned)
        if len(owned) > 1:
            ids = ", ".join(i["id"] for i in owned)
            raise StratusError(
                f"Project {self.api.project_id} has {len(owned)} images named "
                f"{self.params['name']!r} ({ids}); remove the extra ones first."
            )
        return self.present(owned[0] if owned else None)

    # ---- absent --------------------------------------------------------------------------

    def absent(self, owned):
        unprotect = self.params.get("is_protected") is False
        for image in owned:
            if image.get("protected") and not unprotect:
                raise StratusError(
                    f"Image {image['name']} ({image['id']}) is protected and cannot be "
                    "deleted; add is_protected: false to delete it anyway."
                )
        if owned:
            self.diff.delete({"images": [self.summary(i) for i in owned]})
        if not self.check_mode:
            for image in owned:
                if image.get("protected"):
                    self.api.patch(
                        image["id"], [{"op": "replace", "path": "/protected", "value": False}]
                    )
                self.api.delete(image["id"])
        return self.result(None)

    # ---- present -------------------------------------------------------------------------

    def wanted_checksum(self):
        filename = self.params.get("filename")
        if filename and not os.path.isfile(filename):
            raise StratusError(f"filename {filename} does not exist or is not a file.")
        if self.params.get("checksum"):
            return self.params["checksum"].lower()
        return file_md5(filename) if filename else None

    def present(self, image):
        checksum = self.wanted_checksum()
        if image is not None and image.get("status") == "killed":
            # A failed upload left it unusable: it is deleted and made again.
            return self.create(checksum, replacing=image)
        if image is None:
            return self.create(checksum)
        return self.update(image, checksum)

    def properties(self):
        return dict(
            (k, property_value(k, v)) for k, v in (self.params.get("properties") or {}).items()
        )

    def create(self, checksum, replacing=None):
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
        if self.check_mode:
            return self.result(None)
        if replacing is not None:
            self.api.delete(replacing["id"])
        attrs.update(props)
        image = self.api.create(attrs)
        if p.get("filename"):
            try:
                self.upload(image)
            except StratusError:
                # Nothing half-made: the image this run created goes again.
                with contextlib.suppress(StratusError):
                    self.api.delete(image["id"])
                raise
        return self.result(self.api.get(image["id"]))

    def update(self, image, checksum):
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
        if self.check_mode:
            return self.result(image)
        if ops:
            image = self.api.patch(image["id"], ops)
        if upload:
            self.upload(image)
            image = self.api.get(image["id"])
        return self.result(image)

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

    def result(self, image):
        return {"changed": self.diff.changed, "diff": self.diff.diff, "image": image}


class CloudImageModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        filename=dict(type="path"),
        disk_format=dict(type="str", choices=["raw", "qcow2", "vmdk", "iso"]),
        container_format=dict(type="str", choices=["bare", "ovf"]),
        visibility=dict(type="str", choices=["public", "private", "shared", "community"]),
        min_disk=dict(type="int"),
        min_ram=dict(type="int"),
        properties=dict(type="dict"),
        tags=dict(type="list", elements="str"),
        is_protected=dict(type="bool", aliases=["protected"]),
        checksum=dict(type="str"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        return ImageConvergence(ImageApi(self.client), self.params, self.check_mode).run()


def main():
    CloudImageModule()()


if __name__ == "__main__":
    main()
