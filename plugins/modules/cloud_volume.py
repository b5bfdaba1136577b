#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_volume
short_description: Create, grow, update or delete a block-storage volume in a Stratus cloud
description:
  - Makes sure the project has one volume (block-storage API v3, C(/volumes)) named O(name) of
    at least O(size) GiB, blank or made from O(image), O(snapshot_id) or O(volume), or has none.
  - An existing volume of that name is reconciled, never recreated. O(size) grows it
    (C(os-extend); an attached volume too); a O(size) smaller than the volume is an error, as
    volumes cannot shrink. O(description), O(metadata) and O(is_bootable) change in place.
    What cannot change in place (O(image), O(snapshot_id), O(volume), O(volume_type),
    O(availability_zone)) is compared and a difference is reported as a warning.
  - Two volumes named O(name) make the module fail (it would not know which one).
  - With O(wait=true) (the default), creation and growth wait until the volume is
    C(available) (or C(in-use)), and deletion until it is gone. A volume this run created that
    goes to C(error) fails the module with the reason and is deleted again. An existing volume
    in an C(error) status fails the module; delete it with O(state=absent).
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the volume, unique in the project.
    type: str
    required: true
    aliases: [display_name]
  state:
    description:
      - Whether the volume should exist. V(absent) deletes it; an attached volume is an error
        (detach it first with M(stratus.cloud.cloud_volume_attachment)), and so is one with
        snapshots (the API refuses it).
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - Size of the volume in GiB. Needed to create a blank volume or one from an image; from
        a snapshot or a volume it defaults to theirs.
      - For an existing volume, a larger size grows it; a smaller one is an error.
    type: int
  image:
    description: Name or ID of the image to copy into the new volume (the volume is bootable).
    type: str
  snapshot_id:
    description: Name or ID of the snapshot the new volume is made from.
    type: str
    aliases: [snapshot]
  volume:
    description: Name or ID of the volume the new volume is a copy of.
    type: str
    aliases: [source_volume]
  volume_type:
    description: Name or ID of the volume type (not given, the cloud's default type).
    type: str
  is_bootable:
    description:
      - Whether the volume is marked bootable (C(os-set_bootable)). Not given, left as the
        cloud makes it (volumes made from an image are bootable).
    type: bool
    aliases: [bootable]
  metadata:
    description:
      - The volume's metadata (key/value strings), exactly (keys not given are removed). Not
        given, the metadata is left alone.
    type: dict
  availability_zone:
    description: Availability zone of the new volume.
    type: str
  description:
    description: Description of the volume.
    type: str
    aliases: [display_description]
notes:
  - Supports check mode and diff mode.
  - The module talks to the block-storage API (catalog type C(block-storage), else
    C(volumev3) or C(volume)) at microversion 3.42, or the service's maximum when lower.
"""

EXAMPLES = r"""
- name: A 10 GiB data volume
  stratus.cloud.cloud_volume:
    name: db-data
    size: 10
    metadata:
      role: db

- name: Grow it to 20 GiB (also while it is attached)
  stratus.cloud.cloud_volume:
    name: db-data
    size: 20

- name: A bootable volume with Debian on it
  stratus.cloud.cloud_volume:
    name: web1-root
    image: debian-12
    size: 5

- name: A copy of a snapshot
  stratus.cloud.cloud_volume:
    name: db-data-restored
    snapshot_id: db-data-nightly

- name: Delete a volume
  stratus.cloud.cloud_volume:
    name: db-data-restored
    state: absent
"""

RETURN = r"""
volume:
  description:
    - The volume as the block-storage API shows it (Cinder v3 fields).
    - Null when O(state=absent), and in check mode when the volume does not exist yet.
  returned: always
  type: dict
  contains:
    id:
      description: ID of the volume.
      type: str
    status:
      description: Status (C(creating), C(available), C(in-use), C(extending), C(error), ...).
      type: str
    size:
      description: Size in GiB.
      type: int
    bootable:
      description: Whether the volume is bootable, the string C(true) or C(false).
      type: str
    attachments:
      description: The servers it is attached to (C(server_id), C(device), C(attachment_id)).
      type: list
      elements: dict
  sample:
    id: 7c1e5d4a-9b0e-4a34-8c7e-0d2a1f3b4c5d
    name: db-data
    status: available
    size: 20
    bootable: "false"
    volume_type: __DEFAULT__
    availability_zone: nova
    metadata: {role: db}
    attachments: []
id:
  description: ID of the volume (null when there is none).
  returned: always
  type: str
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume import (  # noqa: E402
    VolumeConvergence,
)


class CloudVolumeModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["display_name"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        size=dict(type="int"),
        image=dict(type="str"),
        snapshot_id=dict(type="str", aliases=["snapshot"]),
        volume=dict(type="str", aliases=["source_volume"]),
        volume_type=dict(type="str"),
        is_bootable=dict(type="bool", aliases=["bootable"]),
        metadata=dict(type="dict"),
        availability_zone=dict(type="str"),
        description=dict(type="str", aliases=["display_description"]),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        mutually_exclusive=[("image", "snapshot_id", "volume")],
    )
    logic = VolumeConvergence


def main():
    CloudVolumeModule()()


if __name__ == "__main__":
    main()
