#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

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
author: Stratus developers (!UNKNOWN)
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

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_image import (  # noqa: E402
    ImageConvergence,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)


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
    logic = ImageConvergence


def main():
    CloudImageModule()()


if __name__ == "__main__":
    main()
