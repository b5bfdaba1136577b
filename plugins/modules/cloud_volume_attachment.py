#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_volume_attachment
short_description: Attach a volume to a server, or detach it, in a Stratus cloud
description:
  - Makes sure the volume O(volume) is attached to the server O(server) (the compute API's
    C(os-volume_attachments)), or is not.
  - A volume already attached to the server is no change, whatever its device (a different
    O(device) is reported as a warning). A volume attached to another server is an error
    (unless the volume is multiattach), and so is one that is not C(available).
  - With O(wait=true) (the default), attaching waits until the volume is C(in-use) on the
    server (the guest sees a new virtio disk), and detaching until the volume API no longer
    lists the attachment.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  server:
    description: Name or ID of the server.
    type: str
    required: true
  volume:
    description: Name or ID of the volume.
    type: str
    required: true
  device:
    description:
      - Device name the volume gets in the guest (V(/dev/vdb) to V(/dev/vdz)). Not given, the
        next free one. Only used when attaching.
    type: str
  state:
    description: Whether the volume should be attached to the server.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Give the database server its data volume
  stratus.cloud.cloud_volume_attachment:
    server: db1
    volume: db-data
  register: att

- name: Show where it went
  ansible.builtin.debug:
    msg: "{{ att.attachment.device }}"

- name: Take it away again
  stratus.cloud.cloud_volume_attachment:
    server: db1
    volume: db-data
    state: absent
"""

RETURN = r"""
attachment:
  description:
    - The volumeAttachment as the compute API shows it (C(device), C(serverId),
      C(volumeId), C(id)).
    - Null when O(state=absent), and in check mode when the volume is not attached yet.
  returned: always
  type: dict
  sample:
    device: /dev/vdb
    serverId: 0b8e3c7a-1d2f-4e5a-9b6c-7d8e9f0a1b2c
    volumeId: 7c1e5d4a-9b0e-4a34-8c7e-0d2a1f3b4c5d
    id: 7c1e5d4a-9b0e-4a34-8c7e-0d2a1f3b4c5d
volume:
  description:
    - The volume as the block-storage API shows it (after the attach when O(wait=true)).
    - Null when O(state=absent), and in check mode when the volume is not attached yet.
  returned: always
  type: dict
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_volume_attachment import (  # noqa: E402
    AttachmentConvergence,
)


class CloudVolumeAttachmentModule(StratusModule):
    argument_spec = dict(
        server=dict(type="str", required=True),
        volume=dict(type="str", required=True),
        device=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = AttachmentConvergence


def main():
    CloudVolumeAttachmentModule()()


if __name__ == "__main__":
    main()
