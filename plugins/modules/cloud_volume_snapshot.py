#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_volume_snapshot
short_description: Create or delete a snapshot of a block-storage volume in a Stratus cloud
description:
  - Makes sure the project has one volume snapshot (block-storage API v3, C(/snapshots)) named
    O(name), of the volume O(volume), or has none.
  - A snapshot of an attached (C(in-use)) volume needs O(force=true); without it the module
    fails before anything is made.
  - An existing snapshot of that name is kept (a snapshot is never retaken); its
    O(description) changes in place. One of another volume than O(volume) is reported as a
    warning and left as it is.
  - With O(wait=true) (the default), creation waits until the snapshot is C(available), and
    deletion until it is gone. A snapshot this run made that goes to C(error) fails the module
    and is deleted again.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the snapshot, unique in the project.
    type: str
    required: true
    aliases: [display_name]
  state:
    description: Whether the snapshot should exist.
    type: str
    choices: [present, absent]
    default: present
  volume:
    description: Name or ID of the volume to snapshot; needed to create the snapshot.
    type: str
  description:
    description: Description of the snapshot.
    type: str
    aliases: [display_description]
  force:
    description: Take the snapshot even when the volume is attached (C(in-use)).
    type: bool
    default: false
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Snapshot a detached volume
  stratus.cloud.cloud_volume_snapshot:
    name: db-data-nightly
    volume: db-data

- name: Snapshot a volume a server uses
  stratus.cloud.cloud_volume_snapshot:
    name: web-data-now
    volume: web-data
    force: true

- name: Delete a snapshot
  stratus.cloud.cloud_volume_snapshot:
    name: db-data-nightly
    state: absent
"""

RETURN = r"""
snapshot:
  description:
    - The snapshot as the block-storage API shows it (C(id), C(name), C(status), C(size),
      C(volume_id), C(description), C(created_at), C(metadata)).
    - Null when O(state=absent), and in check mode when it does not exist yet.
  returned: always
  type: dict
  sample:
    id: 3f9a1c2e-8d7b-4e6f-a5b4-c3d2e1f0a9b8
    name: db-data-nightly
    status: available
    size: 20
    volume_id: 7c1e5d4a-9b0e-4a34-8c7e-0d2a1f3b4c5d
    description: null
id:
  description: ID of the snapshot (null when there is none).
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
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume_snapshot import (  # noqa: E402
    SnapshotConvergence,
)


class CloudVolumeSnapshotModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["display_name"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        volume=dict(type="str"),
        description=dict(type="str", aliases=["display_description"]),
        force=dict(type="bool", default=False),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = SnapshotConvergence


def main():
    CloudVolumeSnapshotModule()()


if __name__ == "__main__":
    main()
