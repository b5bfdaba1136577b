#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_volume_info
short_description: List block-storage volumes of a Stratus cloud
description:
  - Returns the volumes (block-storage API v3, C(/volumes/detail)) whose name or ID is
    O(name), or every visible volume, narrowed by O(status), O(availability_zone) and
    O(filters). Returns an empty list (and does not fail) when nothing matches.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name or ID of the volume(s) to return. Without it, every visible volume.
    type: str
    aliases: [id]
  status:
    description: Only volumes in this status (for example V(available), V(in-use)).
    type: str
  availability_zone:
    description: Only volumes in this availability zone.
    type: str
  filters:
    description:
      - More filters of the volume list call, for example C(bootable), C(volume_type), or
        C(metadata) (a JSON object as a string).
    type: dict
  all_projects:
    description: The volumes of every project (admins only).
    type: bool
    default: false
notes:
  - This module changes nothing and supports check mode.
"""

EXAMPLES = r"""
- name: Find one volume
  stratus.cloud.cloud_volume_info:
    name: db-data
  register: found

- name: Every volume that is not attached
  stratus.cloud.cloud_volume_info:
    status: available
  register: free
"""

RETURN = r"""
volumes:
  description:
    - The matching volumes as the block-storage API shows them (Cinder v3 fields). Empty when
      nothing matches.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 7c1e5d4a-9b0e-4a34-8c7e-0d2a1f3b4c5d
      name: db-data
      status: in-use
      size: 20
      bootable: "false"
      attachments:
        - {server_id: 0b8e3c7a-1d2f-4e5a-9b6c-7d8e9f0a1b2c, device: /dev/vdb}
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume import (  # noqa: E402
    VolumeInfo,
)


class CloudVolumeInfoModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", aliases=["id"]),
        status=dict(type="str"),
        availability_zone=dict(type="str"),
        filters=dict(type="dict"),
        all_projects=dict(type="bool", default=False),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = VolumeInfo


def main():
    CloudVolumeInfoModule()()


if __name__ == "__main__":
    main()
