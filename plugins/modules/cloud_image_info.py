#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_image_info
short_description: List images of a Stratus cloud
description:
  - Returns the images the credentials may see, all of them or those matching O(image) and
    O(filters). Returns an empty list (and does not fail) when nothing matches.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  image:
    description:
      - Name or ID of the image(s) to return. Without it, every visible image (filtered by
        O(filters)).
    type: str
    aliases: [name, id]
  filters:
    description:
      - Filters of the image API's list call, for example C(status), C(visibility), C(owner),
        C(tag), C(disk_format), C(member_status), or a custom property such as C(os_distro).
      - A list value repeats the filter (every C(tag) must be present).
    type: dict
notes:
  - This module changes nothing and supports check mode.
"""

EXAMPLES = r"""
- name: Find the Debian image
  stratus.cloud.cloud_image_info:
    image: debian-12
  register: found

- name: List the active public images tagged linux
  stratus.cloud.cloud_image_info:
    filters:
      status: active
      visibility: public
      tag: linux
  register: public_linux
"""

RETURN = r"""
images:
  description:
    - The matching images as the image API shows them (Glance v2 fields, custom properties at
      the top level), sorted newest first. Empty when nothing matches.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 5b9a2f0e-4a4e-4d8e-9c43-0c1d0bc1f7a5
      name: debian-12
      status: active
      visibility: shared
      disk_format: qcow2
      container_format: bare
      size: 18677760
      checksum: 3b2ac7d5a0d8e1f4b6c9a8e7d6f5e4d3
      tags: [linux]
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_image import (  # noqa: E402
    ImageInfo,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)


class CloudImageInfoModule(StratusModule):
    argument_spec = dict(
        image=dict(type="str", aliases=["name", "id"]),
        filters=dict(type="dict"),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = ImageInfo


def main():
    CloudImageInfoModule()()


if __name__ == "__main__":
    main()
